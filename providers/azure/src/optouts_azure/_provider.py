"""Provider ``azure``: Azure Communication Services SMS opt-outs (add, remove, check).

Each operation is one signed POST of up to 100 recipients for one sender. Azure has no way
to list opt-outs, so ``list`` is not offered; the hint points users at the local ledger.
A check that Azure answers with its transient 400 is sent once more by the exchange itself
(see ``is_transient_check_error``): the core's retry policy never retries a 400, and may
allow more attempts than this one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import httpx

from optouts import (
    Capability,
    ConfigurationError,
    Exchange,
    InvalidNumber,
    OptOutError,
    Provider,
    Results,
    Secret,
    Setting,
    Settings,
    Sleep,
)

from ._api import DEFAULT_API_VERSION, MAX_RECIPIENTS, Operation, check_api_version, operation_path
from ._auth import HMACAuth
from ._connection import Connection, ConnectionStringError, parse_connection_string
from ._responses import is_transient_check_error, parse_results

__all__ = ["AzureProvider"]

_CONNECTION_VARIABLES = (
    "OPTOUTS_AZURE_CONNECTION_STRING or COMMUNICATION_SERVICES_CONNECTION_STRING"
)
_USER_AGENT = "optouts-azure"
_EVERY_SENDER = "*"
"""The core's account-wide sender (RingCentral has one); Azure has no such thing."""
logger = logging.getLogger("optouts")


def _revealed(value: Any) -> str | None:
    if value is None:
        return None
    return value.reveal() if isinstance(value, Secret) else str(value)


class AzureProvider(Provider):
    """Azure Communication Services, signed with the resource's access key (HMAC-SHA256)."""

    name: ClassVar[str] = "azure"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ADD, Capability.REMOVE, Capability.CHECK}
    )
    max_batch: ClassVar[int] = MAX_RECIPIENTS
    default_concurrency: ClassVar[int] = 8
    """Azure publishes no opt-out rate limit; eight signed requests in flight is polite."""
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "connection_string",
            "the resource's connection string: endpoint=https://...;accesskey=...",
            secret=True,
            env_aliases=("COMMUNICATION_SERVICES_CONNECTION_STRING",),
        ),
        Setting(
            "endpoint",
            "the resource endpoint, https://<resource>.communication.azure.com "
            "(with access_key, instead of connection_string)",
        ),
        Setting(
            "access_key",
            "the resource's base64 access key (with endpoint, instead of connection_string)",
            secret=True,
        ),
        Setting(
            "api_version",
            "the API version to call",
            default=DEFAULT_API_VERSION,
            parse=check_api_version,
        ),
    )
    recheck_pause: ClassVar[float] = 0.5
    """Seconds before a check that met Azure's transient 400 is sent again (once)."""
    hints: ClassVar[dict[Capability, str]] = {
        Capability.LIST: (
            "Azure has no list API; keep a local ledger (provider 'local') as the record "
            "and sync it to Azure"
        ),
    }

    def __init__(
        self,
        connection: Connection,
        *,
        api_version: str = DEFAULT_API_VERSION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.api_version = check_api_version(api_version)
        self._auth = HMACAuth(connection.key, clock=clock)
        # Built once: URL parsing and header checks cost more than the rest of a request.
        query = httpx.QueryParams({"api-version": self.api_version})
        self._urls = {
            operation: httpx.URL(f"{connection.endpoint}{operation_path(operation)}?{query}")
            for operation in ("add", "remove", "check")
        }

    def __repr__(self) -> str:
        endpoint, version = self.connection.endpoint, self.api_version
        return f"<AzureProvider endpoint={endpoint!r} api_version={version!r}>"

    @classmethod
    def from_connection_string(
        cls, connection_string: str, *, api_version: str = DEFAULT_API_VERSION
    ) -> AzureProvider:
        try:
            connection = parse_connection_string(connection_string)
        except ConnectionStringError as exc:
            raise ConfigurationError(
                f"setting 'connection_string' of provider 'azure' is malformed: {exc} "
                f"(also settable as {_CONNECTION_VARIABLES})"
            ) from None
        return cls(connection, api_version=api_version)

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureProvider:
        connection_string = _revealed(settings.get("connection_string"))
        endpoint = _revealed(settings.get("endpoint"))
        access_key = _revealed(settings.get("access_key"))
        api_version = settings.get("api_version") or DEFAULT_API_VERSION
        if connection_string and (endpoint or access_key):
            # Refuse to pick one: COMMUNICATION_SERVICES_CONNECTION_STRING is often set
            # machine-wide, and silently preferring it would send requests elsewhere.
            raise ConfigurationError(
                "provider 'azure' got both connection_string and endpoint/access_key; "
                f"give one form only (the connection string may come from {_CONNECTION_VARIABLES})"
            )
        if connection_string:
            return cls.from_connection_string(connection_string, api_version=api_version)
        if endpoint and access_key:
            try:
                connection = Connection.from_parts(endpoint, access_key)
            except ConnectionStringError as exc:
                setting = "access_key" if exc.part == "accesskey" else "endpoint"
                raise ConfigurationError(
                    f"setting {setting!r} of provider 'azure' is malformed: {exc} "
                    f"(also settable as OPTOUTS_AZURE_{setting.upper()})"
                ) from None
            return cls(connection, api_version=api_version)
        raise ConfigurationError(
            "missing setting 'connection_string' for provider 'azure' (the resource's connection "
            "string): pass connection_string=..., set OPTOUTS_AZURE_CONNECTION_STRING (or "
            "COMMUNICATION_SERVICES_CONNECTION_STRING), or add connection_string under "
            "[providers.azure] in optouts.toml; alternatively give both 'endpoint' and "
            "'access_key' (OPTOUTS_AZURE_ENDPOINT, OPTOUTS_AZURE_ACCESS_KEY)"
        )

    @property
    def auth(self) -> httpx.Auth:
        return self._auth

    def build_request(
        self, operation: Operation, sender: str, recipients: Sequence[str]
    ) -> httpx.Request:
        """The unsigned request for one batch; the client signs it with ``auth``."""
        body = {"from": sender, "recipients": [{"to": recipient} for recipient in recipients]}
        return httpx.Request(
            "POST",
            self._urls[operation],
            content=json.dumps(body, separators=(",", ":")).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
                # Echoed back by Azure; kept on errors so support can find the call.
                "x-ms-client-request-id": str(uuid.uuid4()),
            },
        )

    def refuses(self, operation: str, sender: str) -> OptOutError | None:  # noqa: ARG002
        # every operation needs one sender number
        if sender == _EVERY_SENDER:
            return InvalidNumber(
                sender, "Azure keeps opt-outs per sender; name the number or short code"
            )
        return None

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._exchange("add", sender, recipients)

    def remove(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._exchange("remove", sender, recipients)

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._exchange("check", sender, recipients)

    def _exchange(
        self, operation: Operation, sender: str, recipients: Sequence[str]
    ) -> Exchange[Results]:
        refusal = self.refuses(operation, sender)
        if refusal is not None:
            raise refusal
        response = yield self.build_request(operation, sender, recipients)
        if response is not None and is_transient_check_error(operation, response):
            logger.debug("Azure answered a check with its transient 400; sending it once more")
            yield Sleep(self.recheck_pause, "retry")
            response = yield self.build_request(operation, sender, recipients)
        if response is None:  # pragma: no cover - the runners always answer a request
            raise RuntimeError("the exchange got no response")
        return parse_results(operation, response, recipients, sender=sender)
