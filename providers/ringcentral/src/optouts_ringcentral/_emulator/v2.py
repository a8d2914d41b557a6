"""v2 SMS consents: list, search, patch (failing records one by one), CSV export, history."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import parse_qsl

from .paging import _pack, _Paging, _unpack
from .store import Key, _Record, _Store
from .wire import _E164, _Call, _invalid, _json, _per_page, _Reply

_OPT_STATUSES = ("OptOut", "OptIn")
_SOURCES = ("Recipient", "Api", "Upstream", "Carrier")
_COVERAGES = ("PhoneNumber", "Account", "CampaignType")
_CAMPAIGN_TYPES = ("Conversational", "Informational", "Promotional")
REJECTED_CODE = "EMU-101"
"""Code the emulator gives a record it refuses to change (see ``Emulator.rejected``)."""


class _V2Routes(_Store, _Paging):
    """The handlers of the v2 routes."""

    def _search(
        self, filters: dict[str, Any], *, default_status: list[str] | None
    ) -> dict[str, Any]:
        senders = _numbers(filters.get("from"), "from")
        recipients = _numbers(filters.get("to"), "to")
        statuses = filters.get("optStatus", default_status)
        if statuses is None:
            statuses = list(_OPT_STATUSES)
        if isinstance(statuses, str):
            statuses = [statuses]
        if not isinstance(statuses, list) or not all(s in _OPT_STATUSES for s in statuses):
            raise _Reply(400, _invalid("v2", "optStatus"))
        coverages = _enum_list(filters.get("coverage"), _COVERAGES, "coverage")
        campaigns = _enum_list(filters.get("campaignType"), _CAMPAIGN_TYPES, "campaignType")
        per_page = _per_page(filters.get("perPage"), default=100, style="v2")
        token = filters.get("pageToken")
        if token is not None and not isinstance(token, str):
            raise _Reply(400, _invalid("v2", "pageToken"))
        query_hash = self._query_hash(
            [
                "v2",
                sorted(senders or []),
                sorted(recipients or []),
                sorted(statuses),
                sorted(coverages or []),
                sorted(campaigns or []),
                per_page,
            ]
        )
        after = self._read_token(token, query_hash, "v2")
        if campaigns is not None:
            rows: list[tuple[Key, _Record]] = []
            more = False  # no stored record has a campaign type
        else:
            rows, more = self._select(
                senders=senders,
                recipients=recipients,
                statuses=set(statuses),
                coverages=coverages,
                after=after,
                limit=per_page,
            )
        return {
            "records": [self._v2_record(key, record) for key, record in rows],
            "paging": self._paging(token, query_hash, per_page, rows, more),
        }

    def _op_searchSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        data = _json(call.body, "v2")
        unknown = sorted(
            set(data)
            - {"from", "to", "optStatus", "coverage", "campaignType", "pageToken", "perPage"}
        )
        if unknown:
            raise _Reply(400, _invalid("v2", unknown[0]))
        return 200, self._search(data, default_status=None), "application/json"

    def _op_listSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        filters: dict[str, Any] = {}
        for name, value in parse_qsl(call.query, keep_blank_values=True):
            if name in ("from", "to", "optStatus", "coverage", "campaignType"):
                filters.setdefault(name, []).append(value)
            elif name in ("pageToken", "perPage"):
                filters[name] = value
        return 200, self._search(filters, default_status=["OptOut"]), "application/json"

    def _op_editSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        data = _json(call.body, "v2")
        records = data.get("records")
        if not isinstance(records, list) or not 1 <= len(records) <= 1000:
            raise _Reply(400, _invalid("v2", "records"))
        failed: list[dict[str, Any]] = []
        for record in records:
            problem = _record_problem(record)
            if problem is None and record["to"] in self.rejected:
                problem = (REJECTED_CODE, "Consent for this number cannot be changed")
            if problem is not None:
                echo = dict(record) if isinstance(record, dict) else {"record": record}
                echo["error"] = {"errorCode": problem[0], "message": problem[1]}
                failed.append(echo)
                continue
            self._upsert(
                record["from"],
                record["to"],
                record["optStatus"],
                record["source"],
                record.get("coverage"),
            )
        return 200, ({"failedRecords": failed} if failed else {}), "application/json"

    def _op_exportSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        del call  # the export takes no filters
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["from", "to", "optStatus", "source", "coverage", "lastModifiedTime"])
        for key in self._keys:
            item = self._v2_record(key, self._records[key])
            writer.writerow(
                [
                    item[name]
                    for name in (
                        "from",
                        "to",
                        "optStatus",
                        "source",
                        "coverage",
                        "lastModifiedTime",
                    )
                ]
            )
        return 200, out.getvalue().encode(), "text/csv"

    def _op_listSmsConsentHistoryRecords(self, call: _Call) -> tuple[int, Any, str]:
        params = parse_qsl(call.query, keep_blank_values=True)
        recipients = {value for name, value in params if name == "to"}
        if len(recipients) > 20 or not all(_E164.fullmatch(number) for number in recipients):
            raise _Reply(400, _invalid("v2", "to"))
        single = dict(params)
        per_page = _per_page(single.get("perPage"), default=100, style="v2")
        query_hash = self._query_hash(["history", sorted(recipients), per_page])
        token = single.get("pageToken")
        offset = 0
        if token is not None:
            parts = _unpack(token)
            if parts is None or len(parts) != 2 or parts[0] != query_hash or not parts[1].isdigit():
                raise _Reply(400, _invalid("v2", "pageToken"))
            offset = int(parts[1])
        matching = [entry for to, entry in self._history if not recipients or to in recipients]
        page = matching[offset : offset + per_page]

        def make(at: int) -> str:
            return _pack(query_hash, str(at))

        paging: dict[str, Any] = {
            "perPage": per_page,
            "pageToken": token or make(0),
            "firstPageToken": make(0),
        }
        if offset + per_page < len(matching):
            paging["nextPageToken"] = make(offset + per_page)
        records = [
            {key: value for key, value in entry.items() if key != "lastModifiedTime"}
            | {"createdAt": entry["lastModifiedTime"]}
            for entry in page
        ]
        return 200, {"records": records, "paging": paging}, "application/json"


def _numbers(value: Any, name: str) -> set[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 20
        or len(set(map(str, value))) != len(value)
        or not all(isinstance(number, str) and _E164.fullmatch(number) for number in value)
    ):
        raise _Reply(400, _invalid("v2", name))
    return set(value)


def _enum_list(value: Any, allowed: tuple[str, ...], name: str) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(item in allowed for item in value):
        raise _Reply(400, _invalid("v2", name))
    return set(value)


def _record_problem(record: Any) -> tuple[str, str] | None:
    if not isinstance(record, dict):
        return "CMN-101", "Record must be an object"
    for field in ("from", "to"):
        if not isinstance(record.get(field), str) or not _E164.fullmatch(record[field]):
            return "CMN-101", f"Parameter [{field}] value is invalid."
    if record.get("optStatus") not in _OPT_STATUSES:
        return "CMN-101", "Parameter [optStatus] value is invalid."
    if record.get("source") not in _SOURCES:
        return "CMN-101", "Parameter [source] value is invalid."
    if record.get("coverage", "PhoneNumber") not in ("PhoneNumber", "Account"):
        return "CMN-101", "Parameter [coverage] value is invalid."
    return None
