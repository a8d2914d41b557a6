"""The bulk check's fast paths give exactly what the plain, per-recipient way gives.

A million-recipient check takes shortcuts: numbers validated all at once, rows laid end to
end when nothing repeated or failed, results made a block at a time. Each is held here
against the straightforward computation, including the inputs that leave the shortcut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

import optouts
from optouts import BatchResult, InvalidNumber, Outcome, RecipientResult
from optouts._batch import Batch, rows_for
from optouts._models import Row, _plain_setters
from optouts._numbers import all_e164, e164_flags, is_e164, normalize
from optouts.ledger import SQLiteLedger
from optouts.ledger._provider import LocalProvider

SENDER = "+18005550100"


def expected_rows(
    recipients: Sequence[object], opted_out: set[str], region: str | None
) -> list[Row]:
    """What a check must answer, worked out one recipient at a time."""
    rows: list[Row] = []
    for raw in recipients:
        try:
            number = normalize(raw, region)
        except InvalidNumber as exc:
            rows.append((str(raw), False, None, exc.reason, None))
        else:
            rows.append((number, True, number in opted_out, None, None))
    return rows


# Numbers: the one-pass check agrees with is_e164


@pytest.mark.parametrize("code", sorted(str(code) for code in COUNTRY_CODE_TO_REGION_CODE))
def test_every_calling_code_and_length_agrees_with_is_e164(code: str) -> None:
    numbers = [f"+{code}{'5' * n}" for n in range(0, 18)]
    for number in numbers:
        assert all_e164([number]) is is_e164(number), number
    assert e164_flags(numbers) == [is_e164(n) for n in numbers]
    assert all_e164(numbers) is all(map(is_e164, numbers))


numberish = st.one_of(
    st.text(alphabet="+0123456789\n \u0661", max_size=16),
    st.sampled_from(["+12025550123", "+447911123456", "+4915123456789", "+1202555012"]),
)


@given(st.lists(numberish, max_size=8))
def test_bulk_verdicts_equal_one_at_a_time(values: list[str]) -> None:
    assert all_e164(values) is all(map(is_e164, values))
    assert e164_flags(values) == [is_e164(value) for value in values]


def test_a_line_break_inside_a_value_is_not_two_numbers() -> None:
    assert not all_e164(["+12025550123\n+12025550124"])
    assert not all_e164(["+12025550123\n"])
    assert all_e164([])


# Batches: positions, unique recipients and rows put back in input order


def answer(batch: Batch, opted_out: set[str]) -> list[Row]:
    """Rows for a prepared batch as a provider answering each chunk in order would give."""
    yes, no = Outcome.OPTED_OUT, Outcome.NOT_OPTED_OUT
    chunks = [
        rows_for(chunk, {r: yes if r in opted_out else no for r in chunk})
        for chunk in batch.chunks()
    ]
    return batch.assemble(chunks)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["+12025550101", "+12025550102", "+447911123456", "+15555550199"]),
            st.sampled_from(["(202) 555-0103", "202.555.0101", "nope", "", "+1555", "+0123"]),
            st.sampled_from([None, 12025550101, b"+12025550101"]),
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=5),
)
def test_batches_answer_like_one_recipient_at_a_time(raw: list[object], chunk_size: int) -> None:
    opted_out = {"+12025550101", "+447911123456"}
    batch = Batch.prepare(raw, chunk_size, "US")
    assert batch.unique == list(dict.fromkeys(p for p in batch.positions if type(p) is str))
    assert all(len(chunk) <= chunk_size for chunk in batch.chunks())
    assert answer(batch, opted_out) == expected_rows(raw, opted_out, "US")


def test_a_batch_prepared_in_slices_is_the_batch_prepared_at_once() -> None:
    raw: list[object] = ["+12025550101", "bad", "(202) 555-0102", "+12025550101", None] * 7
    at_once = Batch.prepare(raw, 3, "US")
    sliced = Batch([], [], 3)
    for start in range(0, len(raw), 4):
        sliced.extend(raw[start : start + 4], "US")
    sliced.seal()
    assert sliced.positions == at_once.positions
    assert sliced.unique == at_once.unique
    assert answer(sliced, set()) == answer(at_once, set())


def test_repeated_input_off_the_fast_path_is_normalised_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []

    def counting(value: object, region: str | None = None) -> str:
        calls.append(value)
        return normalize(value, region)

    monkeypatch.setattr("optouts._batch.normalize", counting)
    batch = Batch.prepare(["(202) 555-0101", "bad", "(202) 555-0101", "bad"] * 50, 10, "US")
    assert sorted(map(str, calls)) == ["(202) 555-0101", "bad"]
    assert batch.unique == ["+12025550101"]
    failed = batch.positions[1]
    assert isinstance(failed, RecipientResult)
    assert not failed.ok
    assert failed.error


def test_rows_follow_the_chunk_whatever_order_the_provider_answers_in() -> None:
    chunk = ["+12025550101", "+12025550102", "+12025550103"]
    answered = {
        "+12025550103": Outcome.OPTED_OUT,
        "+19995550100": Outcome.OPTED_OUT,  # not asked about: ignored
        "+12025550101": Outcome.NOT_OPTED_OUT,
    }
    rows = rows_for(chunk, answered)
    assert [row[0] for row in rows] == chunk
    assert rows[0] == ("+12025550101", True, False, None, None)
    assert rows[1][1:3] == (False, None)  # skipped by the provider: failed, unknown
    assert "no result" in str(rows[1][3])
    assert rows[2] == ("+12025550103", True, True, None, None)


# Results: made a block at a time, equal to calling the class


def rows_of(count: int) -> list[tuple[str, bool, bool | None, str | None, int | None]]:
    return [
        (f"+1202555{i:04d}", i % 3 != 0, None if i % 3 == 0 else i % 2 == 0, None, None)
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 1000])
def test_results_made_in_blocks_equal_the_class_called_per_row(count: int) -> None:
    rows = rows_of(count)
    made = list(RecipientResult._from_rows(rows))
    called = [RecipientResult(*row) for row in rows]
    assert made == called
    assert [hash(r) for r in made] == [hash(r) for r in called]
    assert [repr(r) for r in made] == [repr(r) for r in called]
    assert all(type(r) is RecipientResult for r in made)
    if made:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            made[0].ok = False  # type: ignore[misc]
        assert attrs.evolve(made[0], error="x") == attrs.evolve(called[0], error="x")


def test_the_block_path_is_taken_for_recipient_results() -> None:
    """A change to RecipientResult (a validator, say) turns it off: then this says so."""
    assert _plain_setters(RecipientResult) is not None


def test_rows_of_other_lengths_go_through_the_class() -> None:
    short = [("+12025550101", True)] * 300
    made = list(RecipientResult._from_rows(short))  # type: ignore[arg-type]
    assert made == [RecipientResult("+12025550101", True)] * 300
    mixed = [("+12025550101", True), ("+12025550102", True, True, None, None, "extra")]
    with pytest.raises(TypeError):
        list(RecipientResult._from_rows(mixed))  # type: ignore[arg-type]


def test_a_class_that_validates_is_called_not_bypassed() -> None:
    @attrs.frozen
    class Checked:
        value: int = attrs.field(validator=attrs.validators.gt(0))

    @attrs.frozen
    class Hooked:
        value: int

        def __attrs_post_init__(self) -> None:
            raise ValueError("hook ran")

    @attrs.frozen(cache_hash=True)
    class Cached:
        value: int

    assert _plain_setters(Checked) is None
    assert _plain_setters(Hooked) is None
    assert _plain_setters(Cached) is None
    with pytest.raises(ValueError, match="must be > 0"):
        list(RecipientResult._from_rows.__func__(Checked, [(0,)]))  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="hook ran"):
        list(RecipientResult._from_rows.__func__(Hooked, [(1,)]))  # type: ignore[attr-defined]


def test_batch_result_reads_the_same_whichever_way() -> None:
    rows = rows_of(600)
    result = BatchResult(rows, "check")
    assert list(result) == [RecipientResult(*row) for row in rows]
    assert result[10:300] == [RecipientResult(*row) for row in rows[10:300]]
    assert result[-1] == RecipientResult(*rows[-1])


# End to end: the ledger through the client


class CountingStore(SQLiteLedger):
    """A ledger that remembers which recipients each lookup asked about."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.asked: list[list[int]] = []

    def opted_out(self, senders: Sequence[str], recipients: Sequence[int]) -> set[int]:
        self.asked.append(list(recipients))
        return super().opted_out(senders, recipients)


@pytest.fixture
def store() -> Iterator[CountingStore]:
    counting = CountingStore(":memory:")
    yield counting
    counting.close()


def test_check_answers_each_input_in_order_and_looks_up_valid_numbers_once(
    store: CountingStore,
) -> None:
    with optouts.Client(LocalProvider(store), default_region="US") as client:
        client.add(SENDER, ["+12025550101", "+447911123456"]).raise_for_failures()
        store.asked.clear()
        raw: list[object] = [
            "+12025550101",
            "not a number",
            "(202) 555-0101",
            "+12025550102",
            None,
            "+447911123456",
            "+12025550101",
            "+1555",
        ]
        result = client.check(SENDER, raw)  # type: ignore[arg-type]
    assert result.rows == expected_rows(raw, {"+12025550101", "+447911123456"}, "US")
    assert [r.opted_out for r in result] == [True, None, True, False, None, True, True, None]
    assert sorted(itertools.chain.from_iterable(store.asked)) == [
        12025550101,
        12025550102,
        447911123456,
    ]


def test_a_large_clean_check_takes_the_end_to_end_path(store: CountingStore) -> None:
    numbers = [f"+1202{i:07d}" for i in range(30_000)]
    with optouts.Client(LocalProvider(store)) as client:
        client.add(SENDER, numbers[::3]).raise_for_failures()
        result = client.check(SENDER, numbers)
    assert [r.recipient for r in result] == numbers
    assert [r.opted_out for r in result] == [i % 3 == 0 for i in range(30_000)]
    assert result.ok


def test_a_stream_yields_a_whole_window_before_reading_the_next(store: CountingStore) -> None:
    """Results are made in blocks, but never across windows: a window's last results do
    not wait for input that has not arrived (here, input that fails when read)."""
    with optouts.Client(LocalProvider(store)) as client:
        window = client._window_size()
        assert window % 256  # the window ends part way through a block

        def numbers() -> Iterator[str]:
            yield from (f"+1202{i:07d}" for i in range(window))
            raise RuntimeError("the input broke off")

        received: list[RecipientResult] = []
        results = client.stream("check", SENDER, numbers())
        with pytest.raises(RuntimeError, match="broke off"):
            received.extend(results)  # keeps what came before the error
    assert len(received) == window
    assert received[-1].recipient == f"+1202{window - 1:07d}"
