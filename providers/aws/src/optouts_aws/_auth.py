"""AWS credentials and Signature Version 4, as an ``httpx.Auth``.

Credentials come from botocore's own chain, so whatever a user's AWS set-up is (the
environment, ``AWS_PROFILE`` and the shared files, SSO, a container or instance role)
works unchanged. Each request is signed by botocore's ``SigV4Auth`` over exactly the
bytes httpx sends; credentials that expire (roles, SSO) are refreshed by botocore when
they are due, at the moment a request is signed. One ``auth_flow`` serves the blocking
and the async client; a refresh then blocks for the time it takes, as in botocore itself.

Nothing here prints a key: the reprs name the Region and service only, errors from
botocore (which never quote secrets) are cut short, and botocore's own debug lines that
show a signature are filtered out of its ``botocore.auth`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import httpx
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ProfileNotFound,
)
from botocore.session import Session  # type: ignore[import-untyped]

from optouts import AuthenticationError, ConfigurationError
from optouts.plugin import clip

from ._model import SIGNING_NAME

__all__ = ["SigV4", "load_credentials"]

PROVIDER = "aws"
SIGNED = ("host", "content-type", "x-amz-target")
"""The request's own headers that are signed (botocore adds ``x-amz-date`` and, with
temporary credentials, ``x-amz-security-token``)."""


class _NoSigningDetails(logging.Filter):
    """Drops botocore's debug lines of a signing (canonical request, string to sign,
    signature): a signature is a credential for as long as the request may be replayed."""

    _PREFIXES = ("CanonicalRequest", "StringToSign", "Signature:")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self._PREFIXES))


logging.getLogger("botocore.auth").addFilter(_NoSigningDetails())

_NO_CREDENTIALS = (
    "no AWS credentials found for provider 'aws': set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or name a profile of the shared files (~/.aws/credentials, "
    "~/.aws/config; AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE) with AWS_PROFILE or the "
    "setting 'profile' (OPTOUTS_AWS_PROFILE), log in with 'aws sso login', or run where a "
    "container or instance role is available"
)


def load_credentials(profile: str | None) -> tuple[Session, Any]:
    """A botocore session (for its Region) and the credentials its chain finds.

    A profile named by the setting is used as botocore uses ``--profile``; otherwise
    botocore reads ``AWS_PROFILE`` and the environment itself, in its usual order.
    """
    try:
        session = Session(profile=profile)
        credentials = session.get_credentials()
    except ProfileNotFound as error:
        where = "setting 'profile' (OPTOUTS_AWS_PROFILE)" if profile else "AWS_PROFILE"
        raise ConfigurationError(
            f"{where} names an AWS profile that no shared file defines: {clip(str(error))}; "
            "the files are ~/.aws/config and ~/.aws/credentials (or AWS_CONFIG_FILE, "
            "AWS_SHARED_CREDENTIALS_FILE)"
        ) from None
    except (BotoCoreError, ClientError) as error:
        raise ConfigurationError(
            f"AWS credentials could not be loaded for provider 'aws': {clip(str(error), 300)}"
        ) from None
    if credentials is None:
        raise ConfigurationError(_NO_CREDENTIALS)
    return session, credentials


class SigV4(httpx.Auth):
    """Signs each request for ``sms-voice`` in ``region`` with botocore's SigV4 signer.

    ``credentials`` is a botocore ``Credentials`` (refreshable or not).
    """

    requires_request_body = True

    def __init__(self, credentials: Any, region: str, *, service: str = SIGNING_NAME) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service

    def __repr__(self) -> str:
        return f"SigV4(service={self.service!r}, region={self.region!r})"

    def frozen(self) -> Any:
        """The credentials to sign with now, refreshed by botocore if they are due."""
        try:
            return self._credentials.get_frozen_credentials()
        except (BotoCoreError, ClientError) as error:
            raise AuthenticationError(
                "AWS credentials could not be refreshed (an expired SSO session needs "
                f"'aws sso login'): {clip(str(error), 300)}",
                provider=PROVIDER,
            ) from None

    def sign(self, request: httpx.Request) -> None:
        """Add ``X-Amz-Date``, ``Authorization`` and, for temporary credentials,
        ``X-Amz-Security-Token`` to ``request``."""
        headers = {name: request.headers[name] for name in SIGNED if name in request.headers}
        unsigned = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        SigV4Auth(self.frozen(), self.service, self.region).add_auth(unsigned)
        for name in ("X-Amz-Date", "X-Amz-Security-Token", "Authorization"):
            value = unsigned.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
