"""HMAC signing: the same request, date and key give the signature the documented algorithm
yields. Expected values were computed with openssl, outside Python, and are also recomputed
here step by step from the reference's description."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from optouts_azure import HMACAuth

RAW_KEY = b"test-key-for-optouts-azure-vectors-0123456789"
KEY_B64 = "dGVzdC1rZXktZm9yLW9wdG91dHMtYXp1cmUtdmVjdG9ycy0wMTIzNDU2Nzg5"
WHEN = 1691671195.0  # Thu, 10 Aug 2023 12:39:55 GMT, the date of the vendor's sample
DATE = "Thu, 10 Aug 2023 12:39:55 GMT"
EMPTY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
SAMPLE_BODY = b'{"from":"+15551234567","recipients":[{"to":"+15550112233"},{"to":"+15550112234"}]}'
UNICODE_BODY = '{"from":"Zürich","recipients":[{"to":"+41445551234"}],"note":"café ☎"}'.encode()

VECTORS = [
    pytest.param(
        "https://contoso.communication.azure.com/sms/optouts:add?api-version=2026-01-23",
        SAMPLE_BODY,
        "fhY/najz6nhMSskHummDd7jTPuXiwFglt4z8v66CB50=",
        "ZawwdeiamV4Tr9E+2J04Q5Mb1G2CxfGpwB9RRrZKVW0=",
        id="sample-body",
    ),
    pytest.param(
        "http://127.0.0.1:8089/sms/optouts:check?api-version=2025-09-17",
        b"",
        EMPTY_HASH,
        "+xN8G9LXPcBH4w6NGk9LbmSOQWnrZ/QT+8Ai8gg//Gk=",
        id="empty-body-non-default-port",
    ),
    pytest.param(
        "https://contoso.communication.azure.com/sms/optouts:remove?api-version=2026-01-23",
        UNICODE_BODY,
        "h0saWqbrrx3/kM8j2EZwPxsgblTrT/SbNDW1V3FWa4M=",
        "AqJFUpFoQvftKsxNgMSYL+P0+zcOB0tb1X4dxKIcGUI=",
        id="non-ascii-body",
    ),
]


def signed(url: str, body: bytes, key: bytes = RAW_KEY) -> httpx.Request:
    request = httpx.Request("POST", url, content=body)
    flow = HMACAuth(key, clock=lambda: WHEN).sync_auth_flow(request)
    return next(flow)


def reference_signature(method: str, path_and_query: str, host: str, body: bytes) -> str:
    """The algorithm as the reference states it, written out independently of the module."""
    content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    to_sign = method + "\n" + path_and_query + "\n" + DATE + ";" + host + ";" + content_hash
    mac = hmac.new(base64.b64decode(KEY_B64), to_sign.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@pytest.mark.parametrize(("url", "body", "content_hash", "signature"), VECTORS)
def test_signature_vectors(url: str, body: bytes, content_hash: str, signature: str) -> None:
    request = signed(url, body)
    assert request.headers["x-ms-date"] == DATE
    assert request.headers["x-ms-content-sha256"] == content_hash
    assert request.headers["authorization"] == (
        f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
    )


@pytest.mark.parametrize(("url", "body", "content_hash", "signature"), VECTORS)
def test_vectors_follow_the_documented_algorithm(
    url: str, body: bytes, content_hash: str, signature: str
) -> None:
    assert base64.b64encode(hashlib.sha256(body).digest()).decode() == content_hash
    parsed = httpx.URL(url)
    host = parsed.host + (f":{parsed.port}" if parsed.port else "")
    path_and_query = parsed.path + "?" + parsed.query.decode()
    assert reference_signature("POST", path_and_query, host, body) == signature


def test_empty_body_hash_is_the_documented_one() -> None:
    assert (
        signed("https://x.communication.azure.com/sms/optouts:add", b"").headers[
            "x-ms-content-sha256"
        ]
        == EMPTY_HASH
    )


def test_default_port_is_left_out_of_the_host() -> None:
    with_port = signed("https://contoso.communication.azure.com:443/p?a=1", b"{}")
    without = signed("https://contoso.communication.azure.com/p?a=1", b"{}")
    assert with_port.headers["authorization"] == without.headers["authorization"]


def test_query_is_signed_as_sent_on_the_wire() -> None:
    request = httpx.Request(
        "POST", "https://contoso.communication.azure.com/sms/optouts:add", params={"q": "a b/é"}
    )
    next(HMACAuth(RAW_KEY, clock=lambda: WHEN).sync_auth_flow(request))
    wire = request.url.raw_path.decode()
    # httpx 0.28 writes the space as "+", 0.27 as "%20": either way, what is signed is the wire
    assert wire in ("/sms/optouts:add?q=a+b%2F%C3%A9", "/sms/optouts:add?q=a%20b%2F%C3%A9")
    expected = reference_signature("POST", wire, "contoso.communication.azure.com", b"")
    assert request.headers["authorization"].endswith(f"Signature={expected}")


def test_the_date_is_english_and_gmt_whatever_the_clock() -> None:
    request = signed("https://contoso.communication.azure.com/", b"", key=RAW_KEY)
    assert request.headers["x-ms-date"].endswith(" GMT")
    assert request.headers["x-ms-date"][:4] in {
        f"{day}," for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    }


def test_the_body_is_read_before_signing() -> None:
    assert HMACAuth.requires_request_body is True


async def test_async_flow_signs_the_same() -> None:
    url, body = (
        "https://contoso.communication.azure.com/sms/optouts:add?api-version=2026-01-23",
        SAMPLE_BODY,
    )
    request = httpx.Request("POST", url, content=body)
    flow = HMACAuth(RAW_KEY, clock=lambda: WHEN).async_auth_flow(request)
    sent = await flow.__anext__()
    assert sent.headers["authorization"] == signed(url, body).headers["authorization"]


def test_repr_hides_the_key() -> None:
    text = repr(HMACAuth(RAW_KEY))
    assert "test-key" not in text
    assert KEY_B64 not in text
