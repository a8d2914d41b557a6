"""Paging tokens: opaque, bound to the query that made them (a token from another query is
refused) and keyset, naming the last record a page showed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from .store import Key, _Record
from .wire import _invalid, _Reply


class _Paging:
    """Makes and reads the tokens of the v1 and v2 lists."""

    @staticmethod
    def _query_hash(query: Any) -> str:
        return hashlib.sha256(
            json.dumps(query, sort_keys=True, default=sorted).encode()
        ).hexdigest()[:12]

    @staticmethod
    def _token(after: Key | None, query_hash: str) -> str:
        """``<query hash>|<last from>|<last to>``, base64url: bound to its query, keyset."""
        return _pack(query_hash, *(after or ("", "")))

    def _read_token(self, token: str | None, query_hash: str, style: str) -> Key | None:
        if token is None:
            return None
        parts = _unpack(token)
        if parts is None or len(parts) != 3 or parts[0] != query_hash:
            raise _Reply(400, _invalid(style, "pageToken"))
        return (parts[1], parts[2]) if parts[1] else None

    def _paging(
        self,
        token: str | None,
        query_hash: str,
        per_page: int,
        rows: list[tuple[Key, _Record]],
        more: bool,
    ) -> dict[str, Any]:
        paging: dict[str, Any] = {
            "perPage": per_page,
            "pageToken": token or self._token(None, query_hash),
            "firstPageToken": self._token(None, query_hash),
        }
        if more and rows:
            paging["nextPageToken"] = self._token(rows[-1][0], query_hash)
        return paging


def _pack(*parts: str) -> str:
    """An opaque paging token (plain text inside, so it never looks like a JWT)."""
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _unpack(token: str) -> list[str] | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
