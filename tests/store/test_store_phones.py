from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.phones import normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "+1 555 010 0001",
        "(555) 010-0001",
        "5550100001",
        "15550100001",
        "555.010.0001",
        " 1-555-010-0001 ",
    ],
)
def test_us_formats_of_one_number_normalise_to_the_same_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+15550100001"


def test_international_number_with_us_exit_code_becomes_e164() -> None:
    assert normalize_phone("011 44 20 7946 0000") == "+442079460000"


def test_plus_number_needs_no_region() -> None:
    assert normalize_phone("+44 20 7946 0000", default_region=None) == "+442079460000"


def test_national_number_is_read_in_the_given_region() -> None:
    assert normalize_phone("020 7946 0000", default_region="GB") == "+442079460000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1001", "1001"), ("555-1234", "5551234"), ("+12", "+12"), ("911", "911")],
)
def test_short_and_local_numbers_keep_their_digits(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("region", ["US", None])
def test_local_caller_id_and_stored_local_number_agree_with_or_without_region(
    region: str | None,
) -> None:
    assert normalize_phone("5551234", region) == normalize_phone("555-1234", region)


@pytest.mark.parametrize(
    "raw", ["", "   ", "anonymous", "<unknown>", "abc123", "*97", "+", "---", "1" * 30]
)
def test_empty_or_garbage_is_not_a_number(raw: str) -> None:
    assert normalize_phone(raw) is None


@given(st.text(alphabet="0123456789+-() .", max_size=24), st.sampled_from(["US", "GB", None]))
def test_normalising_twice_changes_nothing(raw: str, region: str | None) -> None:
    once = normalize_phone(raw, region)
    if once is not None:
        assert normalize_phone(once, region) == once
