"""Value types: immutable, per-recipient, and the public surface is what the README says."""

from __future__ import annotations

import inspect

import attrs
import pytest

import optouts
from optouts import BatchResult, OptOut, Outcome, RecipientResult, RecipientsFailed, Status


def batch(*items: RecipientResult) -> BatchResult:
    return BatchResult.of(items, operation="check", sender="+18005550100", provider="local")


def test_batch_result_is_a_sequence_in_input_order() -> None:
    a = RecipientResult("+12025550101", True, True)
    b = RecipientResult("bad", False, error="not a phone number")
    result = batch(a, b, a)
    assert len(result) == 3
    assert list(result) == [a, b, a]
    assert result[1] == b
    assert result[-1] == a
    assert list(result[0:2]) == [a, b]
    assert not result.ok
    assert result.failed == (b,)
    assert "3 results" in repr(result)


def test_raise_for_failures() -> None:
    good = batch(RecipientResult("+12025550101", True, False))
    assert good.raise_for_failures() is good
    bad = batch(RecipientResult("x", False, error="broken"))
    with pytest.raises(RecipientsFailed, match="1 recipient.*x: broken") as raised:
        bad.raise_for_failures()
    assert raised.value.failed == (RecipientResult("x", False, error="broken"),)


def test_values_are_frozen() -> None:
    result = RecipientResult("+12025550101", True, True)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.ok = False  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Outcome.OPTED_OUT.ok = False  # type: ignore[misc]


def test_outcomes_pair_with_recipients() -> None:
    assert Outcome.OPTED_OUT.for_recipient("+1") == ("+1", True, True, None, None)
    assert Outcome.failure("gone", 500) == Outcome(False, None, "gone", 500)


def test_opt_out_records_convert_status_and_keep_raw_fields() -> None:
    record = OptOut("+18005550100", "+12025550101", "opted-out", raw={"source": "Carrier"})
    assert record.status is Status.OPTED_OUT
    assert record.opted_out
    assert record.raw == {"source": "Carrier"}
    assert str(Status.OPTED_IN) == "opted-in"
    with pytest.raises(ValueError, match="opted-sideways"):
        OptOut("+18005550100", "+12025550101", "opted-sideways")


def test_public_names_are_sorted_and_importable() -> None:
    assert optouts.__all__ == sorted(optouts.__all__)
    for name in optouts.__all__:
        assert hasattr(optouts, name), name


def test_public_classes_say_why_they_exist() -> None:
    for name in optouts.__all__:
        value = getattr(optouts, name)
        if getattr(value, "__origin__", None) is not None:
            continue  # a type alias such as Exchange (a class to inspect on Python 3.10)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_error_tree() -> None:
    for error in (
        optouts.ConfigurationError,
        optouts.UnsupportedOperation,
        optouts.InvalidNumber,
        optouts.InvalidCursor,
        optouts.RecipientsFailed,
        optouts.ProviderError,
    ):
        assert issubclass(error, optouts.OptOutError)
    assert issubclass(optouts.AuthenticationError, optouts.ProviderError)
    assert issubclass(optouts.RateLimited, optouts.ProviderError)
    failure = optouts.ProviderError(
        "refused", provider="azure", status_code=400, code="InvalidApiVersion", request_id="r-1"
    )
    assert str(failure) == (
        "refused (provider=azure, status=400, code=InvalidApiVersion, request_id=r-1)"
    )
    assert not failure.retryable
    assert optouts.ProviderError("boom", status_code=503).retryable
    assert optouts.RateLimited("wait", retry_after=3).retryable
    assert not optouts.AuthenticationError("no", status_code=401).retryable
