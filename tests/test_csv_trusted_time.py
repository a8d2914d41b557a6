"""CSV import takes no time on trust: a row dated ahead is recorded when it was read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

import optouts
from optouts import import_csv
from optouts.ledger import Change, datetime_of
from optouts.ledger._base import CLOCK_SKEW

S = "+18005550100"
R = "+12025550101"
HEADER = "sender,recipient,status,source,updated_at\n"


@pytest.fixture
def ledger(ledger_database: str) -> Iterator[optouts.Ledger]:
    with optouts.Ledger.open(ledger_database) as opened:
        yield opened


def iso_ahead(micros: int) -> str:
    """The ISO 8601 time ``micros`` ahead of the ledger's clock now."""
    moment = datetime_of(optouts.Ledger.now()) + timedelta(microseconds=micros)
    return moment.isoformat().replace("+00:00", "Z")


def imported(ledger: optouts.Ledger, *rows: str) -> tuple[int, int]:
    """Import ``rows``; the ledger's clock just before and just after."""
    before = optouts.Ledger.now()
    report = import_csv(ledger, [HEADER, *(row + "\n" for row in rows)])
    after = optouts.Ledger.now()
    assert report.ok, report.errors
    assert report.applied == len(rows)
    return before, after


def recorded(ledger: optouts.Ledger, recipient: str = R) -> tuple[bool, int, list[int]]:
    """The pair's state and time, and the times of its history rows."""
    trail = ledger.audit(recipient)
    ((_, opted_out, _, _, _, at),) = trail.current
    return opted_out, at, [when for _, _, _, when in trail.history]


@pytest.mark.parametrize("state", ["opted-in", "opted-out"])
def test_a_row_dated_in_the_year_9999_is_recorded_when_it_was_imported(
    ledger: optouts.Ledger, state: str
) -> None:
    before, after = imported(ledger, f"{S},{R},{state},partner,9999-12-31T23:59:59Z")
    opted_out, at, history = recorded(ledger)
    assert opted_out is (state == "opted-out")
    assert before <= at <= after
    assert history == [at]


def test_a_row_dated_just_beyond_the_allowance_is_recorded_when_it_was_imported(
    ledger: optouts.Ledger,
) -> None:
    before, after = imported(
        ledger, f"{S},{R},opted-out,partner,{iso_ahead(CLOCK_SKEW + 60_000_000)}"
    )
    _, at, _ = recorded(ledger)
    assert before <= at <= after


def test_an_opt_out_two_minutes_ahead_keeps_its_time(ledger: optouts.Ledger) -> None:
    when = iso_ahead(120_000_000)
    imported(ledger, f"{S},{R},opted-out,partner,{when}")
    _, at, history = recorded(ledger)
    assert datetime_of(at).isoformat().replace("+00:00", "Z") == when
    assert history == [at]


def test_an_opt_in_two_minutes_ahead_counts_from_when_it_was_imported(
    ledger: optouts.Ledger,
) -> None:
    before, after = imported(ledger, f"{S},{R},opted-in,partner,{iso_ahead(120_000_000)}")
    opted_out, at, _ = recorded(ledger)
    assert not opted_out
    assert before <= at <= after


@pytest.mark.parametrize("ahead", [120_000_000, 86_400_000_000, None])
def test_a_future_dated_opt_in_never_blocks_a_stop_received_after_it(
    ledger: optouts.Ledger, ahead: int | None
) -> None:
    when = "9999-12-31T23:59:59Z" if ahead is None else iso_ahead(ahead)
    imported(ledger, f"{S},{R},opted-in,partner,{when}")
    assert ledger.opted_out(S, [R]) == [False]
    stop = Change(S, int(R[1:]), True, "inbound:test", optouts.Ledger.now(), "US")
    assert ledger.record([stop]) == 1
    assert ledger.opted_out(S, [R]) == [True]
    opted_out, at, history = recorded(ledger)
    assert (opted_out, at) == (True, stop.at)
    assert len(history) == 2


def test_rows_dated_ahead_are_read_alike_wherever_they_are_in_a_file(
    ledger: optouts.Ledger,
) -> None:
    """The rule holds for every row of a long file, whichever way its lines are read."""
    rows = [f"{S},+1202555{n:04d},opted-in,partner,9999-01-01T00:00:00Z" for n in range(3000)]
    rows[1500] = f'{S},+12025551500,opted-in,"quoted, partner",9999-01-01T00:00:00Z'
    before, after = imported(ledger, *rows)
    for n in (0, 1500, 2999):
        _, at, _ = recorded(ledger, f"+1202555{n:04d}")
        assert before <= at <= after
