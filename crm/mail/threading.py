"""Which interaction an email belongs to, from its threading headers. Pure.

The parent named by In-Reply-To wins; then References from newest (last) to oldest.
The first id we know decides. An email naming no known message starts a new
interaction.

There is deliberately NO fallback on the subject: "Re: Invoice" or "Question" from
the same sender are often different matters, ticket numbers in subjects are
spoofable and client-specific, and a wrong merge (someone's mail shown inside
another customer's thread) is worse than a split thread, which an agent can see and
link by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["ThreadMatch", "Threadable", "candidate_ids", "find_thread"]


class Threadable(Protocol):
    @property
    def in_reply_to(self) -> str | None: ...

    @property
    def references(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ThreadMatch:
    interaction_id: int
    via: Literal["in-reply-to", "references"]
    message_id: str
    """The known message that decided it."""


def candidate_ids(email: Threadable) -> tuple[str, ...]:
    """The ids to look up, most decisive first (In-Reply-To, then References newest first)."""
    ordered: list[str] = []
    if email.in_reply_to:
        ordered.append(email.in_reply_to)
    ordered.extend(reversed(email.references))
    return tuple(dict.fromkeys(ordered))


def find_thread(email: Threadable, known: Mapping[str, int]) -> ThreadMatch | None:
    """The interaction ``email`` follows up, given ``known`` (Message-ID -> interaction id,
    at least for ``candidate_ids(email)``); None means a new interaction."""
    if email.in_reply_to and email.in_reply_to in known:
        return ThreadMatch(known[email.in_reply_to], "in-reply-to", email.in_reply_to)
    for message_id in reversed(email.references):
        if message_id in known:
            return ThreadMatch(known[message_id], "references", message_id)
    return None
