"""The live desk, put together: rooms, screen-pops, the notifier and the
``/desk`` namespace on one Socket.IO server.

Two steps, because voice routing needs the pops and the notifier needs
routing:

1. ``Desk(sio, customers=, interactions=, mail=, authenticate=)`` before voice
   routing exists; ``desk.pops.lookup_by_phone`` and
   ``desk.pops.wrap_interactions(...)`` go to ``VoiceRouting``;
2. ``desk.start(routing, calls=, voice=, agents=)`` once routing and voice
   exist: registers the namespace and subscribes the notifier to routing and
   to the call service. Call it after voice routing subscribed to the call
   service (so a call event already knows its task) and before it subscribes
   to routing (so an offer, auto-accepted or not, reaches the desk before the
   assignment rings the agent's phone).

One process only: the replay buffer (``RoomLog``) lives in memory. For several
nodes, the Socket.IO server takes ``client_manager=AsyncRedisManager(url)``
and the ``RoomLog`` sequence numbers must come from one place (Redis INCR per
room and a capped stream per room), or each client must stay on one node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import socketio  # type: ignore[import-untyped]

from agent_desk.namespace import Authenticate, DeskNamespace
from agent_desk.notifier import AgentInfo, DeskNotifier
from agent_desk.outbound import OutboundCalls
from agent_desk.policy import Audit, Authorize, desk_policy
from agent_desk.pops import ScreenPops
from agent_desk.rooms import RoomLog
from crm.mail.repository import MailStore
from crm.repository import Customer, CustomerRepository, InteractionRepository
from routing.service import RoutingService
from routing.voice import VoiceRouting

__all__ = ["NAMESPACE", "Desk"]

log = logging.getLogger(__name__)

NAMESPACE = "/desk"


class Desk:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        customers: CustomerRepository,
        interactions: InteractionRepository,
        mail: MailStore | None,
        authenticate: Authenticate,
        authorize: Authorize = desk_policy,
        audit: Audit | None = None,
        rooms: RoomLog | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """``settings``: what the pages are told in the hello (``[desk]``)."""
        self.sio = sio
        self.customers = customers
        self.interactions = interactions
        self.pops = ScreenPops(customers, interactions, mail=mail)
        self.rooms = rooms or RoomLog()
        self.authenticate = authenticate
        self.authorize = authorize
        self.audit = audit
        self.settings = dict(settings or {})
        self.routing: RoutingService | None = None
        self.notifier: DeskNotifier | None = None
        self.outbound: OutboundCalls | None = None
        self.namespace: DeskNamespace | None = None
        self._stopped = False

    def start(
        self,
        routing: RoutingService,
        *,
        calls: Any,
        voice: VoiceRouting | None,
        agents: Sequence[Any],
    ) -> None:
        """``agents``: the store's agent profiles (id, display_name, extension)."""
        self.routing = routing
        self.pops.links = routing.journal
        task_for_call = voice.task_for_call if voice is not None else lambda call_id: None
        dialplan = getattr(calls, "dialplan", None)
        trunk = getattr(dialplan, "trunk_endpoint", "trunk")
        self.outbound = OutboundCalls(
            self.interactions,
            self.customers,
            agent_of_device={f"PJSIP/{a.extension}": str(a.id) for a in agents},
            trunk_device=f"PJSIP/{trunk}",
            outbound_context=getattr(dialplan, "outbound_context", "callwright-outbound"),
            task_for_call=task_for_call,
        )
        if voice is not None:
            self.pops.task_for_call = voice.task_for_call
        self.notifier = DeskNotifier(
            self.sio,
            self.rooms,
            routing=routing,
            pops=self.pops,
            active_calls=calls.calls,
            directory={str(a.id): AgentInfo(a.display_name, a.extension) for a in agents},
            task_for_call=task_for_call,
            interaction_for_call=self.outbound.interaction_for,
            namespace=NAMESPACE,
        )
        self.namespace = DeskNamespace(
            self.notifier,
            routing=routing,
            customers=self.customers,
            authenticate=self.authenticate,
            authorize=self.authorize,
            audit=self.audit,
            namespace=NAMESPACE,
            settings=self.settings,
        )
        self.sio.register_namespace(self.namespace)
        routing.subscribe(self.notifier.on_routing_events)
        # Click-to-dial calls get their interaction before the desk hears of them.
        calls.subscribe(self.outbound.on_call_event)
        calls.subscribe(self.notifier.on_call_event)

    async def customer_linked(self, interaction_id: int, customer: Customer) -> Any:
        """A customer linked to an interaction from the desk: the pop of its
        live task is made again and sent to the agent (None: no live task)."""
        if self.routing is None or self.notifier is None:
            return None
        task_id = await self.routing.journal.live_task_for_interaction(interaction_id)
        if task_id is None:
            return None
        return await self.notifier.customer_linked(task_id, customer)

    async def stop(self) -> None:
        """Close every Socket.IO connection (else the web server waits for
        them) and the notifier's timers."""
        if self._stopped:
            return
        self._stopped = True
        eio = self.sio.eio
        for socket in list(eio.sockets.values()):
            # Not ``eio.disconnect()``: it waits for each socket's send queue
            # to drain, forever for a client that is already gone.
            try:
                await asyncio.wait_for(
                    socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT), 5
                )
                # End its writer after the CLOSE packet: it closes the
                # websocket from this side instead of waiting for the client.
                socket.queue.put_nowait(None)
            except Exception:
                log.exception("closing a desk connection")
        eio.sockets.clear()
        await self.sio.shutdown()
        if self.notifier is not None:
            await self.notifier.stop()
