"""AMI messages as immutable values.

A message is an ordered tuple of ``(name, value)`` headers, because AMI repeats
header names (``Output``, ``Variable``, ``ChanVariable``) and because the
simulator must write them back in Asterisk's order. Header names are matched
case-insensitively, as Asterisk does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["AmiAction", "AmiEvent", "AmiMessage", "AmiResponse", "Banner", "Headers"]

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AmiMessage:
    headers: Headers
    kind: ClassVar[str] = "message"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``default``."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def as_dict(self) -> dict[str, str]:
        """Headers as a dict; the first occurrence of a repeated name wins."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


@dataclass(frozen=True, slots=True)
class AmiEvent(AmiMessage):
    """A message with an ``Event`` header (even if it also carries ``Response``,
    as ``OriginateResponse`` does)."""

    kind: ClassVar[str] = "event"

    @property
    def name(self) -> str:
        return self.get("Event") or ""

    @classmethod
    def build(cls, event: str, headers: Iterable[tuple[str, str]] = ()) -> AmiEvent:
        return cls((("Event", event), *headers))


@dataclass(frozen=True, slots=True)
class AmiResponse(AmiMessage):
    """The reply to an action: ``Response: Success | Error | Goodbye | Follows``."""

    kind: ClassVar[str] = "response"

    @property
    def response(self) -> str:
        return self.get("Response") or ""

    @property
    def ok(self) -> bool:
        return self.response.lower() in ("success", "goodbye", "follows")

    @property
    def message(self) -> str:
        return self.get("Message") or ""

    @property
    def is_list_start(self) -> bool:
        return (self.get("EventList") or "").lower() == "start"

    @classmethod
    def build(
        cls, response: str, action_id: str | None, headers: Iterable[tuple[str, str]] = ()
    ) -> AmiResponse:
        head: list[tuple[str, str]] = [("Response", response)]
        if action_id is not None:
            head.append(("ActionID", action_id))
        return cls((*head, *headers))


@dataclass(frozen=True, slots=True)
class AmiAction(AmiMessage):
    """A request from client to server. ``name`` is empty when the peer sent no
    ``Action`` header (Asterisk answers "Missing action in request")."""

    kind: ClassVar[str] = "action"

    @property
    def name(self) -> str:
        return self.get("Action") or ""

    @classmethod
    def build(
        cls,
        action: str,
        fields: Mapping[str, str | int | None] | Iterable[tuple[str, str]] = (),
        *,
        action_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> AmiAction:
        """Build an action. ``None`` values are left out; ``variables`` become one
        ``Variable: name=value`` header each, as Originate expects."""
        head: list[tuple[str, str]] = [("Action", action)]
        if action_id is not None:
            head.append(("ActionID", action_id))
        items = fields.items() if isinstance(fields, Mapping) else fields
        for key, value in items:
            if value is not None:
                head.append((key, str(value)))
        for key, value in (variables or {}).items():
            head.append(("Variable", f"{key}={value}"))
        return cls(tuple(head))

    def with_action_id(self, action_id: str) -> AmiAction:
        rest = tuple(h for h in self.headers if h[0].lower() != "actionid")
        return AmiAction((rest[0], ("ActionID", action_id), *rest[1:]))


@dataclass(frozen=True, slots=True)
class Banner:
    """The first line Asterisk sends: ``Asterisk Call Manager/11.0.0``."""

    text: str

    PREFIX: ClassVar[str] = "Asterisk Call Manager/"

    @property
    def version(self) -> str | None:
        if self.text.startswith(self.PREFIX):
            return self.text[len(self.PREFIX) :]
        return None
