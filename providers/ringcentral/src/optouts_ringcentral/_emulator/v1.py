"""v1 a2p-sms opt-outs: the list (JSON or CSV; ``from=*`` is any sender) and bulk-assign."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import parse_qsl

from .paging import _Paging
from .store import WILDCARD, Key, _Record, _Store
from .wire import _E164, _Call, _invalid, _json, _per_page, _Reply

_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_STATUS_FILTER = {"optout": {"OptOut"}, "optin": {"OptIn"}, "all": {"OptOut", "OptIn"}}
_V1_SOURCE = {"Api": "Account"}
"""v1 says ``Account`` where v2 says ``Api``."""


class _V1Routes(_Store, _Paging):
    """The handlers of the v1 routes."""

    @staticmethod
    def _v1_record(key: Key, record: _Record) -> dict[str, Any]:
        return {
            "from": key[0],
            "to": key[1],
            "status": record.status,
            "source": _V1_SOURCE.get(record.source, record.source),
        }

    def _op_readA2PSMSOptOuts(self, call: _Call) -> tuple[int, Any, str]:
        params = dict(parse_qsl(call.query, keep_blank_values=True))
        sender = params.get("from")
        if sender is not None and not _is_sender(sender):
            raise _Reply(400, _invalid("v1", "from"))
        recipient = params.get("to")
        if recipient is not None and not _E164.fullmatch(recipient):
            raise _Reply(400, _invalid("v1", "to"))
        status = params.get("status", "optout")
        if status not in _STATUS_FILTER:
            raise _Reply(400, _invalid("v1", "status"))
        per_page = _per_page(params.get("perPage"), default=1000, style="v1")
        query_hash = self._query_hash(["v1", sender, recipient, status, per_page])
        token = params.get("pageToken")
        after = self._read_token(token, query_hash, "v1")
        rows, more = self._select(
            # As a filter, ``*`` is any sender: RingCentral answers with every record.
            senders={sender} if sender is not None and sender != WILDCARD else None,
            recipients={recipient} if recipient is not None else None,
            statuses=_STATUS_FILTER[status],
            coverages=None,
            after=after,
            limit=per_page,
        )
        records = [self._v1_record(key, record) for key, record in rows]
        if "text/csv" in call.headers.get("accept", ""):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["from", "to", "status", "source"])
            for item in records:
                writer.writerow([item["from"], item["to"], item["status"], item["source"]])
            return 200, out.getvalue().encode(), "text/csv"
        return (
            200,
            {"records": records, "paging": self._paging(token, query_hash, per_page, rows, more)},
            "application/json",
        )

    def _op_addA2PSMSOptOuts(self, call: _Call) -> tuple[int, Any, str]:
        data = _json(call.body, "v1")
        sender = data.get("from")
        if not isinstance(sender, str) or not _is_sender(sender):
            raise _Reply(400, _invalid("v1", "from"))
        opt_outs = data.get("optOuts") or []
        opt_ins = data.get("optIns") or []
        if (
            not isinstance(opt_outs, list)
            or not isinstance(opt_ins, list)
            or not (opt_outs or opt_ins)
        ):
            raise _Reply(400, _invalid("v1", "optOuts"))
        answer: dict[str, Any] = {}
        for field, status in (("optOuts", "OptOut"), ("optIns", "OptIn")):
            successful: list[str] = []
            failed: list[dict[str, str]] = []
            for number in data.get(field) or []:
                if not isinstance(number, str) or not _E164.fullmatch(number):
                    failed.append({"to": str(number), "errorMessage": "Phone number is invalid"})
                elif number in self.rejected:
                    failed.append({"to": number, "errorMessage": "Phone number cannot be changed"})
                else:
                    self._upsert(sender, number, status, "Api", None)
                    successful.append(number)
            answer[field] = {"successful": successful, "failed": failed}
        return 200, answer, "application/json"


def _is_sender(value: str) -> bool:
    return value == WILDCARD or bool(_E164.fullmatch(value) or _SHORT_CODE.fullmatch(value))
