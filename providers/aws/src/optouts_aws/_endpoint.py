"""The service's address in a Region, as AWS's endpoint data gives it.

``https://sms-voice.<region>.<partition's DNS suffix>``: the suffix is ``amazonaws.com``
in the commercial Regions, ``amazonaws.com.cn`` in China, and so on. It is read from the
partitions botocore ships (``endpoints.json``), so a Region AWS adds later works as soon
as botocore knows its partition. FIPS and dual-stack endpoints are reached by setting
``endpoint_url``.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

from ._model import SIGNING_NAME

__all__ = ["default_endpoint"]

_FALLBACK_SUFFIX = "amazonaws.com"


def default_endpoint(region: str, session: Any) -> str:
    """The endpoint of the service in ``region`` (``session`` is a botocore Session)."""
    suffix = _FALLBACK_SUFFIX
    try:
        data = session.get_component("data_loader").load_data("endpoints")
    except (BotoCoreError, OSError, ValueError):
        data = {}  # botocore itself falls back to the commercial partition
    for partition in data.get("partitions", ()):
        pattern = partition.get("regionRegex")
        if region in partition.get("regions", {}) or (pattern and re.match(pattern, region)):
            suffix = partition.get("dnsSuffix", _FALLBACK_SUFFIX)
            break
    return f"https://{SIGNING_NAME}.{region}.{suffix}"
