"""Click-to-dial calls in the CRM: an interaction for each, so the agent can
wrap it up and it shows in the customer's history.

A call subscriber (it runs before the desk's notifier, so the first ``call``
event that shows the call bridged already names its interaction). A call is a
click-to-dial call when it has no routing task, its first channel is an
agent's device (``Originate Channel=PJSIP/<agent>`` makes that channel first)
and a trunk leg joined it. Its interaction: ``voice``/``outbound``, the agent,
the customer whose phone is the dialed number (if any), answered when it was
first bridged, ended with the call.
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
        task_for_call: Callable[[str], str | None],
        size: int = 10_000,
    ) -> None:
        self.interactions = interactions
        self.customers = customers
        self.agent_of_device = dict(agent_of_device)
        self.trunk_device = trunk_device
        self.task_for_call = task_for_call
        self.size = size
        self._by_call: OrderedDict[str, int] = OrderedDict()  # live calls -> interaction

    def interaction_for(self, call_id: str) -> int | None:
        return self._by_call.get(call_id)

    async def on_call_event(self, event: CallEvent) -> None:
        call = event.call
        try:
            if isinstance(event, CallEnded):
                interaction_id = self._by_call.pop(call.id, None)
                if interaction_id is not None:
                    await self.interactions.update(interaction_id, ended_at=_dt(call.ended_at))
                return
            if call.id in self._by_call or not call.bridged or not call.channels:
                return
            agent_id = self.agent_of_device.get(call.channels[0].device or "")
            if agent_id is None or self.task_for_call(call.id) is not None:
                return
            if not any(ch.device == self.trunk_device for ch in call.channels):
                return  # an internal call between two phones
            await self._record(call, agent_id)
        except Exception:  # the call goes on; only its CRM record is missing
            log.exception("outbound call %s: interaction not recorded", call.id)

    async def _record(self, call: Call, agent_id: str) -> None:
        number = self._dialed(call)
        customer = None if number is None else await self.customers.find_by_phone(number)
        interaction = await self.interactions.create(
            channel="voice",
            direction="outbound",
            started_at=_dt(call.started_at),
            answered_at=_dt(call.answered_at),
            customer_id=None if customer is None else customer.id,
            call_id=call.id,
            agent_id=int(agent_id),
        )
        self._by_call[call.id] = interaction.id
        while len(self._by_call) > self.size:
            self._by_call.popitem(last=False)

    @staticmethod
    def _dialed(call: Call) -> str | None:
        """The number the agent dialed: the extension the agent's leg ran in
        the outbound context, else who the call is connected to."""
        for candidate in (call.exten, call.callee.number, call.caller.number):
            if candidate and _NUMBER.match(candidate):
                return candidate
        return None
