"""What an AWS error answer means for a call: the core's exception to raise.

The model lists four exceptions for the opt-out operations besides the server's own
(``InternalServerException``): ``ThrottlingException`` (slow down: retried by the
client's policy), ``AccessDeniedException`` (the identity may not do this), the
``ResourceNotFoundException`` of an opt-out list that does not exist (a configuration
mistake, named as such), and ``ValidationException``. AWS's common errors add the
signature family (``InvalidSignatureException``, ``UnrecognizedClientException``, …),
which means the credentials are wrong. Per-number outcomes are the provider's to decide;
this module handles what fails a whole request.
"""

from __future__ import annotations

from optouts import (
    AuthenticationError,
    ConfigurationError,
    OptOutError,
    ProviderError,
    RateLimited,
)

from ._lists import ListMap
from ._model import Operation
from ._wire import AwsError

__all__ = ["AUTH_CODES", "THROTTLE_CODES", "is_list_missing", "whole_call_error"]

PROVIDER = "aws"

AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "ExpiredTokenException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "NotAuthorizedException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
"""Refused credentials or permissions: never retried, and they stop a sync's target."""
THROTTLE_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})


def is_list_missing(error: AwsError, list_name: str) -> bool:
    """A ResourceNotFoundException about the opt-out list itself (not about a number)."""
    if error.code != "ResourceNotFoundException":
        return False
    if error.resource_type is not None:
        return error.resource_type == "opt-out-list"
    return error.resource_id in (None, list_name)


def _auth_hint(error: AwsError, operation: Operation) -> str:
    if error.code == "AccessDeniedException":
        why = f" ({error.reason})" if error.reason else ""
        return (
            f"the credentials work, but AWS denied {operation}{why}: the IAM identity needs "
            f"sms-voice:{operation} on the opt-out list, and the account must be in good standing"
        )
    return (
        "the access key or secret key may be wrong, the session token expired, or the "
        "signing Region not the endpoint's (setting 'region')"
    )


def whole_call_error(
    error: AwsError, operation: Operation, lists: ListMap, list_name: str | None
) -> OptOutError:
    """The exception an error answer raises for the whole request."""
    common = {"provider": PROVIDER, "code": error.code, "request_id": error.request_id}
    if error.code in THROTTLE_CODES or error.status == 429:
        return RateLimited(
            f"AWS is throttling {operation} ({error.describe()})",
            retry_after=None,  # AWS sends no Retry-After: the policy's backoff decides
            status_code=error.status,
            **common,
        )
    if error.code in AUTH_CODES or error.status in (401, 403):
        return AuthenticationError(
            f"AWS refused {operation} ({error.describe()}); {_auth_hint(error, operation)}",
            status_code=error.status,
            **common,
        )
    if list_name is not None and is_list_missing(error, list_name):
        setting = lists.setting_of(list_name)
        return ConfigurationError(
            f"AWS has no opt-out list {list_name!r} in this account and Region (it comes from "
            f"setting {setting!r} of provider 'aws'): create it (CreateOptOutList, or 'aws "
            f"pinpoint-sms-voice-v2 create-opt-out-list --opt-out-list-name {list_name}') or "
            f"name an existing list; DescribeOptOutLists shows them"
        )
    if (
        list_name is not None
        and error.code == "ValidationException"
        and (error.names_field("OptOutListName") or error.reason == "INVALID_ARN")
    ):
        setting = lists.setting_of(list_name)
        return ConfigurationError(
            f"AWS refused opt-out list {list_name!r} from setting {setting!r} of provider "
            f"'aws': {error.describe()}"
        )
    return ProviderError(
        f"AWS answered {operation} with HTTP {error.status} ({error.describe()})",
        status_code=error.status,
        retryable=error.status >= 500,
        **common,
    )
