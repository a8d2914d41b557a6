"""What the provider and the emulator take from AWS's service model, pinned in one place.

The source is botocore's own model of ``pinpoint-sms-voice-v2`` (API version 2022-03-31),
which is what AWS's SDKs are generated from. The values are pinned here rather than read
at run time, so that what the provider sends does not change under it with a botocore
upgrade; ``tests/test_aws_conformance.py`` holds every constant here equal to the model of
the installed botocore, so a model that changes fails the tests instead of drifting.

The request rates are not in the model: they are AWS's published default quotas (the
"Quotas for AWS End User Messaging SMS" page), per operation and per Region.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "API_VERSION",
    "CONTENT_TYPE",
    "DEFAULT_LIST",
    "END_USER_FILTER",
    "LIST_NAME",
    "LIST_NAME_OR_ARN",
    "MAX_LIST_NAME",
    "MAX_LIST_NAME_OR_ARN",
    "MAX_LOOKUP",
    "MAX_RESULTS",
    "OPERATIONS",
    "PHONE_NUMBER",
    "PUBLISHED_RATES",
    "SERVICE_NAME",
    "SIGNING_NAME",
    "TARGET_PREFIX",
    "Operation",
    "target",
]

SERVICE_NAME: Final = "pinpoint-sms-voice-v2"
"""botocore's name for the service (its folder of model files)."""
API_VERSION: Final = "2022-03-31"
SIGNING_NAME: Final = "sms-voice"
"""``metadata.signingName``: the service in a SigV4 credential scope."""
TARGET_PREFIX: Final = "PinpointSMSVoiceV2"
"""``metadata.targetPrefix``: ``X-Amz-Target`` is ``<prefix>.<Operation>``."""
CONTENT_TYPE: Final = "application/x-amz-json-1.0"
"""``metadata.jsonVersion`` 1.0 of the ``json`` protocol."""

Operation = Literal[
    "PutOptedOutNumber",
    "DeleteOptedOutNumber",
    "DescribeOptedOutNumbers",
    "DescribeOptOutLists",
    "CreateOptOutList",
]
OPERATIONS: Final[tuple[Operation, ...]] = (
    "PutOptedOutNumber",
    "DeleteOptedOutNumber",
    "DescribeOptedOutNumbers",
    "DescribeOptOutLists",
    "CreateOptOutList",
)

MAX_LOOKUP: Final = 5
"""``OptedOutNumberList.max``: numbers one DescribeOptedOutNumbers may look up."""
MAX_RESULTS: Final = 100
"""``MaxResults.max`` (``min`` is 1): records one page of a Describe* answer may hold."""
MAX_LIST_NAME: Final = 64
"""``OptOutListName.max``: a name CreateOptOutList accepts."""
MAX_LIST_NAME_OR_ARN: Final = 256
"""``OptOutListNameOrArn.max``: a name or ARN the other operations accept."""

PHONE_NUMBER: Final = re.compile(r"\+?[1-9][0-9]{1,18}")
"""``PhoneNumber.pattern`` (``max`` 20)."""
LIST_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
"""``OptOutListName.pattern``."""
LIST_NAME_OR_ARN: Final = re.compile(r"[A-Za-z0-9_:/-]+")
"""``OptOutListNameOrArn.pattern``."""
END_USER_FILTER: Final = "end-user-opted-out"
"""The one value of the ``OptedOutFilterName`` enum."""
DEFAULT_LIST: Final = "Default"
"""The opt-out list every account has, which numbers use unless given another."""

PUBLISHED_RATES: Final[dict[Operation, float]] = {
    "DescribeOptedOutNumbers": 1.0,
    "DescribeOptOutLists": 1.0,
    "CreateOptOutList": 1.0,
    "DeleteOptedOutNumber": 10.0,
    "PutOptedOutNumber": 1.0,
}
"""Requests per second AWS allows by default, per operation and Region (all adjustable).

DescribeOptedOutNumbers, DescribeOptOutLists, CreateOptOutList 1 and DeleteOptedOutNumber
10 are read from the quotas page; PutOptedOutNumber's row could not be read from the copy
we had, so it takes 1, the page's figure for nearly every operation: the cautious choice
(a quota increase is set with the provider's ``requests_per_second`` setting)."""


def target(operation: Operation) -> str:
    """The ``X-Amz-Target`` header of ``operation``."""
    return f"{TARGET_PREFIX}.{operation}"
