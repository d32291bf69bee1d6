"""Configuration: ``config.toml`` read with tomllib into frozen settings.

Every key is checked at start. A missing or bad value raises ``ConfigError``
whose message is one line naming the key and what was expected; the CLI prints
it and exits non-zero. Secrets may come from the environment (the variable
named by ``*_env`` wins over the file) and are wrapped in ``Secret`` so that no
repr, log line or error message ever shows them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from ivr.errors import FlowError
from ivr.loader import load_flow
from ivr.model import Flow
from ivr.validate import validate_flow
from routing.engine import Router
from routing.errors import RoutingConfigError
from routing.model import OfferCallback, Overflow, QueueConfig, Step, Widen

__all__ = [
    "AmiConfig",
    "ApiConfig",
    "Config",
    "ConfigError",
    "DemoConfig",
    "DeskConfig",
    "IvrConfig",
    "PbxConfig",
    "RecordingPolicy",
    "RecordingsConfig",
    "Secret",
    "ServerConfig",
    "StoreConfig",
    "TwilioConfig",
    "load_config",
    "parse_config",
]


class ConfigError(Exception):
    """One line: ``<file>: <key>: expected ..., got ...``."""


class Secret:
    """A string that never shows itself in repr/str/logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


EVENT_LOOPS: Final = ("uvloop", "asyncio")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # callwright.memory: seconds between gc freezes (0: off) and full collections.
    gc_freeze_every: float = 60.0
    gc_full_every: float = 3600.0
    # The server's event loop: "uvloop" (libuv) or Python's own "asyncio".
    event_loop: str = "uvloop"


@dataclass(frozen=True)
class StoreConfig:
    url: str = ""  # empty: SQLite file in data_dir
    data_dir: Path = Path("data")

    @property
    def effective_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite+aiosqlite:///{self.data_dir / 'callwright.db'}"


@dataclass(frozen=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callwright"
    secret: Secret = field(default_factory=lambda: Secret(""))
    auth: str = "md5"  # "md5" (Challenge, the secret never crosses the wire) or "plain"
    action_timeout: float = 10.0
    ping_interval: float = 10.0  # idle seconds before a Ping
    ping_timeout: float = 5.0  # no byte within this after a Ping: the link is dead
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0


@dataclass(frozen=True)
class PbxConfig:
    trunk_endpoint: str = "trunk"
    agent_context: str = "callwright-agent"
    outbound_context: str = "callwright-outbound"
    holding_context: str = "callwright-hold"
    onhold_context: str = "callwright-onhold"
    agent_hold_context: str = "callwright-agent-hold"
    # The card payment line an agent sends a caller to ("" = none): the
    # recording pauses there while the card number is typed.
    payment_context: str = "callwright-payment"
    default_region: str = "US"
    originate_timeout: float = 30.0


MIN_SIGNING_KEY_LENGTH = 32


@dataclass(frozen=True)
class ApiConfig:
    token: Secret = field(default_factory=lambda: Secret(""))
    # Signs session tokens; the server refuses to start without one (the demo
    # generates one). Changing it logs everyone out.
    signing_key: Secret = field(default_factory=lambda: Secret(""))
    session_seconds: float = 12 * 3600.0  # a login lasts this long


@dataclass(frozen=True)
class TwilioConfig:
    """Twilio's webhooks (recording status callbacks, the IVR's TwiML): each
    request must carry an X-Twilio-Signature made with the account's auth
    token over the exact public URL Twilio called (cti/twilio_webhooks.py)."""

    # Empty: every Twilio webhook is refused (403).
    auth_token: Secret = field(default_factory=lambda: Secret(""))
    # The public base URL Twilio calls (e.g. "https://cc.example.com"); empty:
    # rebuilt from the request, from X-Forwarded-Proto and Host with trust_proxy.
    public_url: str = ""
    # Behind a TLS-terminating proxy: believe its X-Forwarded-Proto / -Host.
    trust_proxy: bool = False
    # What a caller waiting in a Twilio queue hears (<Enqueue waitUrl>, ivr/twilio.py);
    # empty: Twilio's public classical hold music.
    hold_music_url: str = ""


@dataclass(frozen=True)
class DemoConfig:
    call_interval: float = 5.0  # seconds between simulated inbound calls
    hold_seconds: float = 40.0  # a simulated caller hangs up after this long


DEFAULT_DISPOSITIONS: tuple[str, ...] = (
    "resolved",
    "follow_up",
    "escalated",
    "no_answer",
    "wrong_number",
)
DISPOSITION_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class DeskConfig:
    # The wrap-up codes an agent picks from (the desk shows them in this order).
    dispositions: tuple[str, ...] = DEFAULT_DISPOSITIONS
    notes_max_chars: int = 2000  # wrap-up notes longer than this are refused


DEFAULT_QUEUES: tuple[QueueConfig, ...] = (
    QueueConfig(
        id="support",
        name="Support",
        target='"support" in agent.skills',
        service_level_seconds=20.0,
        reservation_timeout_seconds=15.0,
        wrap_up_seconds=10.0,
    ),
)


@dataclass(frozen=True)
class RoutingConfig:
    queues: tuple[QueueConfig, ...] = DEFAULT_QUEUES
    voice_queue: str = "support"  # where calls at the holding point go
    email_queue: str = "support"  # where inbound email goes


@dataclass(frozen=True)
class OutboundMailConfig:
    host: str = "127.0.0.1"
    port: int = 25
    from_address: str = "support@callwright.example"
    starttls: bool = False
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    timeout: float = 30.0
    # The outbox: replies that failed (or that a stop left unsent) are sent
    # again every retry_every seconds, up to max_attempts sends each.
    retry_every: float = 300.0
    max_attempts: int = 12


@dataclass(frozen=True)
class EmailConfig:
    enabled: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = 2525
    hostname: str = "callwright"
    max_message_bytes: int = 25 * 1024 * 1024
    accept_domains: tuple[str, ...] = ()  # empty: any domain
    outbound: OutboundMailConfig = field(default_factory=OutboundMailConfig)


RECORD_MODES = ("all", "none", "percent")


@dataclass(frozen=True)
class RecordingPolicy:
    """Whether a queue's calls are recorded, and for how long they are kept."""

    record: str = "all"  # "all", "none" or "percent"
    percent: int = 100  # with record = "percent": the share of calls recorded, 0-100
    retention_days: int | None = None  # None: kept until erased


@dataclass(frozen=True)
class RecordingsConfig:
    enabled: bool = False
    dir: Path = Path("data/recordings")  # storage root
    # Where Asterisk (MixMonitor) or the simulator writes files while recording; in
    # production Asterisk's monitor directory, readable by Callwright.
    spool_dir: Path = Path("data/recordings-spool")
    # 32 bytes as 64 hex digits or base64; empty: files are stored unencrypted.
    encryption_key: Secret = field(default_factory=lambda: Secret(""))
    playback_seconds: int = 300  # lifetime of a signed playback URL
    agent_may_play: bool = False  # the agent who handled a call may play it
    purge_interval: float = 3600.0  # seconds between retention purges; 0: never
    default: RecordingPolicy = field(default_factory=RecordingPolicy)
    queues: Mapping[str, RecordingPolicy] = field(default_factory=dict)

    def policy_for(self, queue: str | None) -> RecordingPolicy:
        if queue is not None and queue in self.queues:
            return self.queues[queue]
        return self.default

    def retention_days(self, queue: str | None) -> int | None:
        return self.policy_for(queue).retention_days

    def key_bytes(self) -> bytes | None:
        """The encryption key as 32 bytes, or None (checked when the config was read)."""
        if not self.encryption_key:
            return None
        from recordings.crypto import parse_key

        return parse_key(self.encryption_key.reveal())


@dataclass(frozen=True)
class IvrConfig:
    """IVR flows, read and validated at start (``ivr.loader``, ``ivr.validate``):
    ``flow_files`` as resolved (relative to the config file), ``flows`` by name.
    ``agi_host``/``agi_port``: where the FastAGI server listens (``ivr.fastagi``;
    started only when flows are configured; port 0: any free port).
    ``voicemail_dir``: where Asterisk's RECORD FILE writes voicemails (relative:
    its sounds directory)."""

    flow_files: tuple[Path, ...] = ()
    flows: Mapping[str, Flow] = field(default_factory=dict)
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    voicemail_dir: str = "callwright/voicemail"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    pbx: PbxConfig = field(default_factory=PbxConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    desk: DeskConfig = field(default_factory=DeskConfig)
    ivr: IvrConfig = field(default_factory=IvrConfig)
    log_level: str = "INFO"


T = TypeVar("T")


class _Section:
    """Reads one table, remembering which keys were used so that a typo is an error."""

    def __init__(self, source: str, name: str, table: Any) -> None:
        self.source = source
        self.name = name
        if table is None:
            table = {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{name}]: expected a table, got {_show(table)}")
        self.table: Mapping[str, Any] = table
        self.used: set[str] = set()

    def _fail(self, key: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(
            f"{self.source}: {self.name}.{key}: expected {expected}, got {_show(got)}"
        )

    def get(self, key: str, default: T, check: Callable[[Any], T | None], expected: str) -> T:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        checked = check(value)
        if checked is None:
            raise self._fail(key, expected, value)
        return checked

    def string(self, key: str, default: str, *, allow_empty: bool = False) -> str:
        def check(v: Any) -> str | None:
            if isinstance(v, str) and (allow_empty or v.strip()):
                return v
            return None

        return self.get(key, default, check, "a string" if allow_empty else "a non-empty string")

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        def check(v: Any) -> int | None:
            if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
                return v
            return None

        return self.get(key, default, check, f"an integer {lo}-{hi}")

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        def check(v: Any) -> float | None:
            if isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi:
                return float(v)
            return None

        return self.get(key, default, check, f"a number {lo:g}-{hi:g}")

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        def check(v: Any) -> str | None:
            return v if v in choices else None

        return self.get(key, default, check, "one of " + ", ".join(repr(c) for c in choices))

    def secret(self, key: str, env: Mapping[str, str], *, what: str | None = None) -> Secret:
        """``key`` in the file, or the variable named by ``<key>_env`` (which
        wins). With ``what``, an empty result is an error describing it."""
        value = self.string(key, "", allow_empty=True)
        env_name = self.string(f"{key}_env", "", allow_empty=True)
        if env_name and env.get(env_name):
            value = env[env_name]
        if what and not value:
            hint = (
                f"the environment variable {env_name} is not set and {self.name}.{key} is empty"
                if env_name
                else f"set it, or name an environment variable in {self.name}.{key}_env"
            )
            raise ConfigError(f"{self.source}: {self.name}.{key}: expected {what}; {hint}")
        return Secret(value)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise ConfigError(
                f"{self.source}: {self.name}.{unknown[0]}: unknown key "
                f"(known keys: {', '.join(sorted(self.used))})"
            )


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value else "an empty string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


SECTIONS = (
    "server",
    "store",
    "ami",
    "pbx",
    "api",
    "demo",
    "routing",
    "email",
    "recordings",
    "twilio",
    "desk",
    "ivr",
    "log",
)


def parse_config(
    data: Mapping[str, Any],
    *,
    source: str = "config.toml",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    env = os.environ if env is None else env
    for key, value in data.items():
        if key not in SECTIONS:
            raise ConfigError(f"{source}: {key}: unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: [{key}]: expected a table, got {_show(value)}")

    s = _Section(source, "server", data.get("server"))
    server = ServerConfig(
        host=s.string("host", "127.0.0.1"),
        port=s.integer("port", 8080, 0, 65535),
        gc_freeze_every=s.number("gc_freeze_every", 60.0, 0, 86400),
        gc_full_every=s.number("gc_full_every", 3600.0, 0, 30 * 86400),
        event_loop=s.choice("event_loop", "uvloop", EVENT_LOOPS),
    )
    s.finish()

    s = _Section(source, "store", data.get("store"))
    url = s.string("url", "", allow_empty=True)
    if env.get("CALLWRIGHT_STORE_URL"):
        url = env["CALLWRIGHT_STORE_URL"]
    if url and not (
        url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")
    ):
        raise ConfigError(
            f"{source}: store.url: expected a sqlite+aiosqlite:// or postgresql+asyncpg:// URL, "
            f"got {url.split('://')[0]!r}"
        )
    data_dir = Path(s.string("data_dir", "data"))
    if base_dir is not None and not data_dir.is_absolute():
        data_dir = base_dir / data_dir
    store = StoreConfig(url=url, data_dir=data_dir)
    s.finish()

    s = _Section(source, "ami", data.get("ami"))
    ami = AmiConfig(
        host=s.string("host", "127.0.0.1"),
        port=s.integer("port", 5038, 1, 65535),
        username=s.string("username", "callwright"),
        secret=s.secret("secret", env, what="the AMI secret"),
        auth=s.choice("auth", "md5", ("md5", "plain")),
        action_timeout=s.number("action_timeout", 10.0, 0.1, 600),
        ping_interval=s.number("ping_interval", 10.0, 0.1, 3600),
        ping_timeout=s.number("ping_timeout", 5.0, 0.1, 600),
        reconnect_min=s.number("reconnect_min", 0.5, 0.01, 60),
        reconnect_max=s.number("reconnect_max", 30.0, 0.01, 3600),
    )
    if ami.reconnect_max < ami.reconnect_min:
        raise ConfigError(
            f"{source}: ami.reconnect_max: expected a number >= ami.reconnect_min "
            f"({ami.reconnect_min:g}), got {ami.reconnect_max:g}"
        )
    s.finish()

    s = _Section(source, "pbx", data.get("pbx"))
    defaults = PbxConfig()
    pbx = PbxConfig(
        trunk_endpoint=s.string("trunk_endpoint", defaults.trunk_endpoint),
        agent_context=s.string("agent_context", defaults.agent_context),
        outbound_context=s.string("outbound_context", defaults.outbound_context),
        holding_context=s.string("holding_context", defaults.holding_context),
        onhold_context=s.string("onhold_context", defaults.onhold_context),
        agent_hold_context=s.string("agent_hold_context", defaults.agent_hold_context),
        payment_context=s.string(
            "payment_context", defaults.payment_context, allow_empty=True
        ).strip(),
        default_region=s.string("default_region", defaults.default_region),
        originate_timeout=s.number("originate_timeout", defaults.originate_timeout, 1, 600),
    )
    s.finish()

    s = _Section(source, "api", data.get("api"))
    api = ApiConfig(
        token=s.secret("token", env),
        signing_key=s.secret("signing_key", env),
        session_seconds=s.number("session_seconds", 12 * 3600.0, 60, 7 * 86400),
    )
    if api.signing_key and len(api.signing_key.reveal()) < MIN_SIGNING_KEY_LENGTH:
        raise ConfigError(
            f"{source}: api.signing_key: expected at least {MIN_SIGNING_KEY_LENGTH} random "
            f"characters, got {len(api.signing_key.reveal())}"
        )
    s.finish()

    s = _Section(source, "demo", data.get("demo"))
    demo = DemoConfig(
        call_interval=s.number("call_interval", 5.0, 0.01, 3600),
        hold_seconds=s.number("hold_seconds", 40.0, 0.1, 36000),
    )
    s.finish()

    routing = _routing(source, data.get("routing"))
    email = _email(source, data.get("email"), env)
    recordings = _recordings(
        source, data.get("recordings"), env, data_dir, tuple(q.id for q in routing.queues)
    )

    twilio = _twilio(source, data.get("twilio"), env)
    desk = _desk(source, data.get("desk"))
    ivr = _ivr(source, data.get("ivr"), base_dir, routing)

    s = _Section(source, "log", data.get("log"))
    level = s.choice("level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
    s.finish()

    return Config(
        server=server,
        store=store,
        ami=ami,
        pbx=pbx,
        api=api,
        demo=demo,
        routing=routing,
        email=email,
        recordings=recordings,
        twilio=twilio,
        desk=desk,
        ivr=ivr,
        log_level=level,
    )


def _twilio(source: str, table: Any, env: Mapping[str, str]) -> TwilioConfig:
    s = _Section(source, "twilio", table)
    public_url = s.string("public_url", "", allow_empty=True).rstrip("/")
    if public_url and (not public_url.startswith(("https://", "http://")) or "?" in public_url):
        raise ConfigError(
            f"{source}: twilio.public_url: expected an http(s):// base URL without a query, "
            f"got {public_url!r}"
        )
    hold_music_url = s.string("hold_music_url", "", allow_empty=True)
    if hold_music_url and not hold_music_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"{source}: twilio.hold_music_url: expected an http(s):// audio URL, "
            f"got {hold_music_url!r}"
        )
    config = TwilioConfig(
        auth_token=s.secret("auth_token", env),
        public_url=public_url,
        trust_proxy=_boolean(s, "trust_proxy", False),
        hold_music_url=hold_music_url,
    )
    s.finish()
    return config


def _desk(source: str, table: Any) -> DeskConfig:
    s = _Section(source, "desk", table)

    def codes(value: Any) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            return None
        if not all(isinstance(v, str) and DISPOSITION_CODE.fullmatch(v) for v in value):
            return None
        if len(set(value)) != len(value):
            return None
        return tuple(value)

    desk = DeskConfig(
        dispositions=s.get(
            "dispositions",
            DEFAULT_DISPOSITIONS,
            codes,
            "a non-empty list of distinct codes (lower-case letters, digits, _; "
            "starting with a letter; at most 64)",
        ),
        notes_max_chars=s.integer("notes_max_chars", 2000, 1, 100_000),
    )
    s.finish()
    return desk


def _boolean(s: _Section, key: str, default: bool) -> bool:
    return s.get(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")


def _email(source: str, table: Any, env: Mapping[str, str]) -> EmailConfig:
    s = _Section(source, "email", table)
    domains: list[str] = s.get(
        "accept_domains",
        [],
        lambda v: v if isinstance(v, list) and all(isinstance(d, str) for d in v) else None,
        "a list of domain names",
    )
    config = EmailConfig(
        enabled=_boolean(s, "enabled", False),
        listen_host=s.string("listen_host", "127.0.0.1"),
        listen_port=s.integer("listen_port", 2525, 0, 65535),
        hostname=s.string("hostname", "callwright"),
        max_message_bytes=s.integer("max_message_bytes", 25 * 1024 * 1024, 1024, 1 << 31),
        accept_domains=tuple(d.lower() for d in domains),
        outbound=_outbound(source, s.get("outbound", None, lambda v: v, "a table"), env),
    )
    s.finish()
    return config


def _outbound(source: str, table: Any, env: Mapping[str, str]) -> OutboundMailConfig:
    s = _Section(source, "email.outbound", table)
    config = OutboundMailConfig(
        host=s.string("host", "127.0.0.1"),
        port=s.integer("port", 25, 1, 65535),
        from_address=s.string("from_address", "support@callwright.example"),
        starttls=_boolean(s, "starttls", False),
        username=s.string("username", "", allow_empty=True),
        password=s.secret("password", env),
        timeout=s.number("timeout", 30.0, 0.1, 600),
        retry_every=s.number("retry_every", 300.0, 0.05, 86400),
        max_attempts=s.integer("max_attempts", 12, 1, 1000),
    )
    if "@" not in config.from_address:
        raise ConfigError(
            f"{source}: email.outbound.from_address: expected an e-mail address, "
            f"got {config.from_address!r}"
        )
    s.finish()
    return config


def _recordings(
    source: str,
    table: Any,
    env: Mapping[str, str],
    data_dir: Path,
    queue_ids: tuple[str, ...],
) -> RecordingsConfig:
    s = _Section(source, "recordings", table)

    def directory(key: str, default: Path) -> Path:
        raw = s.string(key, "", allow_empty=True)
        if not raw:
            return default
        path = Path(raw)
        return path if path.is_absolute() else data_dir / path

    key = s.secret("encryption_key", env)
    if key:
        from recordings.crypto import parse_key

        try:
            parse_key(key.reveal())
        except ValueError as exc:
            raise ConfigError(f"{source}: recordings.encryption_key: {exc}") from None
    default = _recording_policy(
        source, "recordings.default", s.get("default", None, lambda v: v, "a table")
    )
    raw_queues: Mapping[str, Any] = s.get(
        "queues", {}, lambda v: v if isinstance(v, Mapping) else None, "a table of queues"
    )
    queues: dict[str, RecordingPolicy] = {}
    for queue_id, raw in raw_queues.items():
        where = f"recordings.queues.{queue_id}"
        if queue_id not in queue_ids:
            raise ConfigError(
                f"{source}: {where}: expected one of the routing queues "
                f"({', '.join(queue_ids)}), got {queue_id!r}"
            )
        queues[queue_id] = _recording_policy(source, where, raw)
    config = RecordingsConfig(
        enabled=_boolean(s, "enabled", False),
        dir=directory("dir", data_dir / "recordings"),
        spool_dir=directory("spool_dir", data_dir / "recordings-spool"),
        encryption_key=key,
        playback_seconds=s.integer("playback_seconds", 300, 10, 86400),
        agent_may_play=_boolean(s, "agent_may_play", False),
        purge_interval=s.number("purge_interval", 3600.0, 0, 7 * 86400),
        default=default,
        queues=queues,
    )
    s.finish()
    if config.dir.resolve() == config.spool_dir.resolve():
        raise ConfigError(
            f"{source}: recordings.spool_dir: expected a directory other than recordings.dir"
        )
    return config


def _recording_policy(source: str, where: str, table: Any) -> RecordingPolicy:
    s = _Section(source, where, table)
    record = s.choice("record", "all", RECORD_MODES)
    percent = s.integer("percent", 100, 0, 100)
    days: int | None = s.get(
        "retention_days",
        None,
        lambda v: v if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 36500 else None,
        "a number of days 1-36500 (leave it out to keep recordings until erased)",
    )
    s.finish()
    if "percent" in s.table and record != "percent":
        raise ConfigError(f'{source}: {where}.percent: only with record = "percent"')
    return RecordingPolicy(record=record, percent=percent, retention_days=days)


def _ivr(source: str, table: Any, base_dir: Path | None, routing: RoutingConfig) -> IvrConfig:
    """Every flow file is loaded and validated against the configured queues; the
    first problem stops the start with ``ivr.flows[i] (file): flow <name>, node
    <id>: ...``."""
    s = _Section(source, "ivr", table)
    names: list[str] = s.get(
        "flows",
        [],
        lambda v: v if isinstance(v, list) and all(isinstance(f, str) and f for f in v) else None,
        "a list of flow file paths",
    )
    agi_host = s.string("agi_host", "127.0.0.1")
    agi_port = s.integer("agi_port", 4573, 0, 65535)
    voicemail_dir = s.string("voicemail_dir", "callwright/voicemail")
    s.finish()
    queue_ids = [q.id for q in routing.queues]
    files: list[Path] = []
    flows: dict[str, Flow] = {}
    for index, name in enumerate(names):
        path = Path(name)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            flow = load_flow(path)
            if flow.name in flows:
                raise FlowError(
                    flow.name, None, f"defined twice (also in {flows[flow.name].source})"
                )
            validate_flow(flow, queue_ids)
        except FlowError as exc:
            raise ConfigError(f"{source}: ivr.flows[{index}] ({name}): {exc}") from None
        files.append(path)
        flows[flow.name] = flow
    return IvrConfig(
        flow_files=tuple(files),
        flows=flows,
        agi_host=agi_host,
        agi_port=agi_port,
        voicemail_dir=voicemail_dir,
    )


STRATEGIES = ("longest_idle", "least_occupied", "best_skill")


def _routing(source: str, table: Any) -> RoutingConfig:
    s = _Section(source, "routing", table)
    raw_queues = s.get("queues", None, lambda v: v if isinstance(v, list) else None, "a list")
    queues = DEFAULT_QUEUES
    if raw_queues is not None:
        parsed: list[QueueConfig] = []
        for index, raw in enumerate(raw_queues):
            name = raw.get("id") if isinstance(raw, Mapping) else None
            where = f"routing.queues[{name if isinstance(name, str) else index}]"
            q = _Section(source, where, raw)
            strategy = q.choice("strategy", "longest_idle", STRATEGIES)
            queue = QueueConfig(
                id=q.string("id", ""),
                name=q.string("name", "", allow_empty=True) or None,
                target=q.string("target", ""),
                steps=_steps(source, where, q),
                strategy=strategy,  # type: ignore[arg-type]
                strategy_skill=q.string("strategy_skill", "", allow_empty=True) or None,
                aging_per_second=q.number("aging_per_second", 0.0, 0, 1000),
                sticky_agent_seconds=q.number("sticky_agent_seconds", 0.0, 0, 3600),
                service_level_seconds=q.number("service_level_seconds", 20.0, 0, 86400),
                reservation_timeout_seconds=q.number("reservation_timeout_seconds", 30.0, 1, 3600),
                wrap_up_seconds=q.number("wrap_up_seconds", 0.0, 0, 3600),
                email_blocks_voice=q.get(
                    "email_blocks_voice",
                    False,
                    lambda v: v if isinstance(v, bool) else None,
                    "true or false",
                ),
            )
            for key in ("id", "target"):
                if not q.table.get(key):
                    raise ConfigError(f"{source}: {where}.{key}: expected a non-empty string")
            q.finish()
            parsed.append(queue)
        queues = tuple(parsed)
    ids = [q.id for q in queues]
    voice_queue = s.string("voice_queue", ids[0] if ids else "support")
    email_queue = s.string("email_queue", ids[0] if ids else "support")
    s.finish()
    if not queues:
        raise ConfigError(f"{source}: routing.queues: expected at least one queue")
    try:
        Router(queues)
    except RoutingConfigError as exc:
        raise ConfigError(f"{source}: routing.queues: {exc}") from None
    for key, value in (("voice_queue", voice_queue), ("email_queue", email_queue)):
        if value not in ids:
            raise ConfigError(
                f"{source}: routing.{key}: expected one of the queues ({', '.join(ids)}), "
                f"got {value!r}"
            )
    return RoutingConfig(queues=queues, voice_queue=voice_queue, email_queue=email_queue)


def _steps(source: str, where: str, q: _Section) -> tuple[Step, ...]:
    raw: list[Any] = q.get(
        "steps", [], lambda v: v if isinstance(v, list) else None, "a list of tables"
    )
    steps: list[Step] = []
    for index, item in enumerate(raw):
        st = _Section(source, f"{where}.steps[{index}]", item)
        after = st.number("after", -1.0, 0, 86400)
        widen = st.string("widen", "", allow_empty=True)
        overflow = st.string("overflow", "", allow_empty=True)
        callback = st.get(
            "callback", False, lambda v: v if isinstance(v, bool) else None, "true or false"
        )
        st.finish()
        if after < 0:
            raise ConfigError(f"{source}: {where}.steps[{index}].after: expected seconds")
        chosen = [
            k for k, v in (("widen", widen), ("overflow", overflow), ("callback", callback)) if v
        ]
        if len(chosen) != 1:
            raise ConfigError(
                f"{source}: {where}.steps[{index}]: expected exactly one of widen, overflow, "
                f"callback, got {len(chosen)}"
            )
        if widen:
            steps.append(Widen(after, widen))
        elif overflow:
            steps.append(Overflow(after, overflow))
        else:
            steps.append(OfferCallback(after))
    return tuple(steps)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: expected UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, source=str(path), env=env, base_dir=path.parent.resolve())
