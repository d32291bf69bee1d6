from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.persistence import customer_emails, customer_phones
from crm.repository import CustomerRepository, InteractionRepository
from store import DuplicateError, NotFoundError
from tests.store.conftest import FakeClock


@pytest.fixture
def repo(engine: AsyncEngine, clock: FakeClock) -> CustomerRepository:
    return CustomerRepository(engine, clock=clock)


@pytest.mark.parametrize(
    "caller_id", ["+1 555 010 0001", "(555) 010-0001", "5550100001", "15550100001", "+15550100001"]
)
async def test_caller_id_in_any_us_format_finds_the_customer(
    repo: CustomerRepository, caller_id: str
) -> None:
    maria = await repo.create("Maria Gonzalez", phones=["555-010-0001"])
    await repo.create("Someone Else", phones=["555-010-0002"])

    assert await repo.find_by_phone(caller_id) == maria


async def test_number_that_matches_nobody_finds_no_customer(repo: CustomerRepository) -> None:
    await repo.create("Maria Gonzalez", phones=["+1 555 010 0001"])

    assert await repo.find_by_phone("+1 555 010 0099") is None


@pytest.mark.parametrize("caller_id", ["", "anonymous", "<unknown>"])
async def test_withheld_caller_id_finds_no_customer(
    repo: CustomerRepository, caller_id: str
) -> None:
    await repo.create("Maria Gonzalez", phones=["+1 555 010 0001"])

    assert await repo.find_by_phone(caller_id) is None


async def test_local_number_stored_with_dashes_is_found_from_bare_caller_id(
    engine: AsyncEngine,
) -> None:
    repo = CustomerRepository(engine, default_region=None)
    customer = await repo.create("Local Larry", phones=["555-1234"])

    assert customer.phones == ("5551234",)
    assert await repo.find_by_phone("5551234") == customer


async def test_internal_extension_is_stored_as_its_digits(repo: CustomerRepository) -> None:
    customer = await repo.create("Front Desk", phones=["1001"])

    assert customer.phones == ("1001",)
    assert await repo.find_by_phone("1001") == customer


async def test_create_stores_normalised_phones_and_lowercased_emails(
    repo: CustomerRepository,
) -> None:
    customer = await repo.create(
        "  Priya   Raman ",
        phones=[("(555) 010-0004", "mobile"), "+1 555 010 0014", "555.010.0004"],
        emails=["Priya@Example.ORG "],
        account_number=" ACC-1 ",
        notes="VIP",
    )

    assert customer.name == "Priya Raman"
    assert customer.phones == ("+15550100004", "+15550100014")
    assert customer.emails == ("priya@example.org",)
    assert customer.account_number == "ACC-1"
    assert customer.created_at.tzinfo is not None
    assert await repo.get(customer.id) == customer


async def test_a_phone_that_does_not_normalise_is_refused_by_name(
    repo: CustomerRepository,
) -> None:
    with pytest.raises(ValueError, match="not-a-number"):
        await repo.create("Bad Phone", phones=["+1 555 010 0001", "not-a-number"])

    assert await repo.search("Bad Phone") == []


async def test_an_invalid_email_is_refused_by_name(repo: CustomerRepository) -> None:
    with pytest.raises(ValueError, match="nobody-at-example"):
        await repo.create("Bad Mail", emails=["nobody-at-example"])


async def test_account_number_is_unique_with_a_clear_error(repo: CustomerRepository) -> None:
    first = await repo.create("First Holder", account_number="ACC-10001")

    with pytest.raises(DuplicateError, match="ACC-10001") as raised:
        await repo.create("Second Holder", account_number="ACC-10001")

    assert raised.value.field == "account number"
    assert isinstance(raised.value, ValueError)
    assert await repo.find_by_account("ACC-10001") == first
    assert await repo.search("Second Holder") == []


async def test_updating_to_a_taken_account_number_is_refused(repo: CustomerRepository) -> None:
    await repo.create("First Holder", account_number="ACC-1")
    second = await repo.create("Second Holder", account_number="ACC-2")

    with pytest.raises(DuplicateError, match="ACC-1"):
        await repo.update(second.id, account_number="ACC-1")

    assert (await repo.get(second.id)) == second


async def test_many_customers_may_have_no_account_number(repo: CustomerRepository) -> None:
    a = await repo.create("No Account A")
    b = await repo.create("No Account B", account_number="   ")

    assert a.account_number is None
    assert b.account_number is None


@pytest.mark.parametrize(
    "name", ["Jörg Müller", "Zoë Ångström", "王小明", "Robert <script>alert('x')</script> Tables"]
)
async def test_names_round_trip_exactly(repo: CustomerRepository, name: str) -> None:
    created = await repo.create(name, phones=["+1 555 010 0003"])

    found = await repo.find_by_phone("+1 555 010 0003")
    assert found is not None
    assert found.name == name
    assert found == created


async def test_find_by_email_ignores_case(repo: CustomerRepository) -> None:
    customer = await repo.create("Mail User", emails=["mail.user@example.com"])

    assert await repo.find_by_email("  MAIL.User@Example.com") == customer
    assert await repo.find_by_email("other@example.com") is None
    assert await repo.find_by_email("not an address") is None


async def test_search_matches_name_phone_email_and_account(repo: CustomerRepository) -> None:
    maria = await repo.create(
        "Maria Gonzalez", phones=["+1 555 010 0001"], emails=["maria@example.com"]
    )
    chen = await repo.create("Chen Wei", phones=["+1 555 010 0005"], account_number="ACC-77")

    assert await repo.search("gonz") == [maria]
    assert await repo.search("010-0005") == [chen]
    assert await repo.search("MARIA@") == [maria]
    assert await repo.search("acc-7") == [chen]
    assert await repo.search("555") == [chen, maria]
    assert await repo.search("555", limit=1) == [chen]
    assert await repo.search("   ") == []


async def test_search_treats_like_wildcards_literally(repo: CustomerRepository) -> None:
    await repo.create("Maria Gonzalez")
    percent = await repo.create("100% Club")

    assert await repo.search("%") == [percent]
    assert await repo.search("_") == []


async def test_update_changes_fields_and_none_clears_them(
    repo: CustomerRepository, clock: FakeClock
) -> None:
    customer = await repo.create("Old Name", account_number="ACC-1", notes="note")
    clock.advance(60)

    updated = await repo.update(customer.id, name="New Name", account_number=None)

    assert updated.name == "New Name"
    assert updated.account_number is None
    assert updated.notes == "note"
    assert updated.created_at == customer.created_at


async def test_update_of_a_missing_customer_raises_not_found(repo: CustomerRepository) -> None:
    with pytest.raises(NotFoundError):
        await repo.update(424242, name="Ghost")


async def test_add_and_remove_phone_and_email(repo: CustomerRepository) -> None:
    customer = await repo.create("Chen Wei", phones=["+1 555 010 0005"])

    customer = await repo.add_phone(customer.id, "(555) 010-0015", label="home")
    customer = await repo.add_phone(customer.id, "5550100015")  # already there
    customer = await repo.add_email(customer.id, "Chen@Example.com")
    assert customer.phones == ("+15550100005", "+15550100015")
    assert customer.emails == ("chen@example.com",)
    assert await repo.find_by_phone("555 010 0015") == customer

    customer = await repo.remove_phone(customer.id, "+1 555 010 0005")
    customer = await repo.remove_email(customer.id, "CHEN@example.com")
    assert customer.phones == ("+15550100015",)
    assert customer.emails == ()
    assert await repo.find_by_phone("+1 555 010 0005") is None


async def test_add_phone_refuses_a_non_number(repo: CustomerRepository) -> None:
    customer = await repo.create("Chen Wei")

    with pytest.raises(ValueError, match="call me maybe"):
        await repo.add_phone(customer.id, "call me maybe")


async def test_delete_removes_phones_and_emails_but_keeps_history(
    engine: AsyncEngine, repo: CustomerRepository, clock: FakeClock
) -> None:
    customer = await repo.create(
        "Leaving Soon", phones=["+1 555 010 0001"], emails=["leaving@example.com"]
    )
    interactions = InteractionRepository(engine, clock=clock)
    interaction = await interactions.create(
        channel="voice", direction="inbound", customer_id=customer.id, started_at=clock()
    )

    assert await repo.delete(customer.id)
    assert not await repo.delete(customer.id)

    assert await repo.get(customer.id) is None
    assert await repo.find_by_phone("+1 555 010 0001") is None
    async with engine.connect() as conn:
        phones = (await conn.execute(select(func.count()).select_from(customer_phones))).scalar()
        emails = (await conn.execute(select(func.count()).select_from(customer_emails))).scalar()
    assert (phones, emails) == (0, 0)
    kept = await interactions.get(interaction.id)
    assert kept is not None
    assert kept.customer_id is None


async def test_shared_number_finds_the_first_customer_and_lists_both(
    repo: CustomerRepository,
) -> None:
    first = await repo.create("Household One", phones=["+1 555 010 0020"])
    second = await repo.create("Household Two", phones=["(555) 010-0020"])

    assert await repo.find_by_phone("5550100020") == first
    assert await repo.find_all_by_phone("5550100020") == [first, second]


async def test_concurrent_creates_with_one_account_number_let_exactly_one_win(
    repo: CustomerRepository,
) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(
            *(repo.create(f"Racer {n}", account_number="ACC-RACE") for n in range(4)),
            return_exceptions=True,
        ),
        timeout=30,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(error, DuplicateError) for error in losers), losers
    assert await repo.find_by_account("ACC-RACE") == winners[0]
