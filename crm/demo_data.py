"""Demo customers, agents and past interactions for `callwright demo`.

``seed_demo`` is idempotent: agents are matched by username, customers by name, and a
customer's sample interactions are only written when that customer is created.
Numbers are in the fictional +1 555 01xx range.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.persistence import customers
from crm.repository import CustomerRepository, InteractionRepository, PhoneInput
from routing.persistence import AgentRepository
from store.types import utc_now

__all__ = ["DEMO_AGENTS", "DEMO_CUSTOMERS", "seed_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _DemoAgent:
    username: str
    display_name: str
    extension: str
    role: str
    email: str


@dataclass(frozen=True)
class _DemoInteraction:
    days_ago: float
    channel: str
    direction: str
    queue: str | None
    agent: str | None
    disposition: str
    notes: str
    subject: str | None = None
    talk_seconds: int = 240


@dataclass(frozen=True)
class _DemoCustomer:
    name: str
    phones: tuple[PhoneInput, ...]
    emails: tuple[str, ...] = ()
    account_number: str | None = None
    notes: str | None = None
    history: tuple[_DemoInteraction, ...] = field(default=())


DEMO_AGENTS: tuple[_DemoAgent, ...] = (
    _DemoAgent("alice", "Alice Martin", "1001", "agent", "alice@callwright.example"),
    _DemoAgent("bob", "Bob Okafor", "1002", "agent", "bob@callwright.example"),
    _DemoAgent("carol", "Carol Nguyen", "1003", "supervisor", "carol@callwright.example"),
)

DEMO_CUSTOMERS: tuple[_DemoCustomer, ...] = (
    _DemoCustomer(
        "Maria Gonzalez",
        (("+1 555 010 0001", "mobile"),),
        emails=("maria.gonzalez@example.com",),
        account_number="ACC-10001",
        notes="Prefers Spanish. Premium plan since 2019.",
        history=(
            _DemoInteraction(
                6, "voice", "inbound", "support", "alice", "resolved", "Reset router remotely."
            ),
            _DemoInteraction(
                1.5, "voice", "inbound", "billing", "bob", "callback", "Disputes March invoice."
            ),
        ),
    ),
    _DemoCustomer(
        "James O'Brien",
        (("(555) 010-0002", "work"), ("555-010-0012", "home")),
        account_number="ACC-10002",
        history=(
            _DemoInteraction(
                3,
                "email",
                "inbound",
                "support",
                "alice",
                "resolved",
                "Sent the setup guide.",
                subject="Cannot log in to the portal",
                talk_seconds=0,
            ),
        ),
    ),
    _DemoCustomer(
        "Jörg Müller",
        (("+15550100003", "mobile"),),
        emails=("joerg.mueller@example.de",),
        notes="Calls from Germany on business trips.",
        history=(
            _DemoInteraction(2, "voice", "inbound", "sales", "bob", "sale", "Upgraded to 3 seats."),
        ),
    ),
    _DemoCustomer(
        "Priya Raman",
        (("555.010.0004", "mobile"),),
        emails=("priya@example.org",),
        account_number="ACC-10004",
    ),
    _DemoCustomer("Chen Wei", (("5550100005", "work"),)),
    _DemoCustomer(
        "Fatima Al-Sayed",
        (("+1 (555) 010-0006", "mobile"),),
        history=(
            _DemoInteraction(
                0.2, "voice", "outbound", None, "carol", "no-answer", "Left a voicemail."
            ),
        ),
    ),
    _DemoCustomer("Olivia Smith", (("15550100007", "home"),), notes="Hard of hearing."),
    _DemoCustomer(
        "Robert <script>alert('x')</script> Tables",
        (("+1 555 010 0008", None),),
        notes="<b>Escaping test</b>: this name and note hold markup on purpose.",
    ),
    _DemoCustomer("Noah Williams", (("+1 555 010 0009", "mobile"),), account_number="ACC-10009"),
    _DemoCustomer(
        "Zoë Ångström",
        (("+1 555 010 0010", "work"),),
        emails=("zoe.angstrom@example.se",),
    ),
)


async def seed_demo(engine: AsyncEngine, *, now: datetime | None = None) -> None:
    """Create the demo agents, customers and interactions that are missing."""
    now = now or utc_now()
    agent_repo = AgentRepository(engine)
    agent_ids: dict[str, int] = {}
    for demo_agent in DEMO_AGENTS:
        agent = await agent_repo.by_username(demo_agent.username)
        if agent is None:
            agent = await agent_repo.create(
                demo_agent.username,
                demo_agent.display_name,
                demo_agent.extension,
                email=demo_agent.email,
                role=demo_agent.role,
                skills={"support": 5, "billing": 3},
                languages=("en",),
                capacity={"voice": 1, "callback": 1, "email": 3, "chat": 2},
                auto_accept=demo_agent.role == "agent",
            )
        agent_ids[demo_agent.username] = agent.id

    async with engine.connect() as conn:
        existing = set((await conn.execute(select(customers.c.name))).scalars())
    customer_repo = CustomerRepository(engine)
    interaction_repo = InteractionRepository(engine)
    created = 0
    for demo in DEMO_CUSTOMERS:
        if demo.name in existing:
            continue
        customer = await customer_repo.create(
            demo.name,
            phones=demo.phones,
            emails=demo.emails,
            account_number=demo.account_number,
            notes=demo.notes,
        )
        created += 1
        for past in demo.history:
            started = now - timedelta(days=past.days_ago)
            answered = started + timedelta(seconds=20) if past.talk_seconds else None
            ended = started + timedelta(seconds=20 + past.talk_seconds)
            await interaction_repo.create(
                channel="voice" if past.channel == "voice" else "email",
                direction="inbound" if past.direction == "inbound" else "outbound",
                customer_id=customer.id,
                queue=past.queue,
                agent_id=agent_ids.get(past.agent) if past.agent else None,
                started_at=started,
                answered_at=answered,
                ended_at=ended,
                disposition=past.disposition,
                notes=past.notes,
                subject=past.subject,
            )
    log.info("demo data: %d customer(s) added", created)
