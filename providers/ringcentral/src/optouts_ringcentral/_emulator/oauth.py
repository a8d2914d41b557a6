"""OAuth: the token endpoint (JWT bearer grant with HTTP Basic client credentials, single-use
refresh tokens), revoke, and the sessions behind access tokens: expired or replaced ones draw
``OAU-128``, ended ones ``OAU-149``."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import attrs

from .routes import _Route
from .wire import _Call, _error, _oauth_error, _Reply

DEFAULT_CLIENT_ID = "optouts-emulator-client"
DEFAULT_CLIENT_SECRET = "optouts-emulator-secret"
DEFAULT_JWT = (
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJvcHRvdXRzLWVtdWxhdG9yIiwiYXVkIjoicmluZ2NlbnRyYWwifQ.emulator"
)
"""A JWT-shaped credential; the emulator accepts exactly the one it was given."""
ACCESS_PREFIX = "rcemu-at-"
REFRESH_PREFIX = "rcemu-rt-"

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@attrs.define
class _Session:
    access: str
    refresh: str | None
    expires_at: float
    refresh_expires_at: float


class _OAuth:
    """Sessions and their tokens; ``Emulator.__init__`` sets the attributes."""

    client_id: str
    client_secret: str
    jwt: str
    token_lifetime: float
    refresh_tokens: bool
    refresh_token_lifetime: float
    clock: Callable[[], float]
    _sessions: dict[str, _Session]
    _access: dict[str, str]
    _dead: set[str]
    _refresh: dict[str, str]

    def expire_tokens(self) -> None:
        """Make every live access token expired (as if its lifetime had passed)."""
        for session in self._sessions.values():
            session.expires_at = self.clock() - 1

    def end_sessions(self) -> None:
        """End every session on the server (an admin's sign-out, a password change): their
        access tokens draw 401 ``OAU-149`` and their refresh tokens are refused."""
        for session_id in list(self._sessions):
            self._end_session(session_id, replaced=False)

    def issue_token(self) -> str:
        """A valid access token without going through the token endpoint (for tests)."""
        return self._issue()["access_token"]  # type: ignore[no-any-return]

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    def _authenticate(self, route: _Route, headers: dict[str, str]) -> None:
        value = headers.get("authorization", "")
        if not value.lower().startswith("bearer "):
            raise _Reply(
                401, _error(route.style, "OAU-123", "Authorization header is not specified")
            )
        token = value[7:].strip()
        session_id = self._access.get(token)
        if session_id is None:
            if token in self._dead:
                raise _Reply(401, _error(route.style, "OAU-128", "Access token expired"))
            raise _Reply(401, _error(route.style, "OAU-149", "Invalid token"))
        session = self._sessions[session_id]
        if self.clock() >= session.expires_at:
            raise _Reply(401, _error(route.style, "OAU-128", "Access token expired"))

    def _client_ok(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, client_secret = decoded.partition(":")
        return secrets.compare_digest(
            f"{client_id}:{client_secret}".encode(),
            f"{self.client_id}:{self.client_secret}".encode(),
        )

    def _form(self, headers: dict[str, str], query: str, body: bytes) -> dict[str, str]:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise _Reply(415, _oauth_error("invalid_request", "OAU-101", "Unsupported Media Type"))
        form = dict(parse_qsl(query))
        form.update(parse_qsl(body.decode("utf-8", "replace")))
        return form

    def _issue(self, session_id: str | None = None) -> dict[str, Any]:
        session_id = session_id or secrets.token_hex(8)
        now = self.clock()
        access = ACCESS_PREFIX + secrets.token_urlsafe(24)
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(24) if self.refresh_tokens else None
        self._sessions[session_id] = _Session(
            access, refresh, now + self.token_lifetime, now + self.refresh_token_lifetime
        )
        self._access[access] = session_id
        if refresh:
            self._refresh[refresh] = session_id
        info: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.token_lifetime),
            "scope": "A2PSMS SMS",
            "owner_id": "400123456008",
            "endpoint_id": "emulator-endpoint",
            "session_id": session_id,
        }
        if refresh:
            info["refresh_token"] = refresh
            info["refresh_token_expires_in"] = int(self.refresh_token_lifetime)
        return info

    def _end_session(self, session_id: str, *, replaced: bool) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        self._access.pop(session.access, None)
        if replaced:
            self._dead.add(session.access)
        if session.refresh:
            self._refresh.pop(session.refresh, None)

    def _op_getToken(self, call: _Call) -> tuple[int, Any, str]:
        form = self._form(call.headers, "", call.body)
        if not self._client_ok(call.headers):
            raise _Reply(
                400, _oauth_error("invalid_client", "OAU-146", "Invalid client credentials")
            )
        grant = form.get("grant_type")
        if grant == JWT_GRANT:
            if not secrets.compare_digest(form.get("assertion", "").encode(), self.jwt.encode()):
                raise _Reply(400, _oauth_error("invalid_grant", "OAU-140", "Invalid JWT assertion"))
            return 200, self._issue(), "application/json"
        if grant == "refresh_token":
            session_id = self._refresh.pop(form.get("refresh_token", ""), None)
            session = self._sessions.get(session_id) if session_id else None
            if session is None or session_id is None or self.clock() >= session.refresh_expires_at:
                raise _Reply(
                    400, _oauth_error("invalid_grant", "OAU-211", "Token is revoked or expired")
                )
            self._end_session(session_id, replaced=True)
            return 200, self._issue(session_id), "application/json"
        raise _Reply(
            400, _oauth_error("unsupported_grant_type", "OAU-250", "Unsupported grant type")
        )

    def _op_revokeToken(self, call: _Call) -> tuple[int, Any, str]:
        form = self._form(call.headers, call.query, call.body)
        if not self._client_ok(call.headers):
            raise _Reply(
                400, _oauth_error("invalid_client", "OAU-146", "Invalid client credentials")
            )
        token = form.get("token", "")
        session_id = self._access.get(token) or self._refresh.get(token)
        if session_id is not None:
            self._end_session(session_id, replaced=False)
        return 200, b"", "application/json"
