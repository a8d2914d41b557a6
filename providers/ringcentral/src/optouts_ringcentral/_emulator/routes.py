"""The routing table: the operation that answers each method and path, the rate-limit group
it counts against, and the shape of its error bodies."""

from __future__ import annotations

import re

import attrs


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    group: str
    style: str
    """Error body shape: "v1", "v2" or "oauth"."""


_ACCOUNT = r"(?P<account>[^/]+)"
_ROUTES = (
    _Route("POST", re.compile(r"/restapi/oauth/token"), "getToken", "Auth", "oauth"),
    _Route("POST", re.compile(r"/restapi/oauth/revoke"), "revokeToken", "Auth", "oauth"),
    _Route(
        "GET",
        re.compile(rf"/restapi/v1\.0/account/{_ACCOUNT}/a2p-sms/opt-outs"),
        "readA2PSMSOptOuts",
        "Light",
        "v1",
    ),
    _Route(
        "POST",
        re.compile(rf"/restapi/v1\.0/account/{_ACCOUNT}/a2p-sms/opt-outs/bulk-assign"),
        "addA2PSMSOptOuts",
        "Light",
        "v1",
    ),
    _Route(
        "GET",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents"),
        "listSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "PATCH",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents"),
        "editSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "POST",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents/search"),
        "searchSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "GET",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents/export"),
        "exportSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "GET",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents/history"),
        "listSmsConsentHistoryRecords",
        "Light",
        "v2",
    ),
)
