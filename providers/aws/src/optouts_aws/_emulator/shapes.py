"""Checking JSON documents against the service model's shapes, strictly.

botocore's own validator checks what a client is about to send, but not everything the
model says: it leaves ``pattern`` and the ``max`` of a list unchecked, and it has nothing
for answers. This checker walks a botocore shape and reports every departure: a wrong
type, a missing required member, an unknown member, a string or list outside its
``min``/``max``, a number outside its range, a string off its ``pattern`` or ``enum``.
The emulator refuses requests with it (as AWS's ValidationException), and the tests hold
every request and answer to it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from typing import Any

from botocore.loaders import Loader  # type: ignore[import-untyped]
from botocore.model import ServiceModel  # type: ignore[import-untyped]

from .._model import API_VERSION, SERVICE_NAME

__all__ = ["problems", "service_model"]


@functools.lru_cache(maxsize=1)
def service_model() -> Any:
    """botocore's model of pinpoint-sms-voice-v2, loaded once per process."""
    return ServiceModel(
        Loader().load_service_model(SERVICE_NAME, "service-2", API_VERSION), SERVICE_NAME
    )


@functools.lru_cache(maxsize=64)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def problems(
    value: Any, shape: Any, path: str = "", *, extra: frozenset[str] = frozenset()
) -> list[str]:
    """Every way ``value`` departs from ``shape``, as ``path: what`` lines (empty: none).

    ``extra`` names top-level members allowed beyond the shape's (``__type`` of an error).
    """
    return list(_walk(value, shape, path, extra))


def _walk(value: Any, shape: Any, path: str, extra: frozenset[str] = frozenset()) -> Iterator[str]:
    where = path or "(top)"
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            yield f"{where}: expected an object, got {type(value).__name__}"
            return
        for name in shape.required_members:
            if name not in value:
                yield f"{where}: missing required member {name!r}"
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                if name not in extra:
                    yield f"{where}: unknown member {name!r}"
                continue
            yield from _walk(item, member, f"{path}.{name}" if path else name)
        return
    if kind == "list":
        if not isinstance(value, list):
            yield f"{where}: expected a list, got {type(value).__name__}"
            return
        yield from _bounds(where, len(value), meta, "items")
        for index, item in enumerate(value):
            yield from _walk(item, shape.member, f"{path}[{index}]")
        return
    if kind == "map":
        if not isinstance(value, dict):
            yield f"{where}: expected an object, got {type(value).__name__}"
            return
        for key, item in value.items():
            yield from _walk(key, shape.key, f"{path}<key>")
            yield from _walk(item, shape.value, f"{path}[{key!r}]")
        return
    if kind == "string":
        if not isinstance(value, str):
            yield f"{where}: expected a string, got {type(value).__name__}"
            return
        yield from _bounds(where, len(value), meta, "characters")
        if "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
            yield f"{where}: {value[:40]!r} does not match {meta['pattern']!r}"
        if shape.enum and value not in shape.enum:
            yield f"{where}: {value[:40]!r} is not one of {', '.join(shape.enum)}"
        return
    if kind in ("integer", "long"):
        if type(value) is not int:
            yield f"{where}: expected an integer, got {type(value).__name__}"
            return
        yield from _bounds(where, value, meta, "")
        return
    if kind == "boolean":
        if type(value) is not bool:
            yield f"{where}: expected a boolean, got {type(value).__name__}"
        return
    if kind == "timestamp":
        # The json protocol's default timestamp format is epoch seconds.
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            yield f"{where}: expected epoch seconds, got {value!r:.40}"
        return
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield f"{where}: expected a number, got {type(value).__name__}"
        return
    yield f"{where}: the checker does not know shape type {kind!r}"


def _bounds(where: str, size: int, meta: dict[str, Any], unit: str) -> Iterator[str]:
    low, high = meta.get("min"), meta.get("max")
    what = f"{size} {unit}".strip()
    if low is not None and size < low:
        yield f"{where}: {what}, fewer than the minimum {low}"
    if high is not None and size > high:
        yield f"{where}: {what}, more than the maximum {high}"
