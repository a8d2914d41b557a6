"""``optouts serve``: the always-on opt-out service (``pip install 'optouts[server]'``).

``create_app(ledger, targets=..., settings=...)`` is the ASGI app (Starlette) that
``optouts serve`` runs on uvicorn, for mounting in an ASGI stack of your own: vendor
webhooks in (``/webhooks/<format>``), the check and opt-out API for the business's own
senders (``/v1/check``, ``/v1/optouts``), ``/healthz``, ``/metrics`` and
``/openapi.json``. ``ServeSettings`` is how it is configured: the ``[serve]`` table of
optouts.toml, or ``OPTOUTS_SERVE_*`` variables.
"""

from ._app import create_app
from ._settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
