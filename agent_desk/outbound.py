"""Click-to-dial calls in the CRM: an interaction for each, so the agent can
wrap it up and it shows in the customer's history.

A call subscriber (it runs before the desk's notifier, so the ``call`` event
that shows the customer's leg already names the interaction). A call is a
click-to-dial call when it has no routing task, its first channel is an
agent's device (``Originate Channel=PJSIP/<agent>`` makes that channel first)
and it dials out: a trunk leg joined it, or the agent's leg runs the outbound
context with a phone number (one that normalises to E.164: not an internal
extension) as its extension. Its interaction:
``voice``/``outbound``, the agent, the customer whose phone is the dialed
number (if any), answered when first bridged (never, for a customer who did
not pick up: the agent can still wrap it up as such), ended with the call.
After a restart a call already recorded keeps its interaction.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final

from crm.repository import CustomerRepository, InteractionRepository
from cti.calls.model import Call, CallEnded, CallEvent

__all__ = ["OutboundCalls"]

log = logging.getLogger(__name__)

_NUMBER: Final = re.compile(r"^\+?[0-9]{3,32}$")


def _dt(value: float | None) -> datetime:
    return datetime.now(UTC) if value is None else datetime.fromtimestamp(value, UTC)


class OutboundCalls:
    def __init__(
        self,
        interactions: InteractionRepository,
        customers: CustomerRepository,
        *,
        agent_of_device: Mapping[str, str],  # "PJSIP/1001" -> agent id
        trunk_device: str,  # "PJSIP/trunk"
        outbound_context: str,  # "callwright-outbound"
        task_for_call: Callable[[str], str | None],
        size: int = 10_000,
    ) -> None:
        self.interactions = interactions
        self.customers = customers
        self.agent_of_device = dict(agent_of_device)
        self.trunk_device = trunk_device
        self.outbound_context = outbound_context
        self.task_for_call = task_for_call
        self.size = size
        self._by_call: OrderedDict[str, int] = OrderedDict()  # live calls -> interaction
        self._answered: set[str] = set()

    def interaction_for(self, call_id: str) -> int | None:
        return self._by_call.get(call_id)

    async def on_call_event(self, event: CallEvent) -> None:
        call = event.call
        try:
            if isinstance(event, CallEnded):
                interaction_id = self._by_call.pop(call.id, None)
                self._answered.discard(call.id)
                if interaction_id is not None:
                    await self.interactions.update(interaction_id, ended_at=_dt(call.ended_at))
                return
            interaction_id = self._by_call.get(call.id)
            if interaction_id is None:
                interaction_id = await self._recognise(call)
            if interaction_id is not None and call.bridged and call.id not in self._answered:
                self._answered.add(call.id)
                await self.interactions.update(interaction_id, answered_at=_dt(call.answered_at))
        except Exception:  # the call goes on; only its CRM record is missing
            log.exception("outbound call %s: interaction not recorded", call.id)

    async def _recognise(self, call: Call) -> int | None:
        """The interaction of a click-to-dial call seen for the first time
        (recorded now, or before a restart); None for any other call."""
        if not call.channels:
            return None
        agent_id = self.agent_of_device.get(call.channels[0].device or "")
        if agent_id is None or self.task_for_call(call.id) is not None:
            return None
        if not self._dials_out(call):
            return None  # not dialing out yet, or an internal call between two phones
        existing = await self.interactions.by_call_id(call.id)
        if existing is not None:
            interaction_id = existing.id
            if existing.answered_at is not None:
                self._answered.add(call.id)
        else:
            number = self._dialed(call)
            customer = None if number is None else await self.customers.find_by_phone(number)
            created = await self.interactions.create(
                channel="voice",
                direction="outbound",
                started_at=_dt(call.started_at),
                customer_id=None if customer is None else customer.id,
                call_id=call.id,
                agent_id=int(agent_id),
            )
            interaction_id = created.id
        self._by_call[call.id] = interaction_id
        while len(self._by_call) > self.size:
            old, _ = self._by_call.popitem(last=False)
            self._answered.discard(old)
        return interaction_id

    def _dials_out(self, call: Call) -> bool:
        if any(ch.device == self.trunk_device for ch in call.channels):
            return True
        if call.context != self.outbound_context or not call.exten:
            return False
        number = self.customers.normalize(call.exten)
        return number is not None and number.startswith("+")

    @staticmethod
    def _dialed(call: Call) -> str | None:
        """The number the agent dialed: the extension the agent's leg ran in
        the outbound context, else who the call is connected to."""
        for candidate in (call.exten, call.callee.number, call.caller.number):
            if candidate and _NUMBER.match(candidate):
                return candidate
        return None
