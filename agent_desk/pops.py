"""Screen-pops: the customer record an agent sees with an offer.

A pop is built once per task, when the task is created, and kept until the
task ends, so an offer (and every re-offer) goes out without a store round
trip. For voice the work happens in the call path itself, before the task
reaches the router:

* ``lookup_by_phone`` is VoiceRouting's customer lookup: one indexed query
  (``CustomerRepository.find_by_phone``, which also brings phones and
  e-mails); the full record is kept for the next step;
* ``wrap_interactions(inner)`` wraps VoiceRouting's interaction recorder:
  while the call's interaction is inserted it reads the customer's recent
  interactions (one query, concurrently: the new interaction is left out by
  id) and keeps the finished pop by call id;
* ``for_task(task)`` (the notifier, on ``TaskQueued``) takes that pop for the
  task; tasks not prepared that way (e-mail, API tasks, tasks restored after
  a restart) are built from the store here: the journal's link, the customer,
  recent interactions and, for e-mail, the thread.

Pop (JSON)::

    {"task_id", "channel", "interaction_id", "call_id", "caller_number",
     "customer": null | {"id", "name", "account_number", "notes", "phones",
                         "emails", "created_at"},
     "recent_interactions": [{"id", "customer_id", "channel", "direction", "queue",
                              "agent_id", "started_at", "answered_at",
                              "ended_at", "disposition", "notes", "subject"}],
     "open_emails": [{"id", "subject", "started_at", "queue"}],  # not this one
     "emails": [email_json, ...],   # e-mail tasks: the thread, oldest first
     "ivr": null | {"flow", "language", "session_id", "data": {name: value}}}
                                    # what the caller told the IVR (``ivr_json``)

``remember(customer)`` is the IVR runner's prefetch: the customer an IVR
lookup found is kept here while the caller is still in the menu, so the
call's pop is built without reading the customer again.

``rebuild(task_id, customer)`` makes a task's pop again around a customer
linked to its interaction from the desk (an unknown caller identified).

Names, notes and e-mail bodies are data: a page must render them as text.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from crm.mail.repository import MailStore
from crm.repository import Customer, CustomerRepository, Interaction, InteractionRepository
from cti.calls.model import Call
from routing import model
from routing.email import email_json
from routing.voice import CustomerMatch, Interactions, result_or_in_line

__all__ = ["ScreenPops", "customer_json", "interaction_json", "ivr_json", "open_email_json"]

# Task attributes that are not the caller's answers (ivr_json leaves them out).
_NOT_IVR_DATA = frozenset({"caller_id", "caller_number", "dialed", "ivr_flow", "ivr_session"})

log = logging.getLogger(__name__)


class TaskLinks(Protocol):
    """``RoutingJournal.task``: the interaction and call of a task."""

    async def task(self, task_id: str) -> Any: ...


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "account_number": customer.account_number,
        "notes": customer.notes,
        "phones": list(customer.phones),
        "emails": list(customer.emails),
        "created_at": _iso(customer.created_at),
    }


def interaction_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "customer_id": interaction.customer_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "queue": interaction.queue,
        "agent_id": None if interaction.agent_id is None else str(interaction.agent_id),
        "started_at": _iso(interaction.started_at),
        "answered_at": _iso(interaction.answered_at),
        "ended_at": _iso(interaction.ended_at),
        "disposition": interaction.disposition,
        "notes": interaction.notes,
        "subject": interaction.subject,
    }


def ivr_json(task: model.TaskView) -> dict[str, Any] | None:
    """What the caller told the IVR, from the task an IVR flow made (its
    attributes carry ``ivr_flow``): collected digits, menu choices, values set;
    None for a task that did not come through an IVR."""
    flow = task.attributes.get("ivr_flow")
    if not isinstance(flow, str):
        return None
    session = task.attributes.get("ivr_session")
    return {
        "flow": flow,
        "language": task.language,
        "session_id": session if isinstance(session, str) else None,
        "data": {k: v for k, v in task.attributes.items() if k not in _NOT_IVR_DATA},
    }


def open_email_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "subject": interaction.subject,
        "started_at": _iso(interaction.started_at),
        "queue": interaction.queue,
    }


class _Bounded(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class _PopInteractions:
    """VoiceRouting's ``Interactions``, preparing the pop as the call's
    interaction is created."""

    def __init__(self, pops: ScreenPops, inner: Interactions) -> None:
        self.pops = pops
        self.inner = inner

    async def voice_started(self, call: Call, customer: CustomerMatch | None, queue_id: str) -> int:
        # The pop's reads need not wait for the insert: over the network, one
        # round trip less on the way to the offer. On SQLite the insert runs
        # on the loop's thread, the reads have not started when it is done,
        # and result_or_in_line does them here (no task to wait for).
        reads = asyncio.ensure_future(self.pops._voice_reads(customer))
        try:
            interaction_id = await self.inner.voice_started(call, customer, queue_id)
        except BaseException:
            reads.add_done_callback(_ignore_outcome)
            raise
        try:
            found, recent, threads = await result_or_in_line(
                reads, lambda: self.pops._voice_reads(customer)
            )
            pop = self.pops._assemble(
                channel="voice",
                customer=found,
                recent=recent,
                threads=threads,
                emails=[],
                interaction_id=interaction_id,
                call_id=call.id,
                caller_number=call.caller.number,
            )
            self.pops._by_call.put(call.id, pop)
        except Exception:  # the pop is built again from the store when the task comes
            log.exception("preparing the screen-pop of call %s", call.id)
        return interaction_id

    async def voice_assigned(self, interaction_id: int, agent_id: str) -> None:
        await self.inner.voice_assigned(interaction_id, agent_id)

    async def voice_ended(self, interaction_id: int, call: Call) -> None:
        await self.inner.voice_ended(interaction_id, call)


class ScreenPops:
    def __init__(
        self,
        customers: CustomerRepository,
        interactions: InteractionRepository,
        *,
        links: TaskLinks | None = None,
        mail: MailStore | None = None,
        recent_limit: int = 10,
        cache_size: int = 10_000,
    ) -> None:
        self.customers = customers
        self.interactions = interactions
        self.links = links
        self.mail = mail
        self.recent_limit = recent_limit
        # VoiceRouting.task_for_call, set when voice routing exists
        self.task_for_call: Callable[[str], str | None] | None = None
        self._customers = _Bounded(cache_size)  # customer id -> Customer (just looked up)
        # customer id -> their history, being read since the lookup (taken once)
        self._histories = _Bounded(cache_size)
        self._by_call = _Bounded(cache_size)  # call id -> prepared pop
        self._by_task: dict[str, dict[str, Any]] = {}
        self.store_builds = 0  # pops built from the store (not prepared in the call path)

    # -- the call path (VoiceRouting's collaborators) ---------------------

    async def lookup_by_phone(self, number: str) -> CustomerMatch | None:
        """VoiceRouting's caller-ID match, made as the call starts: the
        customer is kept for the pop, and their history read at once, so
        both are ready when the caller reaches the queue."""
        customer = await self.customers.find_by_phone(number)
        if customer is None:
            return None
        key = str(customer.id)
        self._customers.put(key, customer)
        history = asyncio.ensure_future(
            self.interactions.history_for_customer(customer.id, limit=self.recent_limit + 1)
        )
        history.add_done_callback(_ignore_outcome)  # whoever takes it sees an error
        self._histories.put(key, history)
        return CustomerMatch(customer.id, customer.name)

    def remember(self, customer: Customer) -> None:
        """Keep a customer just found (the IVR's lookup) for the call's pop."""
        self._customers.put(str(customer.id), customer)

    def wrap_interactions(self, inner: Interactions) -> Interactions:
        return _PopInteractions(self, inner)

    async def _voice_reads(
        self, match: CustomerMatch | None
    ) -> tuple[Customer | None, list[Interaction], list[Interaction]]:
        """The customer's record (kept from the lookup, else read) and history."""
        customer = None
        if match is not None:
            customer = self._customers.pop(str(match.id), None) or await self.customers.get(
                match.id
            )
        if customer is None:
            return None, [], []
        early = self._histories.pop(str(customer.id), None)
        if early is not None:
            found, threads = await result_or_in_line(
                early,
                lambda: self.interactions.history_for_customer(
                    customer.id, limit=self.recent_limit + 1
                ),
            )
        else:
            found, threads = await self.interactions.history_for_customer(
                customer.id, limit=self.recent_limit + 1
            )
        return customer, list(found), list(threads)

    # -- tasks --------------------------------------------------------------

    def get(self, task_id: str) -> dict[str, Any] | None:
        return self._by_task.get(task_id)

    def forget(self, task_id: str) -> None:
        self._by_task.pop(task_id, None)

    async def rebuild(self, task_id: str, customer: Customer) -> dict[str, Any] | None:
        """The task's pop made again around ``customer`` (None: no pop kept)."""
        old = self._by_task.get(task_id)
        if old is None:
            return None
        pop = await self._build(
            channel=old["channel"],
            customer=customer,
            interaction_id=old["interaction_id"],
            call_id=old["call_id"],
            caller_number=old["caller_number"],
        )
        pop = {"task_id": task_id, **pop, "ivr": old.get("ivr")}
        self._by_task[task_id] = pop
        return pop

    async def for_task(self, task: model.TaskView) -> dict[str, Any]:
        """The task's pop, prepared in the call path when possible."""
        pop = self._by_task.get(task.id)
        if pop is not None:
            return pop
        if task.channel == "voice":
            pop = self._take_prepared(task.id)
        if pop is None:
            pop = await self._from_store(task)
            self.store_builds += 1
        pop = {"task_id": task.id, **pop, "ivr": ivr_json(task)}
        self._by_task[task.id] = pop
        return pop

    def _take_prepared(self, task_id: str) -> dict[str, Any] | None:
        if self.task_for_call is None:
            return None
        # Newest first: the call whose task is being queued was prepared last.
        for call_id in reversed(list(self._by_call)):
            if self.task_for_call(call_id) == task_id:
                pop: dict[str, Any] = self._by_call.pop(call_id)
                return pop
        return None

    async def _from_store(self, task: model.TaskView) -> dict[str, Any]:
        interaction_id: int | None = None
        call_id: str | None = None
        if self.links is not None:
            link = await self.links.task(task.id)
            if link is not None:
                interaction_id = link.interaction_id
                call_id = link.call_id
        customer = None
        if task.customer_id is not None and task.customer_id.isdigit():
            customer = await self.customers.get(int(task.customer_id))
        caller = task.attributes.get("caller_number")
        return await self._build(
            channel=task.channel,
            customer=customer,
            interaction_id=interaction_id,
            call_id=call_id,
            caller_number=caller if isinstance(caller, str) else None,
        )

    async def _build(
        self,
        *,
        channel: str,
        customer: Customer | None,
        interaction_id: int | None,
        call_id: str | None,
        caller_number: str | None,
    ) -> dict[str, Any]:
        found: list[Interaction] = []
        threads: list[Interaction] = []
        if customer is not None:
            history, open_threads = await self.interactions.history_for_customer(
                customer.id, limit=self.recent_limit + 1
            )
            found, threads = list(history), list(open_threads)
        emails: list[dict[str, Any]] = []
        if channel == "email" and interaction_id is not None and self.mail is not None:
            emails = [email_json(m) for m in await self.mail.thread(interaction_id)]
        return self._assemble(
            channel=channel,
            customer=customer,
            recent=found,
            threads=threads,
            emails=emails,
            interaction_id=interaction_id,
            call_id=call_id,
            caller_number=caller_number,
        )

    def _assemble(
        self,
        *,
        channel: str,
        customer: Customer | None,
        recent: list[Interaction],
        threads: list[Interaction],
        emails: list[dict[str, Any]],
        interaction_id: int | None,
        call_id: str | None,
        caller_number: str | None,
    ) -> dict[str, Any]:
        # ``interaction_id`` (this task's own) is left out of the history.
        history = [interaction_json(i) for i in recent if i.id != interaction_id]
        open_emails = [open_email_json(i) for i in threads if i.id != interaction_id]
        return {
            "channel": channel,
            "interaction_id": interaction_id,
            "call_id": call_id,
            "caller_number": caller_number,
            "customer": None if customer is None else customer_json(customer),
            "recent_interactions": history[: self.recent_limit],
            "open_emails": open_emails[: self.recent_limit],
            "emails": emails,
        }


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    """Read a background read's outcome nobody waits for any more (no
    'exception was never retrieved' warning)."""
    if not future.cancelled():
        future.exception()
