"""Reading the provider's settings: which list each sender uses, the Region, the pace.

Each parser takes what optouts.toml holds (a table, a number) or what an environment
variable holds (text), and raises ``ValueError`` saying what it expected; the settings
layer turns that into a ``ConfigurationError`` naming the setting and its variable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from optouts import InvalidNumber, normalize, require_https
from optouts.plugin import WILDCARD

from ._model import (
    LIST_NAME_OR_ARN,
    MAX_LIST_NAME_OR_ARN,
    OPERATIONS,
    PUBLISHED_RATES,
    Operation,
)

__all__ = [
    "Rates",
    "parse_endpoint_url",
    "parse_list_name",
    "parse_rates",
    "parse_region",
    "parse_sender_lists",
]

Rates = Mapping[Operation, "float | None"]
"""Requests per second per operation; None leaves an operation unpaced."""

_REGION = re.compile(r"[a-z]{2,4}(-[a-z0-9]+)+-[0-9]+")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_OFF = frozenset({"off", "none", "unpaced"})


def parse_region(value: object) -> str:
    text = str(value).strip().lower()
    if not _REGION.fullmatch(text):
        raise ValueError("expected an AWS Region code such as 'us-east-1'")
    return text


def parse_endpoint_url(value: object) -> str:
    """HTTPS, or plain HTTP to this machine (an emulator): every request carries a signature."""
    return require_https(str(value).strip()).rstrip("/")


def parse_list_name(value: object) -> str:
    """An opt-out list's name or ARN, as the model's ``OptOutListNameOrArn`` allows."""
    text = str(value).strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_LIST_NAME_OR_ARN or not LIST_NAME_OR_ARN.fullmatch(text):
        raise ValueError(
            "expected an opt-out list name or ARN: letters, digits, _ - : / "
            f"(1 to {MAX_LIST_NAME_OR_ARN} characters)"
        )
    return text


def _sender(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if text == WILDCARD or _SHORT_CODE.fullmatch(text):
        return text
    try:
        return normalize(text)
    except InvalidNumber as error:
        raise ValueError(
            f"sender {text[:40]!r} is not '*', a short code or an E.164 number: {error.reason}"
        ) from None


def _pairs(value: object, what: str) -> list[tuple[object, object]]:
    """Key–value pairs from a table, a JSON object, or ``KEY=VALUE,KEY=VALUE`` text."""
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, str):
        raise ValueError(f"expected a table of {what}, or KEY=VALUE pairs separated by commas")
    text = value.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            raise ValueError(f"expected a JSON object of {what}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"expected a JSON object of {what}")
        return list(loaded.items())
    pairs: list[tuple[object, object]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, item = part.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE pairs of {what} separated by commas")
        pairs.append((key.strip(), item.strip()))
    return pairs


def parse_sender_lists(value: object) -> dict[str, str]:
    """``{"+18005550100": "Marketing", "*": "Default"}``: the list each sender uses.

    From optouts.toml a table; from the environment ``+18005550100=Marketing,*=Default``
    or the same as a JSON object. Senders are normalised as the client normalises them.
    """
    mapping: dict[str, str] = {}
    for key, item in _pairs(value, "sender = opt-out list"):
        sender = _sender(key)
        try:
            name = parse_list_name(item)
        except ValueError as error:
            raise ValueError(f"the list of sender {sender!r}: {error}") from None
        if sender in mapping and mapping[sender] != name:
            raise ValueError(f"sender {sender!r} is given two lists")
        mapping[sender] = name
    return mapping


def parse_rates(value: object) -> dict[Operation, float | None]:
    """How fast to send, per operation, in requests per second.

    ``"quotas"``: AWS's published default quotas (the default). ``"off"``: no pacing (an
    emulator, or when AWS's ThrottlingException and the retry policy should decide). A
    number: that rate for every operation. A table or ``Operation=N,…`` text: those
    operations at those rates (``off`` for one of them), the rest at the published quotas.
    """
    if isinstance(value, bool):
        raise ValueError("expected 'quotas', 'off', a number, or Operation=N pairs")
    if isinstance(value, (int, float)):
        return dict.fromkeys(OPERATIONS, _rate(value))
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("quotas", "default", ""):
            return dict(PUBLISHED_RATES)
        if text in _OFF:
            return dict.fromkeys(OPERATIONS, None)
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return dict.fromkeys(OPERATIONS, _rate(number))
    rates: dict[Operation, float | None] = dict(PUBLISHED_RATES)
    names = {name.lower(): name for name in OPERATIONS}
    for key, item in _pairs(value, "Operation = requests per second"):
        name = names.get(str(key).strip().lower())
        if name is None:
            raise ValueError(f"unknown operation {str(key)[:40]!r}; known: {', '.join(OPERATIONS)}")
        rates[name] = _rate(item)
    return rates


def _rate(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().lower() in _OFF:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("a rate must be a number of requests per second, or 'off'") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError("a rate must be more than 0 requests per second, or 'off'")
    return number
