from __future__ import annotations

from dataclasses import dataclass

from crm.mail.threading import ThreadMatch, candidate_ids, find_thread


@dataclass(frozen=True)
class Mail:
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


KNOWN = {"<a@x>": 1, "<b@x>": 2, "<c@x>": 3}


def test_in_reply_to_wins_over_references() -> None:
    mail = Mail(in_reply_to="<a@x>", references=("<b@x>", "<c@x>"))

    assert find_thread(mail, KNOWN) == ThreadMatch(1, "in-reply-to", "<a@x>")


def test_references_are_tried_newest_first() -> None:
    mail = Mail(references=("<a@x>", "<b@x>", "<unknown@y>"))

    assert find_thread(mail, KNOWN) == ThreadMatch(2, "references", "<b@x>")


def test_unknown_in_reply_to_falls_back_to_references() -> None:
    mail = Mail(in_reply_to="<unknown@y>", references=("<c@x>",))

    assert find_thread(mail, KNOWN) == ThreadMatch(3, "references", "<c@x>")


def test_nothing_known_means_a_new_interaction() -> None:
    assert find_thread(Mail(in_reply_to="<u@y>", references=("<v@y>",)), KNOWN) is None
    assert find_thread(Mail(), KNOWN) is None


def test_candidates_are_listed_most_decisive_first_without_repeats() -> None:
    mail = Mail(in_reply_to="<c@x>", references=("<a@x>", "<b@x>", "<c@x>"))

    assert candidate_ids(mail) == ("<c@x>", "<b@x>", "<a@x>")
