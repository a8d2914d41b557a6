"""The service's address, found by botocore exactly as the AWS CLI and boto3 find it.

The endpoint is not only a function of the Region: botocore also reads
``AWS_USE_FIPS_ENDPOINT`` and ``AWS_USE_DUALSTACK_ENDPOINT`` (``use_fips_endpoint``,
``use_dualstack_endpoint`` in the profile), and endpoint URLs configured for the service
or the profile (``AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2``, ``AWS_ENDPOINT_URL``, the
profile's ``endpoint_url`` and its ``[services]`` section), and knows each partition's
DNS suffix. Building ``https://sms-voice.<region>.<suffix>`` by hand silently dropped FIPS,
so the address is asked of a botocore client of the service, made from the same session
(profile, files, environment) as the credentials.

Making that client loads the service's model (about 60 ms, once per provider) and sends
nothing: it is unsigned, so it runs no credential chain, and in the ``legacy`` defaults
mode, so a profile's ``defaults_mode = auto`` does not ask the instance metadata service
for the Region. The provider's own ``endpoint_url`` setting, when given, is used instead.
"""

from __future__ import annotations

from typing import Any

from botocore import UNSIGNED  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

from optouts import ConfigurationError
from optouts.plugin import clip

from ._model import SERVICE_NAME

__all__ = ["default_endpoint"]

_RESOLVE_ONLY = Config(signature_version=UNSIGNED, defaults_mode="legacy")


def default_endpoint(region: str, session: Any) -> str:
    """The endpoint botocore sends this service's requests to in ``region``.

    ``session`` is a botocore ``Session``; its profile and the environment decide FIPS,
    dual-stack and configured endpoint URLs as they do for the AWS CLI.
    """
    try:
        client = session.create_client(SERVICE_NAME, region_name=region, config=_RESOLVE_ONLY)
    except BotoCoreError as error:
        raise ConfigurationError(
            f"botocore could not find the endpoint of {SERVICE_NAME} in {region} for "
            f"provider 'aws': {clip(str(error), 300)}; set 'endpoint_url' "
            "(OPTOUTS_AWS_ENDPOINT_URL) to choose one"
        ) from None
    return str(client.meta.endpoint_url)
