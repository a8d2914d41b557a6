"""An emulator of the RingCentral APIs optouts uses, as a plain ASGI app (no framework).

Written from the public OpenAPI excerpt in ``shared/reference/specs/ringcentral/``: the
OAuth token and revoke endpoints (JWT bearer grant with HTTP Basic client credentials,
single-use refresh tokens, ``OAU-128`` once a token expired or was replaced), v1 a2p-sms
opt-outs (list, bulk-assign) and v2 SMS consents (list, search, patch, export, history).

It behaves like the vendor where the library's correctness depends on it:

- paging tokens are real (keyset tokens bound to the query, so a token from another
  query is refused) and ``nextPageToken`` is absent on the last page;
- every response of a throttled group carries ``X-Rate-Limit-Group/Limit/Remaining/Window``;
  over the limit it answers 429 with ``Retry-After``, and a request during the penalty
  restarts the penalty;
- query values are decoded as a server does, so an unencoded ``+`` arrives as a space;
- the v1 list's ``from=*`` means any sender of the account (every record, each with its
  own ``from``), not only the records stored for ``*``;
- a session can end on the server side (``end_sessions``): its token then draws a 401
  ``OAU-149``, not the ``OAU-128`` of an expired one;
- faults on demand: latency, 5xx answers and dropped connections, at a rate or scheduled.

Time comes from an injectable ``clock`` so tests can expire tokens and windows without
sleeping. ``counts`` tallies requests per operationId, ``throttled`` the 429s per group.
Error codes the spec does not pin down (which OAU- code for a bad assertion, say) are the
emulator's own choice; the library keys on the codes it documents (``OAU-128``, CMN-).

The package splits it by concern: ``app`` (the ASGI app and dispatcher that compose the
rest), ``routes`` (the routing table), ``wire`` (requests, error replies and bodies),
``store`` (the records), ``paging`` (page tokens), ``oauth`` (tokens, revoke, sessions),
``ratelimits`` (groups, penalty windows), ``faults`` (5xx and drops), ``v1`` and ``v2``
(the a2p-sms and consents handlers).
"""

from .app import Emulator
from .oauth import (
    ACCESS_PREFIX,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_JWT,
    JWT_GRANT,
    REFRESH_PREFIX,
)
from .ratelimits import RateLimit, parse_rate_limit
from .store import WILDCARD
from .v2 import REJECTED_CODE

__all__ = [
    "ACCESS_PREFIX",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_JWT",
    "JWT_GRANT",
    "REFRESH_PREFIX",
    "REJECTED_CODE",
    "WILDCARD",
    "Emulator",
    "RateLimit",
    "parse_rate_limit",
]
