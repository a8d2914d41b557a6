"""List, add, remove and check against the emulator: paging, partial failures, wildcard, plans."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

import optouts
from optouts import InvalidCursor, ProviderError, Status, UnsupportedOperation
from optouts_ringcentral import Emulator, RingCentralProvider
from optouts_ringcentral.testing import SyncASGITransport, make_provider, numbers

SENDER = "+16505550100"
OTHER = "+16505550199"


def provider_of(client: optouts.Client) -> RingCentralProvider:
    provider = client.provider
    assert isinstance(provider, RingCentralProvider)
    return provider


def test_many_pages_lose_and_repeat_nothing(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    expected = set(numbers(2345))
    emulator.put_many((SENDER, number) for number in expected)
    emulator.put_many((OTHER, number) for number in numbers(10))
    seen = Counter(record.recipient for record in sync_client.list(SENDER, page_size=100))
    assert set(seen) == expected
    assert max(seen.values()) == 1
    assert emulator.counts.most_common(1)[0][1] == 24  # 23 full pages and one short


def test_cursors_are_opaque_and_checked(sync_client: optouts.Client, emulator: Emulator) -> None:
    emulator.put_many((SENDER, number) for number in numbers(5))
    page = sync_client.list_page(SENDER, page_size=2)
    assert page.next_cursor is not None
    assert page.next_cursor.startswith("rc1.")
    second = sync_client.list_page(SENDER, page_size=2, cursor=page.next_cursor)
    assert {r.recipient for r in second.items}.isdisjoint({r.recipient for r in page.items})
    with pytest.raises(InvalidCursor):
        sync_client.list_page(SENDER, page_size=2, cursor="not-ours")


def test_a_cursor_of_the_other_api_is_refused() -> None:
    from optouts_ringcentral._provider import decode_cursor, encode_cursor

    cursor = encode_cursor("a2p-sms", "abc")
    assert decode_cursor("a2p-sms", cursor) == "abc"
    with pytest.raises(InvalidCursor):
        decode_cursor("consents", cursor)


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
def test_a_repeated_page_token_is_an_error_not_a_loop(api: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        calls += 1
        record = (
            {"from": SENDER, "to": f"+1212555000{calls}", "status": "OptOut"}
            if api == "a2p-sms"
            else {
                "from": SENDER,
                "to": f"+1212555000{calls}",
                "optStatus": "OptOut",
                "source": "Api",
            }
        )
        paging = {"perPage": 1, "nextPageToken": "same" if calls > 1 else f"t{calls}"}
        return httpx.Response(200, json={"records": [record], "paging": paging})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with (
        optouts.Client(make_provider(api), http_client=http) as client,
        pytest.raises(ProviderError),
    ):
        list(client.list(SENDER))
    assert calls <= 4


def test_plus_is_percent_encoded(
    sync_client: optouts.Client, sync_transport: SyncASGITransport
) -> None:
    if provider_of(sync_client).api != "a2p-sms":
        pytest.skip("v2 filters travel in a JSON body")
    sync_client.list_page(SENDER)
    request = sync_transport.exchanges[-1][0]
    assert b"from=%2B16505550100" in request.url.query


def test_an_unencoded_plus_reaches_the_server_as_a_space(emulator: Emulator) -> None:
    transport = SyncASGITransport(emulator)
    token = emulator.issue_token()
    with httpx.Client(transport=transport, base_url="http://rc.test") as http:
        response = http.get(
            "/restapi/v1.0/account/~/a2p-sms/opt-outs?from=+16505550100",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameterName"] == "from"


def test_listing_by_status(sync_client: optouts.Client) -> None:
    recipients = numbers(4)
    sync_client.add(SENDER, recipients).raise_for_failures()
    sync_client.remove(SENDER, recipients[:1]).raise_for_failures()
    every = {r.recipient: r.status for r in sync_client.list(SENDER, status="all")}
    assert every == {
        recipients[0]: Status.OPTED_IN,
        **dict.fromkeys(recipients[1:], Status.OPTED_OUT),
    }
    opted_in = [r.recipient for r in sync_client.list(SENDER, status="opted-in")]
    assert opted_in == recipients[:1]
    record = next(iter(sync_client.list(SENDER)))
    assert record.source == "api"
    assert record.provider == "ringcentral"
    assert record.country == "US"


def test_bulk_assign_reports_partial_failures(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    good = numbers(3)
    emulator.rejected.add(good[1])
    result = sync_client.add(SENDER, good)
    assert [item.ok for item in result] == [True, False, True]
    assert [item.opted_out for item in result] == [True, None, True]
    assert result.failed[0].error
    assert emulator.records()[(SENDER, good[0])] == "OptOut"
    assert (SENDER, good[1]) not in emulator.records()


def test_add_chunks_at_1000_numbers(sync_client: optouts.Client, emulator: Emulator) -> None:
    result = sync_client.add(SENDER, numbers(2500))
    assert result.ok
    assert result.requests == 4  # three bulk assigns and the login inside the auth flow
    changes = emulator.counts["addA2PSMSOptOuts"] + emulator.counts["editSmsConsentRecords"]
    assert changes == 3


def test_a_5xx_fails_its_chunk_alone_and_the_client_sends_it_again(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    sync_client.list_page(SENDER)
    emulator.fail_next("503")
    result = sync_client.add(SENDER, numbers(5))
    assert result.ok
    assert all(item.opted_out for item in result)


def test_a_dropped_connection_is_retried(sync_client: optouts.Client, emulator: Emulator) -> None:
    sync_client.list_page(SENDER)
    emulator.fail_next("drop")
    page = sync_client.list_page(SENDER)
    assert page.items == ()


def test_wildcard_opt_out_applies_to_every_sender(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    recipient, other = numbers(2)
    emulator.put("*", recipient)
    for size in (1, 50):  # both plans
        batch = [recipient, other, *numbers(size, "+1313555")]
        result = sync_client.check(SENDER, batch)
        assert [item.opted_out for item in result][:2] == [True, False]
    starred = list(sync_client.list("*"))
    assert [(r.sender, r.recipient) for r in starred] == [("*", recipient)]


def test_v1_accepts_wildcard_changes(sync_client: optouts.Client) -> None:
    (recipient,) = numbers(1)
    provider = provider_of(sync_client)
    if provider.api == "consents":
        refusal = provider.refuses("add", "*")
        assert isinstance(refusal, UnsupportedOperation)  # what a dry run is told
        with pytest.raises(UnsupportedOperation) as refused:
            sync_client.add("*", [recipient])
        assert str(refused.value) == str(refusal)
        return
    assert provider.refuses("add", "*") is None
    assert sync_client.add("*", [recipient]).ok
    assert [item.opted_out for item in sync_client.check(OTHER, [recipient])] == [True]


def test_an_opt_in_of_the_sender_does_not_undo_an_account_opt_out(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    (recipient,) = numbers(1)
    emulator.put("*", recipient)
    emulator.put(SENDER, recipient, "OptIn")
    assert [item.opted_out for item in sync_client.check(SENDER, [recipient])] == [True]


def test_check_picks_the_cheaper_plan(sync_client: optouts.Client, emulator: Emulator) -> None:
    provider = provider_of(sync_client)
    emulator.put_many((SENDER, number) for number in numbers(2500))
    plan = sync_client.check(SENDER, numbers(1)).info["check_plan"]
    assert plan.plan == "lookup"
    assert plan.requests == 1

    big = numbers(3000, "+1313555")
    result = sync_client.check(SENDER, [*numbers(10), *big])
    assert [item.opted_out for item in result] == [True] * 10 + [False] * 3000
    plan = result.info["check_plan"]
    assert plan.plan == "list"
    assert not plan.fell_back
    # v1: three pages of `from=*`, every sender's list at once; v2: three of the sender's
    # search and one of the account-wide (coverage Account) records.
    listed = 3 if provider.v1 else 4
    assert plan.requests == listed
    assert provider.list_cost(SENDER) == listed


def test_a_wrong_size_guess_costs_at_most_the_lookups_again(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    provider = provider_of(sync_client)
    if provider.api != "a2p-sms":
        pytest.skip("on v2 a batch this small is one lookup request")
    emulator.put_many((SENDER, number) for number in numbers(5000))
    asked = numbers(4, "+1313555")
    result = sync_client.check(SENDER, asked)
    assert [item.opted_out for item in result] == [False] * 4
    plan = result.info["check_plan"]
    assert plan.plan == "list"
    assert plan.fell_back
    assert plan.requests <= 2 * plan.lookup_requests
    assert sync_client.check(SENDER, asked).info["check_plan"].plan == "lookup"


def test_check_logs_its_plan(sync_client: optouts.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="optouts.ringcentral")
    sync_client.check(SENDER, numbers(1))
    assert "by lookup" in caplog.text


def test_v2_patch_maps_failed_records(emulator: Emulator) -> None:
    emulator.rejected.add("+12125550001")
    with optouts.Client(
        make_provider("consents"), http_client=httpx.Client(transport=SyncASGITransport(emulator))
    ) as client:
        result = client.remove(SENDER, numbers(3))
    assert [item.ok for item in result] == [True, False, True]
    assert [item.opted_out for item in result] == [False, None, False]
    failure = result.failed[0].error
    assert failure is not None
    assert failure.startswith("EMU-101")


def test_v2_search_asks_for_20_recipients_at_most(emulator: Emulator) -> None:
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        make_provider("consents"), http_client=httpx.Client(transport=transport)
    ) as client:
        client.check(SENDER, numbers(45))
    bodies = [
        json.loads(q.content) for q, _ in transport.exchanges if q.url.path.endswith("/search")
    ]
    assert all(len(body.get("to", [])) <= 20 for body in bodies)


# --- v1 `from=*` means any sender ---------------------------------------------------------


def test_the_emulator_serves_from_star_as_any_sender(emulator: Emulator) -> None:
    emulator.put(OTHER, "+12125550001")
    emulator.put("*", "+12125550002")
    emulator.put(SENDER, "+12125550003")
    token = emulator.issue_token()
    with httpx.Client(transport=SyncASGITransport(emulator)) as http:
        answer = http.get(
            "http://127.0.0.1:9/restapi/v1.0/account/~/a2p-sms/opt-outs?from=%2A",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200
    assert {(r["from"], r["to"]) for r in answer.json()["records"]} == {
        (OTHER, "+12125550001"),
        ("*", "+12125550002"),
        (SENDER, "+12125550003"),
    }


def test_v1_listing_counts_only_the_senders_own_and_account_wide_records() -> None:
    """Against a vendor that answers ``from=*`` as RingCentral does: every sender's records."""
    stored = [(OTHER, "+12125550001"), ("*", "+12125550002"), (SENDER, "+12125550003")]
    listed: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/restapi/oauth/"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        sender, recipient = request.url.params.get("from"), request.url.params.get("to")
        listed.append(sender)
        records = [
            {"from": s, "to": t, "status": "OptOut", "source": "Recipient"}
            for s, t in stored
            if sender in (None, "*", s) and recipient in (None, t)
        ]
        return httpx.Response(200, json={"records": records, "paging": {"perPage": 1000}})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    asked = ["+12125550001", "+12125550002", "+12125550003", "+12125550004"]
    with optouts.Client(make_provider(), http_client=http) as client:
        result = client.check(SENDER, asked)
        assert result.info["check_plan"].plan == "list"
        assert [item.opted_out for item in result] == [False, True, True, False]
        assert listed == ["*"]  # one list: `from=*` already holds the sender's own records
        assert [item.opted_out for item in client.check(OTHER, asked)] == [True, True, False, False]
        starred = client.list_page("*")
    assert [(r.sender, r.recipient) for r in starred.items] == [("*", "+12125550002")]


def test_another_senders_opt_out_never_counts(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    recipient, starred, own = numbers(3)
    emulator.put(OTHER, recipient)
    emulator.put("*", starred)
    emulator.put(SENDER, own)
    for size in (0, 50):  # both plans
        result = sync_client.check(SENDER, [recipient, starred, own, *numbers(size, "+1313555")])
        assert [item.opted_out for item in result][:3] == [False, True, True]
    assert [item.opted_out for item in sync_client.check(OTHER, [recipient, own])] == [True, False]


def test_listing_star_gives_the_account_wide_records_only(
    sync_client: optouts.Client, emulator: Emulator
) -> None:
    emulator.put(OTHER, "+12125550001")
    emulator.put("*", "+12125550002")
    starred = list(sync_client.list("*"))
    assert [(r.sender, r.recipient) for r in starred] == [("*", "+12125550002")]
