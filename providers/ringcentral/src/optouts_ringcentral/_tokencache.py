"""RingCentral sessions kept across processes, in the user's cache directory.

The Auth group allows five requests a minute, and a command-line run that logs in and
revokes spends two of them: every third quick run would wait a minute. So a session can
outlive its process: one JSON file per session in ``<user cache dir>/optouts/ringcentral``,
named by a hash of the server URL, the client id and SHA-256s of the client secret and the
JWT (so a new JWT, another app, or a rotated or mistyped secret never picks up an old
session: a wrong secret fails at its first run, not days later when the session ends).
The file holds the access and refresh tokens and when they expire, in wall-clock seconds;
never the client secret or the JWT.

Those tokens are the file's secret: it is created with mode 0600 (in a directory of mode
0700) through a temporary file and an atomic ``os.replace``, so a reader sees a whole old
file or a whole new one, and its content never reaches a repr, a log line or an error.
An entry that cannot be read is treated as absent and overwritten by the next login.

Renewals are serialised across processes by an advisory lock on a sibling ``.lock`` file
(``fcntl.flock``, taken without blocking so an event loop never stalls on it); where there
is no ``fcntl`` (Windows), or the lock cannot be had in time, two processes may both log
in, and the last to write wins: both sessions work, and the other one simply expires.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

from optouts import ConfigurationError, Secret

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: renewals are not serialised
    fcntl = None  # type: ignore[assignment]

__all__ = ["CachedToken", "RenewalLock", "TokenCache", "cache_key", "default_directory"]

logger = logging.getLogger("optouts.ringcentral")

_VERSION = 1
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_MOST_BYTES = 64 * 1024
"""Longest cache file read: tokens are a few hundred bytes."""


def default_directory() -> Path:
    """``<user cache dir>/optouts/ringcentral`` (``$XDG_CACHE_HOME`` on Linux)."""
    import platformdirs  # only when a cache is used

    return Path(platformdirs.user_cache_dir("optouts", appauthor=False)) / "ringcentral"


def cache_key(server_url: str, client_id: str, client_secret: Secret, jwt: Secret) -> str:
    """The name of one session's entry: it changes with the server, the app, its secret or
    the JWT."""
    hashes = (hashlib.sha256(s.reveal().encode()).hexdigest() for s in (client_secret, jwt))
    identity = "\n".join((server_url.rstrip("/"), client_id, *hashes))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


@attrs.frozen(repr=False)
class CachedToken:
    """A session as stored: tokens and wall-clock (``time.time``) instants; never printed."""

    access_token: str
    renew_at: float
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float = 0.0

    def __repr__(self) -> str:
        refresh = self.refresh_token is not None
        return f"<CachedToken expires_at={self.expires_at:.0f} refresh={refresh}>"

    def as_json(self, server_url: str, client_id: str) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "server_url": server_url,
            "client_id": client_id,
            "access_token": self.access_token,
            "renew_at": self.renew_at,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "refresh_expires_at": self.refresh_expires_at,
        }

    @classmethod
    def from_json(cls, data: object, server_url: str, client_id: str) -> CachedToken | None:
        """The entry's session, or None when it is not one this server and app wrote."""
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return None
        if data.get("server_url") != server_url or data.get("client_id") != client_id:
            return None
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        renew_at, expires_at, refresh_at = (
            _instant(data.get(name)) for name in ("renew_at", "expires_at", "refresh_expires_at")
        )
        if not isinstance(access, str) or not access:
            return None
        if refresh is not None and not isinstance(refresh, str):
            return None
        if renew_at is None or expires_at is None or refresh_at is None:
            return None
        return cls(access, renew_at, expires_at, refresh or None, refresh_at)


def _instant(value: object) -> float | None:
    """A stored instant: a finite number of seconds, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class RenewalLock:
    """A held renewal lock (or, where none can be had, a stand-in); ``release`` ends it."""

    def __init__(self, descriptor: int | None) -> None:
        self._descriptor = descriptor

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)  # closing drops the flock


class TokenCache:
    """Where sessions are kept: ``directory`` (default: the user cache directory)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def __repr__(self) -> str:
        return f"<TokenCache directory={str(self.directory)!r}>"

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str, server_url: str, client_id: str) -> CachedToken | None:
        """The stored session, or None (no entry, or one that cannot be read)."""
        path = self.path(key)
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MOST_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as error:
            logger.debug("token cache %s cannot be read (%s); ignored", path, error.strerror)
            return None
        try:
            data = json.loads(raw) if len(raw) <= _MOST_BYTES else None
        except ValueError:  # its message would quote the content
            data = None
        token = CachedToken.from_json(data, server_url, client_id)
        if token is None:
            logger.debug("token cache %s holds no session of this app; ignored", path)
        return token

    def save(self, key: str, token: CachedToken, server_url: str, client_id: str) -> bool:
        """Write the entry atomically, mode 0600; False (logged) when it cannot be written."""
        body = json.dumps(token.as_json(server_url, client_id)).encode()
        try:
            self._make_directory()
            handle, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
        except OSError as error:
            logger.debug("token cache %s cannot be written (%s)", self.directory, error.strerror)
            return False
        try:
            with os.fdopen(handle, "wb") as out:  # mkstemp creates it 0600
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path(key))
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            logger.debug("token cache %s cannot be written (%s)", self.directory, error.strerror)
            return False
        return True

    def delete(self, key: str) -> bool:
        """Remove the entry; True when there was one. One that cannot be removed raises
        ConfigurationError naming it: a logout must not leave a session behind unsaid."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise ConfigurationError(
                f"the cached RingCentral session {path} cannot be removed: {error.strerror}"
            ) from None
        return True

    def try_lock(self, key: str) -> RenewalLock | None:
        """The entry's renewal lock if no other process holds it, else None.

        Without ``fcntl`` or a writable directory the lock holds nothing and the caller
        goes on unserialised: a lost race costs a login, never a wrong token.
        """
        try:
            self._make_directory()
            descriptor = os.open(self.directory / f"{key}.lock", os.O_RDWR | os.O_CREAT, _FILE_MODE)
        except OSError:
            return RenewalLock(None)
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                return None
        return RenewalLock(descriptor)

    def _make_directory(self) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.directory.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            if self.directory.stat().st_mode & 0o077:
                self.directory.chmod(_DIR_MODE)
