"""Flow files (TOML) -> ``ivr.model.Flow``, refusing anything doubtful.

One flow per file::

    [flow]
    name = "support"              # letters, digits, - and _ (the AGI/Twilio URL names it)
    start = "welcome"
    language = "en"               # the default language
    languages = { en = "en-US", fr = "fr-FR" }   # code -> locale (default: {language = language})
    timezone = "Europe/Paris"     # for hours nodes and date checks
    survey = "survey"             # optional: the node where the post-call survey starts
    max_steps = 100               # optional: node visits per session before giving up

    [nodes.welcome]
    kind = "say"
    prompt = { en = "Welcome.", fr = "Bienvenue.", sound = "callwright/welcome" }
    next = "hours"

A prompt is a table of texts by language code (every language of the flow),
plus optional ``sound`` (Asterisk sound name) and ``url`` (Twilio audio URL,
``{language}`` replaced); a plain string is allowed when the flow speaks one
language. The keys of each node kind are in ``ivr.model``'s docstrings; every
key is checked (a typo is an error), every bad value is refused with
``FlowError("flow <name>, node <id>: <key>: expected ..., got ...")``.

``parse_flow(data)`` checks one parsed TOML document; ``load_flow(path)`` reads
a file; ``load_flows(paths, queues)`` reads several, refuses duplicate names
and runs ``ivr.validate.validate_flow`` on each against the queue ids.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.errors import FlowError
from ivr.model import (
    WEEKDAYS,
    BranchCase,
    BranchNode,
    CallbackNode,
    CollectNode,
    Flow,
    HangupNode,
    HoursNode,
    LookupNode,
    MenuChoice,
    MenuNode,
    Node,
    Prompt,
    QueueNode,
    RecordingNode,
    SayNode,
    Schedule,
    SetNode,
    SurveyNode,
    TransferNode,
    VoicemailNode,
)
from ivr.validate import validate_flow
from routing.errors import ExpressionError
from routing.expressions import parse as parse_expression
from routing.model import AttributeValue

__all__ = ["KINDS", "RESERVED_ATTRIBUTES", "load_flow", "load_flows", "parse_flow"]

T = TypeVar("T")

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ATTRIBUTE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}")
_LOCALE: Final = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_SOUND: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
_URL: Final = re.compile(r"https?://[^\s\"'<>]{1,2000}")
_PHONE: Final = re.compile(r"\+?[0-9]{3,20}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_RULE: Final = re.compile(r"\s*([a-z,\s-]+?)\s+([0-9:,\s-]+)\s*")
_RANGE: Final = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
MENU_KEYS: Final = "0123456789*#"
MAX_TEXT: Final = 2000
RESERVED_ATTRIBUTES: Final = frozenset({"caller_id", "dialed", "ivr_flow"})
"""Set by the interpreter on every task; a flow may not write them."""
KINDS: Final = (
    "say",
    "menu",
    "collect",
    "lookup",
    "hours",
    "set",
    "branch",
    "queue",
    "voicemail",
    "callback",
    "survey",
    "transfer",
    "recording",
    "hangup",
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


class _Table:
    """Reads one TOML table of a flow, remembering the keys used so that an
    unknown key is an error naming it."""

    def __init__(self, flow: str | None, node: str | None, table: Any, *, where: str = "") -> None:
        self.flow = flow
        self.node = node
        self.where = where  # a key prefix ("cases[0].") for nested tables
        if not isinstance(table, Mapping):
            raise self.error(where.rstrip(".") or None, f"expected a table, got {_show(table)}")
        self.table: Mapping[str, Any] = table
        self.used: set[str] = set()

    def error(self, key: str | None, problem: str) -> FlowError:
        full = f"{self.where}{key}" if key is not None else (self.where.rstrip(".") or None)
        return FlowError(self.flow, self.node, problem, key=full)

    def fail(self, key: str, expected: str, got: Any) -> FlowError:
        return self.error(key, f"expected {expected}, got {_show(got)}")

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.table.get(key)

    def get(self, key: str, default: T, check: Callable[[Any], T | None], expected: str) -> T:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        checked = check(value)
        if checked is None:
            raise self.fail(key, expected, value)
        return checked

    def require(self, key: str, check: Callable[[Any], T | None], expected: str) -> T:
        self.used.add(key)
        if key not in self.table:
            raise self.error(key, f"missing (expected {expected})")
        value = self.table[key]
        checked = check(value)
        if checked is None:
            raise self.fail(key, expected, value)
        return checked

    def name(self, key: str) -> str:
        return self.require(key, _match(_NAME), "a node id (letters, digits, - and _)")

    def optional_name(self, key: str) -> str | None:
        return self.get(key, None, _match(_NAME), "a node id (letters, digits, - and _)")

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        return self.get(key, default, _int_between(lo, hi), f"an integer {lo}-{hi}")

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        def check(v: Any) -> float | None:
            if isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi:
                return float(v)
            return None

        return self.get(key, default, check, f"a number {lo:g}-{hi:g}")

    def boolean(self, key: str, default: bool) -> bool:
        return self.get(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        options = tuple(choices)
        return self.get(
            key,
            default,
            lambda v: v if v in options else None,
            "one of " + ", ".join(repr(c) for c in options),
        )

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(
                unknown[0], f"unknown key (known keys: {', '.join(sorted(self.used))})"
            )


def _match(pattern: re.Pattern[str]) -> Callable[[Any], str | None]:
    return lambda v: v if isinstance(v, str) and pattern.fullmatch(v) else None


def _int_between(lo: int, hi: int) -> Callable[[Any], int | None]:
    def check(v: Any) -> int | None:
        if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
            return v
        return None

    return check


def _clean_text(v: Any) -> str | None:
    if isinstance(v, str) and v.strip() and len(v) <= MAX_TEXT and not _CONTROL.search(v):
        return v
    return None


class _FlowReader:
    def __init__(self, name: str, languages: Mapping[str, str], language: str, tz: str) -> None:
        self.name = name
        self.languages = languages
        self.language = language
        self.timezone = tz

    # -- shared pieces ------------------------------------------------------

    def prompt(self, t: _Table, key: str, *, required: bool) -> Prompt | None:
        if not t.has(key):
            t.used.add(key)
            if required:
                raise t.error(key, "missing (expected a prompt: a table of texts by language)")
            return None
        raw = t.raw(key)
        if isinstance(raw, str):
            if len(self.languages) != 1:
                raise t.error(
                    key,
                    "expected a table of texts by language ("
                    + ", ".join(self.languages)
                    + "), got a string",
                )
            if _clean_text(raw) is None:
                raise t.fail(key, f"a text of 1-{MAX_TEXT} characters without control codes", raw)
            return Prompt(text={self.language: raw})
        p = _Table(self.name, t.node, raw, where=f"{t.where}{key}.")
        text: dict[str, str] = {}
        for code in self.languages:
            if not p.has(code):
                raise p.error(None, f"no text for language {code!r}")
            text[code] = p.require(
                code, _clean_text, f"a text of 1-{MAX_TEXT} characters without control codes"
            )
        sound = p.get(
            "sound",
            None,
            lambda v: v if isinstance(v, str) and _SOUND.fullmatch(v) and ".." not in v else None,
            "an Asterisk sound name (letters, digits, _ . - and /, no '..')",
        )
        url = p.get("url", None, _match(_URL), "an http(s) URL")
        p.finish()
        return Prompt(text=text, sound=sound, url=url)

    def attribute_name(self, t: _Table, key: str, value: Any) -> str:
        if not isinstance(value, str) or not _ATTRIBUTE.fullmatch(value):
            raise t.fail(key, "an attribute name (a letter or _, then letters, digits, _)", value)
        if value in RESERVED_ATTRIBUTES:
            raise t.error(
                key,
                f"{value!r} is set by the interpreter on every task "
                f"(reserved: {', '.join(sorted(RESERVED_ATTRIBUTES))})",
            )
        return value

    def var(self, t: _Table, key: str, *, required: bool, default: str | None = None) -> str | None:
        t.used.add(key)
        if not t.has(key):
            if required:
                raise t.error(key, "missing (expected an attribute name)")
            return default
        return self.attribute_name(t, key, t.table[key])

    def attributes(self, t: _Table, key: str) -> dict[str, AttributeValue]:
        raw: Mapping[str, Any] = t.get(
            key, {}, lambda v: v if isinstance(v, Mapping) else None, "a table"
        )
        out: dict[str, AttributeValue] = {}
        for name, value in raw.items():
            self.attribute_name(t, f"{key}.{name}", name)
            ok = (
                isinstance(value, bool | int)
                or (isinstance(value, float) and math.isfinite(value))
                or (isinstance(value, str) and not _CONTROL.search(value) and len(value) <= 500)
            )
            if not ok:
                raise t.fail(f"{key}.{name}", "a string, a number or true/false", value)
            out[name] = value
        return out

    def skills(self, t: _Table, key: str) -> dict[str, int]:
        raw: Mapping[str, Any] = t.get(
            key, {}, lambda v: v if isinstance(v, Mapping) else None, "a table"
        )
        out: dict[str, int] = {}
        for name, level in raw.items():
            if not _ATTRIBUTE.fullmatch(name):
                raise t.error(f"{key}.{name}", "expected a skill name (letters, digits, _)")
            if _int_between(1, 10)(level) is None:
                raise t.fail(f"{key}.{name}", "a skill level 1-10", level)
            out[name] = level
        return out

    def priority(self, t: _Table) -> int | None:
        return t.get("priority", None, _int_between(-1000, 1000), "an integer -1000-1000")

    def retries(self, t: _Table) -> int:
        return t.integer("retries", 2, 0, 10)

    def timeout(self, t: _Table, default: float) -> float:
        return t.number("timeout", default, 1, 60)

    def finish_key(self, t: _Table, key: str) -> str:
        return t.choice(key, "#", ("#", "*", ""))

    # -- nodes --------------------------------------------------------------

    def node(self, node_id: str, raw: Any) -> Node:
        t = _Table(self.name, node_id, raw)
        if not t.has("kind"):
            t.used.add("kind")
            raise t.error("kind", "missing (expected one of " + ", ".join(KINDS) + ")")
        kind = t.choice("kind", "", KINDS)
        node = getattr(self, f"_{kind}")(node_id, t)
        t.finish()
        assert isinstance(
            node,
            SayNode
            | MenuNode
            | CollectNode
            | LookupNode
            | HoursNode
            | SetNode
            | BranchNode
            | QueueNode
            | VoicemailNode
            | CallbackNode
            | SurveyNode
            | TransferNode
            | RecordingNode
            | HangupNode,
        )
        return node

    def _say(self, node_id: str, t: _Table) -> SayNode:
        prompt = self.prompt(t, "prompt", required=True)
        assert prompt is not None
        return SayNode(id=node_id, prompt=prompt, next=t.name("next"))

    def _menu(self, node_id: str, t: _Table) -> MenuNode:
        prompt = self.prompt(t, "prompt", required=True)
        assert prompt is not None
        raw = t.require(
            "choices",
            lambda v: v if isinstance(v, Mapping) and v else None,
            "a table of key = node (at least one)",
        )
        choices: dict[str, MenuChoice] = {}
        for key, target in raw.items():
            if len(key) != 1 or key not in MENU_KEYS:
                raise t.error(f"choices.{key}", f"expected a single key of {MENU_KEYS}")
            if isinstance(target, str):
                if not _NAME.fullmatch(target):
                    raise t.fail(f"choices.{key}", "a node id", target)
                choices[key] = MenuChoice(next=target, value=key)
                continue
            c = _Table(self.name, node_id, target, where=f"choices.{key}.")
            choices[key] = MenuChoice(
                next=c.name("next"),
                value=c.get("value", key, _clean_text, "a non-empty text"),
            )
            c.finish()
        return MenuNode(
            id=node_id,
            prompt=prompt,
            choices=choices,
            failure=t.name("failure"),
            timeout=self.timeout(t, 5.0),
            retries=self.retries(t),
            invalid=self.prompt(t, "invalid", required=False),
            no_input=self.prompt(t, "no_input", required=False),
            var=self.var(t, "var", required=False),
        )

    def _collect(self, node_id: str, t: _Table) -> CollectNode:
        prompt = self.prompt(t, "prompt", required=True)
        assert prompt is not None
        var = self.var(t, "var", required=True)
        assert var is not None
        fmt = t.choice("format", "digits", ("digits", "date"))
        if fmt == "date":
            min_digits = t.integer("min_digits", 8, 8, 8)
            max_digits = t.integer("max_digits", 8, 8, 8)
        else:
            min_digits = t.integer("min_digits", 1, 1, 32)
            max_digits = t.integer("max_digits", 16, 1, 32)
        if min_digits > max_digits:
            raise t.error(
                "min_digits", f"expected at most max_digits ({max_digits}), got {min_digits}"
            )
        check = t.choice("check", "none", ("none", "luhn"))
        if check == "luhn" and fmt != "digits":
            raise t.error("check", "a luhn check takes format = 'digits', not a date")
        if check == "luhn" and min_digits < 2:
            raise t.error("min_digits", "a luhn check needs at least 2 digits (a card has 12-19)")
        return CollectNode(
            id=node_id,
            prompt=prompt,
            var=var,
            next=t.name("next"),
            failure=t.name("failure"),
            min_digits=min_digits,
            max_digits=max_digits,
            finish_on_key=self.finish_key(t, "finish_on_key"),
            timeout=self.timeout(t, 7.0),
            retries=self.retries(t),
            format=fmt,  # type: ignore[arg-type]
            date_order=t.choice("date_order", "DMY", ("DMY", "MDY", "YMD")),  # type: ignore[arg-type]
            invalid=self.prompt(t, "invalid", required=False),
            no_input=self.prompt(t, "no_input", required=False),
            check=check,  # type: ignore[arg-type]
            secret=t.boolean("secret", False),
        )

    def _lookup(self, node_id: str, t: _Table) -> LookupNode:
        by = t.require(
            "by",
            lambda v: v if v in ("caller_id", "account_number") else None,
            "'caller_id' or 'account_number'",
        )
        var = self.var(t, "var", required=by == "account_number")
        if by == "caller_id" and var is not None:
            raise t.error("var", "only a lookup by account_number reads a var")
        copy_raw: list[Any] = t.get(
            "copy",
            [],
            lambda v: v if isinstance(v, list) else None,
            "a list of customer fields",
        )
        copy = tuple(self.attribute_name(t, f"copy[{i}]", c) for i, c in enumerate(copy_raw))
        return LookupNode(
            id=node_id,
            by=by,
            var=var,
            copy=copy,
            found=t.name("found"),
            not_found=t.name("not_found"),
        )

    def _hours(self, node_id: str, t: _Table) -> HoursNode:
        tz = t.get(
            "timezone",
            self.timezone,
            lambda v: v if _zone_ok(v) else None,
            "an IANA time zone such as 'Europe/Paris'",
        )
        rules = t.require(
            "week",
            lambda v: v if isinstance(v, list) and all(isinstance(r, str) for r in v) else None,
            "a list of rules such as 'mon-fri 08:00-18:00'",
        )
        weekly: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
        for index, rule in enumerate(rules):
            days, ranges = _parse_rule(rule, t, f"week[{index}]")
            for day in days:
                weekly[day].extend(ranges)
        holidays_raw: list[Any] = t.get(
            "holidays", [], lambda v: v if isinstance(v, list) else None, "a list of dates"
        )
        holidays: set[date] = set()
        for index, item in enumerate(holidays_raw):
            holiday = _as_date(item)
            if holiday is None:
                raise t.fail(f"holidays[{index}]", "a date such as 2026-12-25", item)
            holidays.add(holiday)
        schedule = Schedule(
            timezone=tz,
            weekly=tuple(tuple(sorted(r)) for r in weekly),
            holidays=frozenset(holidays),
        )
        return HoursNode(
            id=node_id,
            schedule=schedule,
            open=t.name("open"),
            closed=t.name("closed"),
            holiday=t.optional_name("holiday"),
        )

    def _set(self, node_id: str, t: _Table) -> SetNode:
        language = t.get(
            "language",
            None,
            lambda v: v if v in self.languages else None,
            "one of the flow's languages (" + ", ".join(self.languages) + ")",
        )
        node = SetNode(
            id=node_id,
            next=t.name("next"),
            language=language,
            priority=self.priority(t),
            skills=self.skills(t, "skills"),
            attributes=self.attributes(t, "attributes"),
        )
        if (
            node.language is None
            and node.priority is None
            and not node.skills
            and not (node.attributes)
        ):
            raise t.error(None, "sets nothing (give language, priority, skills or attributes)")
        return node

    def _branch(self, node_id: str, t: _Table) -> BranchNode:
        raw = t.require(
            "cases",
            lambda v: v if isinstance(v, list) and v else None,
            "a list of { when = ..., next = ... } (at least one)",
        )
        cases: list[BranchCase] = []
        for index, item in enumerate(raw):
            c = _Table(self.name, node_id, item, where=f"cases[{index}].")
            when = c.require("when", _clean_text, "a condition such as 'task.attributes.vip'")
            try:
                expression = parse_expression(when)
            except ExpressionError as exc:
                raise c.error("when", str(exc)) from None
            if "agent" in expression.roots:
                raise c.error(
                    "when", "a branch reads only task.* (the task being built), not agent.*"
                )
            cases.append(BranchCase(when=when, next=c.name("next"), expression=expression))
            c.finish()
        return BranchNode(id=node_id, cases=tuple(cases), otherwise=t.name("otherwise"))

    def _queue_id(self, t: _Table) -> str:
        return t.require("queue", _match(_NAME), "a queue id")

    def _queue(self, node_id: str, t: _Table) -> QueueNode:
        return QueueNode(
            id=node_id,
            queue=self._queue_id(t),
            prompt=self.prompt(t, "prompt", required=False),
            priority=self.priority(t),
            skills=self.skills(t, "skills"),
            attributes=self.attributes(t, "attributes"),
            survey=t.boolean("survey", True),
            origin=t.boolean("origin", False),
        )

    def _voicemail(self, node_id: str, t: _Table) -> VoicemailNode:
        prompt = self.prompt(t, "prompt", required=True)
        assert prompt is not None
        return VoicemailNode(
            id=node_id,
            prompt=prompt,
            queue=self._queue_id(t),
            max_seconds=t.integer("max_seconds", 120, 5, 600),
            finish_on_key=self.finish_key(t, "finish_on_key"),
            goodbye=self.prompt(t, "goodbye", required=False),
        )

    def _callback(self, node_id: str, t: _Table) -> CallbackNode:
        return CallbackNode(
            id=node_id,
            queue=self._queue_id(t),
            prompt=self.prompt(t, "prompt", required=False),
            number_var=self.var(t, "number_var", required=False),
            no_number=t.optional_name("no_number"),
        )

    def _survey(self, node_id: str, t: _Table) -> SurveyNode:
        prompt = self.prompt(t, "prompt", required=True)
        assert prompt is not None
        var = self.var(t, "var", required=False, default="survey_score")
        assert var is not None
        return SurveyNode(
            id=node_id,
            prompt=prompt,
            next=t.name("next"),
            failure=t.name("failure"),
            scale=t.integer("scale", 5, 2, 9),
            timeout=self.timeout(t, 5.0),
            retries=self.retries(t),
            invalid=self.prompt(t, "invalid", required=False),
            no_input=self.prompt(t, "no_input", required=False),
            var=var,
        )

    def _transfer(self, node_id: str, t: _Table) -> TransferNode:
        return TransferNode(
            id=node_id,
            number=t.require(
                "number", _match(_PHONE), "a phone number: 3-20 digits, optionally a leading +"
            ),
            prompt=self.prompt(t, "prompt", required=False),
            timeout=t.integer("timeout", 30, 5, 120),
            failure=t.optional_name("failure"),
        )

    def _recording(self, node_id: str, t: _Table) -> RecordingNode:
        action = t.require(
            "action", lambda v: v if v in ("pause", "resume") else None, "'pause' or 'resume'"
        )
        return RecordingNode(id=node_id, action=action, next=t.name("next"))

    def _hangup(self, node_id: str, t: _Table) -> HangupNode:
        return HangupNode(id=node_id, prompt=self.prompt(t, "prompt", required=False))


def _zone_ok(value: Any) -> bool:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _as_date(item: Any) -> date | None:
    if isinstance(item, date) and not hasattr(item, "hour"):
        return item
    if isinstance(item, str):
        try:
            return date.fromisoformat(item)
        except ValueError:
            return None
    return None


def _parse_rule(rule: str, t: _Table, key: str) -> tuple[list[int], list[tuple[int, int]]]:
    """``mon-fri 08:00-12:00, 14:00-18:00``; days: ``mon``, ``mon-fri``,
    ``sat,sun``, ``fri-mon`` (wraps); a range ends after it starts (24:00 is
    the end of the day; a range over midnight is two rules)."""
    expected = "a rule such as 'mon-fri 08:00-18:00' or 'sat 09:00-12:00, 14:00-17:00'"
    m = _RULE.fullmatch(rule)
    if m is None:
        raise t.fail(key, expected, rule)
    days: list[int] = []
    for part in m.group(1).replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(e in WEEKDAYS for e in ends):
            raise t.error(key, f"{part!r} is not a day or a range of days ({', '.join(WEEKDAYS)})")
        first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        day = first
        days.append(day)
        while day != last:
            day = (day + 1) % 7
            days.append(day)
    ranges: list[tuple[int, int]] = []
    for part in m.group(2).replace(" ", "").split(","):
        r = _RANGE.fullmatch(part)
        if r is None:
            raise t.fail(key, expected, rule)
        h1, m1, h2, m2 = (int(x) for x in r.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440 or end <= start:
            raise t.error(
                key,
                f"{part!r} is not a range within one day (HH:MM-HH:MM, the end after the "
                "start, at most 24:00; split a range over midnight in two rules)",
            )
        ranges.append((start, end))
    return days, ranges


def parse_flow(data: Mapping[str, Any], *, source: str = "") -> Flow:
    """One parsed TOML document -> a ``Flow`` (structure and values checked; the
    graph is checked by ``ivr.validate``)."""
    if not isinstance(data, Mapping):
        raise FlowError(None, None, "expected a TOML document")
    unknown = sorted(set(data) - {"flow", "nodes"})
    if unknown:
        raise FlowError(None, None, "unknown table (expected [flow] and [nodes.*])", key=unknown[0])
    head_raw = data.get("flow")
    if head_raw is None:
        raise FlowError(
            None, None, "missing (expected a [flow] table with name and start)", key="[flow]"
        )
    head = _Table(None, None, head_raw, where="")
    name = head.require("name", _match(_NAME), "a flow name (letters, digits, - and _)")
    head.flow = name
    language = head.require("language", _match(_LANGUAGE), "a language code such as 'en'")
    languages_raw: Mapping[str, Any] = head.get(
        "languages",
        {language: language},
        lambda v: v if isinstance(v, Mapping) and v else None,
        "a table of language code = locale, such as { en = 'en-US' }",
    )
    languages: dict[str, str] = {}
    for code, locale in languages_raw.items():
        if not _LANGUAGE.fullmatch(code):
            raise head.error(f"languages.{code}", "expected a language code such as 'fr'")
        if not isinstance(locale, str) or not _LOCALE.fullmatch(locale):
            raise head.fail(f"languages.{code}", "a locale such as 'fr-FR'", locale)
        languages[code] = locale
    if language not in languages:
        raise head.error(
            "language", f"{language!r} is not one of languages ({', '.join(languages)})"
        )
    tz = head.require(
        "timezone",
        lambda v: v if _zone_ok(v) else None,
        "an IANA time zone such as 'Europe/Paris'",
    )
    start = head.name("start")
    survey = head.optional_name("survey")
    max_steps = head.integer("max_steps", 100, 5, 1000)
    head.finish()

    reader = _FlowReader(name, languages, language, tz)
    nodes_raw = data.get("nodes")
    if not isinstance(nodes_raw, Mapping) or not nodes_raw:
        raise FlowError(name, None, "expected at least one [nodes.<id>] table", key="nodes")
    nodes: dict[str, Node] = {}
    for node_id, raw in nodes_raw.items():
        if not _NAME.fullmatch(node_id):
            raise FlowError(name, node_id, "a node id is 1-64 letters, digits, - and _", key=None)
        nodes[node_id] = reader.node(node_id, raw)
    return Flow(
        name=name,
        start=start,
        language=language,
        languages=languages,
        timezone=tz,
        nodes=nodes,
        survey=survey,
        max_steps=max_steps,
        source=source,
    )


def load_flow(path: str | Path) -> Flow:
    """Read and parse one flow file (``FlowError`` names the file when it cannot
    be read or is not TOML)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FlowError(None, None, f"{path}: cannot read the flow file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise FlowError(None, None, f"{path}: expected UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise FlowError(None, None, f"{path}: not valid TOML: {exc}") from None
    return parse_flow(data, source=str(path))


def load_flows(
    paths: Iterable[str | Path], queues: Collection[str] | None = None
) -> dict[str, Flow]:
    """Load, then validate against ``queues`` (the configured queue ids; None
    skips that check), every flow; names must be unique."""
    flows: dict[str, Flow] = {}
    for path in paths:
        flow = load_flow(path)
        if flow.name in flows:
            raise FlowError(
                flow.name, None, f"defined twice ({flows[flow.name].source} and {path})"
            )
        validate_flow(flow, queues)
        flows[flow.name] = flow
    return flows
