"""An emulator of AWS End User Messaging SMS opt-out lists, as a plain ASGI app.

Written from botocore's service model of ``pinpoint-sms-voice-v2`` and AWS's API
reference, it behaves like the service where the library's correctness depends on it:

- Signature Version 4 is verified with botocore's own signer (a wrong secret: 403
  ``InvalidSignatureException``; an unknown key: 403 ``UnrecognizedClientException``;
  a request signed more than 15 minutes off, or for another Region or service: 403);
- every request body is held to the model's shapes (lengths, patterns, enums, at most 5
  ``OptedOutNumbers``, ``MaxResults`` 1 to 100), refused as ``ValidationException``
  with the fields named;
- ``DescribeOptedOutNumbers`` answers a lookup with the records of the asked numbers that
  are in the list and leaves out those that are not (the API reference says the output of
  a lookup covers the specified numbers only); a number that is not valid fails the
  request;
- paging tokens are keys bound to their query (a token of another query is refused as
  ``INVALID_NEXT_TOKEN``), and ``Filters`` ``end-user-opted-out`` selects by origin;
- a number may be deleted from a list once in 30 days; deleting one that is not there,
  or naming a list that does not exist, is a ``ResourceNotFoundException`` whose
  ``ResourceType`` says which;
- throttling: per-operation quotas, a random share, or queued faults (400
  ``ThrottlingException``), and latency.

What the reference leaves open is the emulator's choice, and said where it is made: the
30-day refusal is a ``ValidationException`` with reason ``PHONE_NUMBER_CANNOT_BE_OPTED_IN``.

The package splits it by concern: ``app`` (the ASGI app and the operations), ``sigv4``
(signatures), ``shapes`` (the model's shapes), ``store`` (the account's lists and page
tokens), ``wire`` (error replies and ASGI I/O).
"""

from .app import AwsEmulator
from .shapes import problems, service_model
from .sigv4 import MAX_SKEW, Verifier
from .store import DELETE_COOLDOWN
from .wire import ErrorForms

__all__ = [
    "DELETE_COOLDOWN",
    "MAX_SKEW",
    "AwsEmulator",
    "ErrorForms",
    "Verifier",
    "problems",
    "service_model",
]
