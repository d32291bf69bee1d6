"""Wiring: the one place that builds every service and connects them.

``Runtime(config)`` owns the store engine, the AMI link, the call service and
the HTTP site. ``start()`` migrates the store, starts the link (which resyncs
on every login) and serves HTTP; ``stop()`` undoes it in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import socketio  # type: ignore[import-untyped]
from aiohttp import web

from agent_desk.audit import AuditLog, audit_routes
from agent_desk.auth import SERVICE_PRINCIPAL, SessionAuthenticator, Sessions, auth_routes
from agent_desk.authorization import HttpAuthorization, Ownership, Policy
from agent_desk.desk import Desk
from agent_desk.http import routes as desk_pages
from agent_desk.manager import DeskPacket, DirectManager, lighter_websocket_writer
from agent_desk.records import DeskSettings, records_routes
from callwright.app import PRINCIPAL, build_app
from callwright.config import Config, ConfigError
from crm.mail.repository import MailStore
from crm.mail.smtp_in import MailListener
from crm.mail.smtp_out import MailSender
from crm.repository import CustomerRepository, InteractionRepository
from cti.calls.model import Call, CallEnded, CallEvent
from cti.calls.service import CallService, DialplanSettings
from cti.keys import CallControlKeys
from cti.link import AmiLink, LinkSettings, LinkState
from cti.persistence import CallRecord, CallRecordRepository, CallRecordWriter
from ivr.agi.server import AgiServer
from ivr.fastagi import FastAgiIvr
from ivr.repository import IvrRepository
from ivr.runner import IvrRunner, VoiceHandoffs
from ivr.twilio import TwilioVoice
from recordings.control import RecordingControl
from recordings.erase import Eraser, erase_routes
from recordings.http import control_routes
from recordings.ingest import Ingestor
from recordings.listing import listing_routes
from recordings.playback import MediaTokens, Playback
from recordings.repository import RecordingRepository
from recordings.retention import Purger
from recordings.storage import LocalStorage
from recordings.twilio import TwilioRecordingCallbacks
from routing import model as routing_model
from routing.email import EmailRouting
from routing.email import routes as email_routes
from routing.errors import RoutingError
from routing.http import routes as routing_routes
from routing.journal import RoutingJournal
from routing.persistence import AgentRepository
from routing.service import RoutingService
from routing.voice import CustomerMatch, VoiceRouting
from store import make_engine, ping
from store.migrate import upgrade

log = logging.getLogger(__name__)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


CALL_WORKERS = 4  # calls handled concurrently (CallService); 2, 4, 8 measured: bench/RESULTS.md


def record_key(call: Call) -> tuple[Any, ...]:
    """What ``call_record`` writes of ``call`` but its time of update: an
    event that leaves it as it was (a variable set, a new extension) needs no
    write. A tuple, not a second record: building and comparing records was a
    third of the call records' cost at 50 calls/s."""
    return (
        call.state,
        call.caller,
        call.callee,
        call.started_at,
        call.answered_at,
        call.ended_at,
        call.hangup_cause,
        call.hangup_cause_text,
        tuple(ch.name for ch in call.channels),
    )


def call_record(call: Call) -> CallRecord:
    return CallRecord(
        id=call.id,
        state=call.state.value,
        caller_num=call.caller.number,
        caller_name=call.caller.name,
        callee_num=call.callee.number,
        callee_name=call.callee.name,
        started_at=_dt(call.started_at) or datetime.now(UTC),
        answered_at=_dt(call.answered_at),
        ended_at=_dt(call.ended_at),
        hangup_cause=call.hangup_cause,
        hangup_cause_text=call.hangup_cause_text,
        channels=tuple(ch.name for ch in call.channels),
        interaction_id=None,
        updated_at=datetime.now(UTC),
    )


class VoiceInteractions:
    """Interactions for routed calls, in the CRM."""

    def __init__(self, repo: InteractionRepository) -> None:
        self.repo = repo

    async def voice_started(self, call: Call, customer: CustomerMatch | None, queue_id: str) -> int:
        interaction = await self.repo.create(
            channel="voice",
            direction="inbound",
            customer_id=None if customer is None else customer.id,
            call_id=call.id,
            queue=queue_id,
            started_at=_dt(call.started_at) or datetime.now(UTC),
        )
        return interaction.id

    async def voice_assigned(self, interaction_id: int, agent_id: str) -> None:
        await self.repo.update(
            interaction_id, agent_id=int(agent_id), answered_at=datetime.now(UTC)
        )

    async def voice_ended(self, interaction_id: int, call: Call) -> None:
        await self.repo.update(interaction_id, ended_at=_dt(call.ended_at) or datetime.now(UTC))


def agent_config(agent: Any) -> routing_model.AgentConfig:
    return routing_model.AgentConfig(
        id=str(agent.id),
        skills=dict(agent.skills),
        languages=frozenset(agent.languages),
        capacity=dict(agent.capacity),
        auto_accept=agent.auto_accept,
    )


class Runtime:
    def __init__(self, config: Config) -> None:
        if not config.api.signing_key:
            raise ConfigError(
                "api.signing_key: expected a secret of at least 32 random characters to sign "
                "session tokens; set it, or name an environment variable in api.signing_key_env"
            )
        self.config = config
        self.engine = make_engine(config.store.effective_url)
        ami = config.ami
        self.link = AmiLink(
            LinkSettings(
                host=ami.host,
                port=ami.port,
                username=ami.username,
                secret=ami.secret.reveal(),
                auth=ami.auth,
                action_timeout=ami.action_timeout,
                ping_interval=ami.ping_interval,
                ping_timeout=ami.ping_timeout,
                reconnect_min=ami.reconnect_min,
                reconnect_max=ami.reconnect_max,
            ),
            on_event=lambda event: self.calls.on_ami_event(event),
            on_ready=lambda: self.calls.resync(),
            on_state=self._on_link_state,
        )
        pbx = config.pbx
        self.calls = CallService(
            self.link,
            clock=time.time,
            dialplan=DialplanSettings(
                trunk_endpoint=pbx.trunk_endpoint,
                agent_context=pbx.agent_context,
                outbound_context=pbx.outbound_context,
                onhold_context=pbx.onhold_context,
                agent_hold_context=pbx.agent_hold_context,
                holding_context=pbx.holding_context,
                payment_context=pbx.payment_context,
                originate_timeout_ms=int(pbx.originate_timeout * 1000),
            ),
            # Calls handled concurrently (each call's events stay in order): one
            # call's store round trips do not hold up the next caller's offer.
            workers=CALL_WORKERS,
        )
        # Idempotency keys of originate/transfer/spy in the store: a retry after
        # a restart does not place a second call.
        self.calls.key_store = CallControlKeys(self.engine)
        self.call_records = CallRecordRepository(self.engine)
        # Group commit: the calls' records stored concurrently by the call-event
        # workers share transactions (one write in flight, the rest join the next).
        self.call_writer = CallRecordWriter(self.call_records)
        # Per active call, the record last stored (updated_at aside): an event
        # that changes nothing stored (a caller moving in the dialplan) skips
        # the upsert. Per-call event order makes this safe.
        self._stored_calls: dict[str, tuple[Any, ...]] = {}  # record_key, as stored
        self.calls.subscribe(self._store_call)
        self.customers = CustomerRepository(
            self.engine, default_region=config.pbx.default_region or None
        )
        self.interactions = InteractionRepository(self.engine)
        self.agents = AgentRepository(self.engine)
        # Recordings: rows and files (recordings.repository, recordings.storage).
        self.recordings = RecordingRepository(self.engine)
        self.recording_storage = LocalStorage(config.recordings.dir, config.recordings.key_bytes())
        # Finished MixMonitor files: spool dir -> storage (recordings.ingest).
        self.ingestor = Ingestor(
            self.recordings,
            self.recording_storage,
            config.recordings.spool_dir,
            retention_days=config.recordings.retention_days,
        )
        # Accounts, roles and the audit log (agent_desk.auth/.authorization/.audit).
        self.audit = AuditLog(self.engine)
        self.auth = SessionAuthenticator(
            self.agents,
            Sessions(config.api.signing_key.reveal(), max_age=config.api.session_seconds),
            config.api.token.reveal(),
        )
        self.policy = Policy(
            Ownership(
                calls=self.calls,
                routing=lambda: self.routing,
                interaction_agent=self._interaction_agent,
                recording_agent=self._recording_agent,
                agent_may_play=config.recordings.agent_may_play,
                interaction_customer=self._interaction_customer,
            )
        )
        self.authorization = HttpAuthorization(self.policy, self.audit)
        self.app = build_app(
            health=self.health,
            call_service=self.calls,
            authenticator=self.auth,
            authorize=self.authorization.authorize,
            before_auth=[self.authorization.audit_middleware],
            after_auth=[self.authorization.route_guard],
        )
        self.app.add_routes(
            auth_routes(
                self.auth,
                self.audit,
                self.authorization.authorize,
                on_deactivated=self._agent_deactivated,
            )
        )
        self.app.add_routes(audit_routes(self.audit, self.authorization.authorize))
        # Recordings for those allowed: lists, signed playback URLs, the media route.
        self.playback = Playback(
            recordings=self.recordings,
            storage=self.recording_storage,
            tokens=MediaTokens(
                config.api.signing_key.reveal(), lifetime=config.recordings.playback_seconds
            ),
            audit=self.audit,
            authorize=self.authorization.authorize,
            principal_of=lambda request: request[PRINCIPAL],
            current_role=self._current_role,
        )
        self.app.add_routes(self.playback.routes())
        self.app.add_routes(
            listing_routes(
                self.recordings,
                self.engine,
                self.authorization.authorize,
                lambda request: request[PRINCIPAL],
                agent_may_play=config.recordings.agent_may_play,
            )
        )
        # Recording control (recordings.control): MixMonitor by queue policy when
        # an agent answers, pause/resume (REST, desk, IVR), ingest after hangup.
        self.recording_control = RecordingControl(
            self.recordings,
            calls=self.calls,
            ami=self.link,
            interactions=self.interactions,
            policies=config.recordings,
            spool_dir=config.recordings.spool_dir,
            ingestor=self.ingestor,
            publish=self._publish_recording,
            audit=self.audit,
        )
        self.app.add_routes(
            control_routes(
                self.recording_control,
                self.authorization.authorize,
                lambda request: request[PRINCIPAL].id,
            )
        )
        # Twilio's signed recording status callbacks (a public path).
        self.twilio_recordings = TwilioRecordingCallbacks(
            self.recordings,
            interactions=self.interactions,
            settings=config.twilio,
            auth_token=config.twilio.auth_token.reveal(),
            audit=self.audit,
        )
        self.app.add_routes(self.twilio_recordings.routes())
        # IVR flows: one runner (ivr.runner: store, lookups, back office) for both
        # edges; the Twilio voice webhooks (ivr.twilio, public paths, signed).
        self.ivr_sessions = IvrRepository(self.engine)
        self.ivr = IvrRunner(
            config.ivr.flows,
            self.ivr_sessions,
            customers=self.customers,
            interactions=self.interactions,
            tasks=lambda: self.routing,
        )
        self.twilio_voice = TwilioVoice(
            self.ivr,
            interactions=self.interactions,
            call_records=self.call_records,
            routing=lambda: self.routing,
            settings=config.twilio,
            auth_token=config.twilio.auth_token.reveal(),
            audit=self.audit,
            hold_music_url=config.twilio.hold_music_url,
        )
        self.app.add_routes(self.twilio_voice.routes())
        # Retention (recordings.retention) and GDPR erasure with legal holds (recordings.erase).
        self.recordings_repo = self.recordings
        self.purger = Purger(
            self.recordings,
            self.recording_storage,
            self.audit,
            retention_days=config.recordings.retention_days,
        )
        self._purge_task: asyncio.Task[None] | None = None
        self._outbox_task: asyncio.Task[None] | None = None
        self.mail_sender: MailSender | None = None
        self._recover_task: asyncio.Task[None] | None = None
        self.eraser = Eraser(
            self.engine,
            self.recordings,
            self.recording_storage,
            self.audit,
            data_dir=config.store.data_dir,
        )
        self.app.add_routes(
            erase_routes(
                self.eraser,
                self.recordings,
                self.engine,
                self.audit,
                self.authorization.authorize,
            )
        )
        self.app.add_routes(desk_pages())
        self.routing: RoutingService | None = None
        self.voice: VoiceRouting | None = None
        self.mail_store = MailStore(self.engine, config.store.data_dir, customers=self.customers)
        # The live desk (Socket.IO /desk). One process: an in-memory manager
        # (agent_desk.manager: no task per recipient); for several nodes pass
        # client_manager=socketio.AsyncRedisManager(url) (and share the desk's
        # room sequence numbers: see agent_desk/desk.py).
        lighter_websocket_writer()  # Engine.IO's writer without a timer per message
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=DirectManager(),
            serializer=DeskPacket,
            max_http_buffer_size=64 * 1024,
        )
        self.sio.attach(self.app)
        desk_settings = DeskSettings(
            dispositions=config.desk.dispositions,
            notes_max_chars=config.desk.notes_max_chars,
            payment=bool(config.pbx.payment_context),
        )
        self.desk = Desk(
            self.sio,
            customers=self.customers,
            interactions=self.interactions,
            mail=self.mail_store,
            authenticate=self.auth.authenticate_token,
            authorize=self.policy.allows,
            audit=self.audit,
            settings=desk_settings.json(),
        )
        # The customer an IVR lookup finds waits in the pop cache (agent_desk.pops).
        self.ivr.prefetch = self.desk.pops.remember
        # FastAGI (ivr.fastagi): Asterisk's AGI(agi://host:port/<flow>), when flows exist.
        self.agi: AgiServer | None = None
        # A flow's recording node pauses/resumes the call's MixMonitor through
        # recording control; a queue node with origin reads the call's interaction.
        self.fastagi = FastAgiIvr(
            self.ivr,
            voicemail_dir=config.ivr.voicemail_dir,
            calls=self.calls,
            recordings=self.recording_control,
            interactions=self.interactions,
        )
        # The wrap-up, unknown callers identified, the customer record.
        self.app.add_routes(
            records_routes(
                customers=self.customers,
                interactions=self.interactions,
                settings=desk_settings,
                audit=self.audit,
                authorize=self.authorization.authorize,
                calls=self.call_records,
                mail=self.mail_store,
                linked=self.desk.customer_linked,
            )
        )
        self.mail_listener: MailListener | None = None
        self.email: EmailRouting | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def _survey_figures(
        self, since: float, until: float | None
    ) -> dict[str, tuple[int, float]]:
        # One aggregate query over the period's survey rows (a wallboard asks
        # for today's once a minute).
        found = await self.ivr_sessions.survey_figures(
            datetime.fromtimestamp(since, UTC),
            None if until is None else datetime.fromtimestamp(until, UTC),
        )
        return {queue: (f.count, f.average) for queue, f in found.items()}

    async def _interaction_customer(self, interaction_id: int) -> int | None:
        interaction = await self.interactions.get(interaction_id)
        return None if interaction is None else interaction.customer_id

    async def _interaction_agent(self, interaction_id: int) -> int | None:
        interaction = await self.interactions.get(interaction_id)
        return None if interaction is None else interaction.agent_id

    async def _publish_recording(self, data: dict[str, Any], agent_id: str | None) -> None:
        if self.desk.notifier is not None:
            await self.desk.notifier.recording(data, agent_id)

    async def _recording_agent(self, recording_id: str) -> int | None:
        recording = await self.recordings.get(recording_id)
        return None if recording is None else recording.agent_id

    async def _current_role(self, principal_id: str) -> str | None:
        """The role a principal holds now (None: gone or deactivated): a playback URL
        issued before a deactivation or a role change stops working."""
        if principal_id == SERVICE_PRINCIPAL.id:
            return SERVICE_PRINCIPAL.role if self.config.api.token else None
        if not principal_id.isdigit():
            return None
        agent = await self.agents.get(int(principal_id))
        return agent.role if agent is not None and agent.active else None

    async def _finish_spooled(self) -> None:
        try:
            done = await self.ingestor.finish_pending()
        except Exception:
            log.exception("recordings left in the spool could not be stored; see recordings check")
            return
        if done:
            log.info("stored %d recording(s) left in the spool by an earlier run", len(done))

    async def _agent_deactivated(self, agent_id: str) -> None:
        """A deactivated agent is signed out of routing (offers withdrawn)."""
        if self.routing is None:
            return
        try:
            await self.routing.set_agent_state(agent_id, "offline")
        except RoutingError as exc:
            log.info("deactivated agent %s not signed out of routing: %s", agent_id, exc)

    async def _open_routing(self) -> None:
        """The router from the journal, its agents from the store, and voice
        routing between it and the call service."""
        agents = await self.agents.list()
        routing, _ = await RoutingService.open(
            self.config.routing.queues,
            RoutingJournal(self.engine),
            [agent_config(a) for a in agents],
            clock=time.time,
        )
        self.routing = routing
        pbx = self.config.pbx
        self.voice = VoiceRouting(
            routing,
            self.calls,
            lookup_customer=self.desk.pops.lookup_by_phone,
            interactions=self.recording_control.wrap_interactions(
                self.desk.pops.wrap_interactions(VoiceInteractions(self.interactions))
            ),
            extensions={str(a.id): a.extension for a in agents},
            holding_context=pbx.holding_context,
            agent_context=pbx.agent_context,
            default_queue=self.config.routing.voice_queue,
            active_calls=self.calls.calls,
            ivr=VoiceHandoffs(self.ivr_sessions),
        )
        await self.voice.restore()
        self.calls.queue_ids = routing.router.queue_ids  # transfers to a queue
        self.calls.subscribe(self.voice.on_call_event)
        # Between the two: the desk hears a call after voice routing (the task
        # is known) and an offer before voice routing rings the phone.
        self.desk.start(routing, calls=self.calls, voice=self.voice, agents=agents)
        # After the desk: a recording that stops is announced after the call event.
        self.calls.subscribe(self.recording_control.on_call_event)
        routing.subscribe(self.voice.on_routing_events)
        self.app.add_routes(
            routing_routes(routing, self.authorization.authorize, surveys=self._survey_figures)
        )
        self.email = EmailRouting(
            routing, self.mail_store, queue_id=self.config.routing.email_queue
        )
        out = self.config.email.outbound
        sender = self.mail_sender = MailSender(
            self.mail_store,
            host=out.host,
            port=out.port,
            from_address=out.from_address,
            starttls=out.starttls,
            username=out.username or None,
            password=out.password if out.password else None,
            timeout=out.timeout,
        )
        self.app.add_routes(
            email_routes(self.email, sender, authorize=self.authorization.authorize)
        )

    async def _start_mail(self) -> None:
        email = self.config.email
        if not email.enabled or self.email is None:
            return
        routed = await self.email.route_unrouted()
        if routed:
            log.info("routed %d e-mail(s) stored before the last stop", routed)
        self.mail_listener = MailListener(
            self.mail_store,
            self.email.on_email,
            host=email.listen_host,
            port=email.listen_port,
            max_message_bytes=email.max_message_bytes,
            accept_domains=email.accept_domains or None,
            hostname=email.hostname,
        )
        await self.mail_listener.start()
        log.info("SMTP listener on %s:%s", email.listen_host, self.mail_listener.port)
        self._outbox_task = asyncio.create_task(self._outbox(), name="mail-outbox")

    async def _outbox(self) -> None:
        """Replies that failed, or that a stop left unsent, are sent again
        (``MailSender.retry_due``): at start, then every ``retry_every`` seconds."""
        out = self.config.email.outbound
        assert self.mail_sender is not None
        while True:
            try:
                sent = await self.mail_sender.retry_due(max_attempts=out.max_attempts)
                if sent:
                    log.info(
                        "outbox: %d of %d reply(ies) sent",
                        sum(1 for m in sent if m.status == "sent"),
                        len(sent),
                    )
            except Exception:  # never let the outbox end the server
                log.exception("outbox: sending failed replies failed")
            await asyncio.sleep(out.retry_every)

    async def _store_call(self, event: CallEvent) -> None:
        # Stored before any later subscriber announces it.
        call = event.call
        if isinstance(event, CallEnded):
            self._stored_calls.pop(call.id, None)
            await self.call_writer.store(call_record(call))
            return
        # The call as the tracker knows it now, which may be ahead of this
        # event: a caller's Newchannel, Newstate and first Newexten come in
        # one read, so the record of the answered call is stored once, at
        # the call's first event, and the events after it have nothing left
        # to write (on the screen-pop's path: one transaction less).
        latest = self.calls.tracker.get(call.id)
        if latest is not None and latest.ended_at is None:
            call = latest
        said = record_key(call)
        if self._stored_calls.get(call.id) == said:
            return  # the stored record already says this
        await self.call_writer.store(call_record(call))
        self._stored_calls[call.id] = said

    def _on_link_state(self, state: LinkState) -> None:
        log.info("AMI link %s", state.value)

    async def health(self) -> dict[str, Any]:
        store_ok = await ping(self.engine)
        ami_state = self.link.state.value
        status = "ok"
        if not store_ok:
            status = "down"
        elif self.link.state is not LinkState.READY:
            status = "degraded"
        return {
            "status": status,
            "ami": ami_state,
            "ami_connected": self.link.connected,
            "resyncing": self.link.state is LinkState.RESYNCING,
            "store": "ok" if store_ok else "unreachable",
            "active_calls": len(self.calls.calls()),
        }

    async def start(self) -> None:
        if not self.config.api.token:
            log.info("no API token configured ([api] token_env): only agents' sessions open /api/")
        await upgrade(self.config.store.effective_url)
        await self._open_routing()
        assert self.routing is not None
        self.routing.start()
        if self.config.ivr.flows:
            # FastAGI sessions of an earlier run lost their connection; their
            # callers went on in the dialplan (the default queue). A session
            # idle for 15 minutes is dead whichever node served it.
            stale = await self.ivr_sessions.fail_in_progress(
                "agi",
                "Callwright restarted",
                idle_before=datetime.now(UTC) - timedelta(minutes=15),
            )
            if stale:
                log.info("%d FastAGI IVR session(s) of an earlier run marked failed", stale)
            self.agi = AgiServer(self.fastagi.handle)
            await self.agi.start(self.config.ivr.agi_host, self.config.ivr.agi_port)
        await self._start_mail()
        self.calls.start()
        self.link.start()
        if self.config.recordings.purge_interval > 0:
            self._purge_task = asyncio.create_task(
                self.purger.run_forever(self.config.recordings.purge_interval),
                name="recordings-purge",
            )
        # Recordings that ended before a crash or a stop and were never stored.
        self._recover_task = asyncio.create_task(self._finish_spooled(), name="recordings-recover")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.server.port

    @property
    def url(self) -> str:
        return f"http://{self.config.server.host}:{self.port}"

    async def stop(self) -> None:
        if self.agi is not None:
            await self.agi.stop()  # callers in a flow go on in the dialplan
            self.agi = None
        await self.desk.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.link.close()
        if self.mail_listener is not None:
            await self.mail_listener.stop()
            self.mail_listener = None
        if self._outbox_task is not None:
            self._outbox_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox_task
            self._outbox_task = None
        if self.routing is not None:
            await self.routing.stop()
            await self.routing.journal.close()
        try:
            # Let what the PBX already told us reach the store.
            await asyncio.wait_for(self.calls.drain(), 5)
        except TimeoutError:
            log.warning("stopping with call events not yet stored")
        await self.calls.stop()
        # Records handed in by the workers just stopped are written all the same.
        await self.call_writer.close()
        await self.call_records.close()
        await self.interactions.close()
        await self.customers.close()
        await self.audit.close()
        await self.recording_control.stop()  # ingests under way
        if self._recover_task is not None:
            self._recover_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recover_task
            self._recover_task = None
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
            self._purge_task = None
        await self.engine.dispose()
