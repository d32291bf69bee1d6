"""RFC 5322 / MIME bytes to a ``ParsedEmail`` value. Pure: no clock, no I/O.

``parse_email`` never raises on garbage. Whatever cannot be parsed is left out and
said so: ``defects`` lists the stdlib parser's own defects (``email.errors``) and
``problem`` is a one-line, human-readable summary (None for a clean message). The
raw bytes are the caller's to keep (``MailStore`` stores them next to the row).

Every string in the result is safe to store: no NUL characters, no lone surrogates
(8-bit bytes in headers come back as U+FFFD), so PostgreSQL and SQLite both accept it.
The HTML body is data: nothing here (or anywhere in ``crm.mail``) renders it.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Final

__all__ = [
    "GENERATED_ID_DOMAIN",
    "MAX_MESSAGE_ID",
    "Attachment",
    "ParsedEmail",
    "clean_text",
    "extract_message_ids",
    "normalize_message_id",
    "parse_email",
    "safe_filename",
]

GENERATED_ID_DOMAIN: Final = "callwright.invalid"
MAX_MESSAGE_ID: Final = 250
"""Longer Message-IDs are treated as missing (they are stored in a unique, indexed column)."""
MAX_FILENAME: Final = 200
_MAX_DEPTH: Final = 40
_MAX_REFERENCES: Final = 100

_MSGID = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID = re.compile(r"[^<>\s@]+@[^<>\s@]+")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)


@dataclass(frozen=True)
class Attachment:
    filename: str
    """Sanitised: a bare name (no directory parts, no control or format characters)."""
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    """``<local@domain>``; generated (``<hex@callwright.invalid>``) when missing or unusable."""
    message_id_generated: bool
    in_reply_to: str | None
    references: tuple[str, ...]
    """Oldest first, as in the header (the parent is last)."""
    from_addr: str | None
    from_name: str | None
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    """The Date header as an aware UTC datetime (None if missing or unparseable)."""
    text_body: str | None
    html_body: str | None
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...] = ()
    problem: str | None = None


def clean_text(value: str) -> str:
    """``value`` without NUL characters and with lone surrogates made U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "")


def _one_line(value: str) -> str:
    """Unfolded, whitespace collapsed, control characters removed."""
    text = " ".join(clean_text(value).split())
    if any(unicodedata.category(c) == "Cc" for c in text):
        text = "".join(c for c in text if unicodedata.category(c) != "Cc")
    return text


def normalize_message_id(value: str | None) -> str | None:
    """The first ``<id>`` in ``value`` (a bare ``a@b`` is accepted and bracketed);
    None if there is none or it is longer than ``MAX_MESSAGE_ID``."""
    if not value:
        return None
    value = clean_text(value)
    match = _MSGID.search(value)
    if match is not None:
        found = f"<{match.group(1)}>"
    else:
        bare = _BARE_MSGID.search(value)
        if bare is None:
            return None
        found = f"<{bare.group(0)}>"
    return found if len(found) <= MAX_MESSAGE_ID else None


def extract_message_ids(value: str | None) -> tuple[str, ...]:
    """Every usable ``<id>`` in a References-like header, in order, without repeats."""
    if not value:
        return ()
    value = clean_text(value)
    ids = [f"<{m.group(1)}>" for m in _MSGID.finditer(value)]
    if not ids:
        ids = [f"<{m.group(0)}>" for m in _BARE_MSGID.finditer(value)]
    unique = [i for i in dict.fromkeys(ids) if len(i) <= MAX_MESSAGE_ID]
    return tuple(unique[-_MAX_REFERENCES:])


def safe_filename(name: str | None, content_type: str = "application/octet-stream") -> str:
    """A display name that cannot be used as a path: the last path component, without
    control/format characters (bidi overrides included), leading dots or trailing dots
    and spaces, at most ``MAX_FILENAME`` characters (the extension kept). Falls back to
    ``attachment<ext>`` guessed from the content type."""
    cleaned = ""
    if name:
        text = unicodedata.normalize("NFC", clean_text(name))
        text = re.split(r"[/\\]", text)[-1]
        text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
        text = " ".join(text.split())
        cleaned = text.lstrip(". ").rstrip(". ")
        if ":" in cleaned:  # drive letters, NTFS alternate streams
            cleaned = cleaned.replace(":", "_")
    if not cleaned:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        cleaned = f"attachment{extension}"
    if _WINDOWS_RESERVED.fullmatch(cleaned):
        cleaned = f"_{cleaned}"
    if len(cleaned) > MAX_FILENAME:
        stem, dot, extension = cleaned.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            cleaned = stem[: MAX_FILENAME - len(extension) - 1] + "." + extension
        else:
            cleaned = cleaned[:MAX_FILENAME]
    return cleaned


class _Collector:
    """Defects and notes gathered while parsing."""

    def __init__(self) -> None:
        self.defects: dict[str, None] = {}
        self.notes: dict[str, None] = {}

    def defect_list(self, defects: Iterable[Any]) -> None:
        for defect in defects:
            text = _one_line(str(defect))
            name = type(defect).__name__
            self.defects[f"{name}: {text}" if text else name] = None

    def note(self, text: str) -> None:
        self.notes[text] = None


def _header(msg: Message, name: str, seen: _Collector) -> str | None:
    """The header's unfolded text, or its raw source if the policy cannot parse it."""
    try:
        value = msg.get(name)
    except Exception as error:
        seen.note(f"unparseable {name} header ({type(error).__name__})")
        for key, raw in msg.raw_items():
            if key.lower() == name.lower():
                return _one_line(str(raw))
        return None
    if value is None:
        return None
    seen.defect_list(getattr(value, "defects", ()))
    return _one_line(str(value))


def _addresses(msg: Message, name: str, seen: _Collector) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs of an address header, best effort."""
    pairs: list[tuple[str, str]] = []
    try:
        value = msg.get(name)
        parsed = getattr(value, "addresses", None)
        if parsed is not None:
            seen.defect_list(getattr(value, "defects", ()))
            pairs = [(a.display_name, a.addr_spec) for a in parsed]
    except Exception as error:
        seen.note(f"unparseable {name} header ({type(error).__name__})")
    if not pairs:
        raw = None
        for key, item in msg.raw_items():
            if key.lower() == name.lower():
                raw = clean_text(str(item))
                break
        if raw:
            pairs = [(display, addr) for display, addr in getaddresses([raw]) if addr]
    result: list[tuple[str, str]] = []
    for display, addr in pairs:
        addr = _one_line(addr).strip("<>")
        if "@" in addr and len(addr) <= 320 and " " not in addr:
            result.append((_one_line(display), addr))
    return result


def _date(msg: Message, seen: _Collector) -> datetime | None:
    raw = _header(msg, "Date", seen)
    if raw is None:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        seen.note("unparseable Date header")
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # "-0000": the zone is unknown; take UTC
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        seen.note("unparseable Date header")
        return None


def _text_content(part: Message, seen: _Collector) -> str:
    """The part's text, line endings made ``\\n``."""
    return _decoded_text(part, seen).replace("\r\n", "\n")


def _decoded_text(part: Message, seen: _Collector) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return clean_text(content)
    except Exception as error:
        seen.note(f"undecodable {part.get_content_type()} body ({type(error).__name__})")
    payload = _payload_bytes(part, seen)
    charset = _charset(part)
    try:
        return clean_text(payload.decode(charset, "replace"))
    except LookupError:
        return clean_text(payload.decode("utf-8", "replace"))


def _charset(part: Message) -> str:
    try:
        return str(part.get_content_charset() or "utf-8")
    except Exception:
        return "utf-8"


def _payload_bytes(part: Message, seen: _Collector) -> bytes:
    if part.get_content_maintype() == "message" and part.is_multipart():
        try:
            inner = part.get_payload(0)
            assert isinstance(inner, Message)
            return inner.as_bytes()
        except Exception as error:
            seen.note(f"unreadable attached message ({type(error).__name__})")
            try:
                return part.as_bytes()
            except Exception:
                return b""
    try:
        payload = part.get_payload(decode=True)
    except Exception as error:
        seen.note(f"undecodable {part.get_content_type()} part ({type(error).__name__})")
        return b""
    if isinstance(payload, bytes):
        return payload
    return b""


def _leaves(part: Message, seen: _Collector, depth: int = 0) -> Iterator[Message]:
    """Every non-multipart part, depth first (an attached message is one leaf)."""
    seen.defect_list(part.defects)
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        if depth >= _MAX_DEPTH:
            seen.note(f"MIME nesting deeper than {_MAX_DEPTH} levels; the rest is not parsed")
            return
        payload = part.get_payload()
        assert isinstance(payload, list)
        for sub in payload:
            if isinstance(sub, Message):
                yield from _leaves(sub, seen, depth + 1)
        return
    yield part


def _body_part(msg: EmailMessage, kind: str, seen: _Collector) -> Message | None:
    try:
        return msg.get_body(preferencelist=(kind,))
    except Exception as error:
        seen.note(f"no readable {kind} body ({type(error).__name__})")
        return None


def _content_type(part: Message) -> str:
    try:
        value = part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"
    if len(value) > 127 or not _CONTENT_TYPE.fullmatch(value):
        return "application/octet-stream"
    return value


def _filename(part: Message, seen: _Collector) -> str | None:
    try:
        name = part.get_filename()
    except Exception as error:
        seen.note(f"unreadable attachment filename ({type(error).__name__})")
        return None
    return str(name) if name else None


def _is_inline_text(part: Message) -> bool:
    """Inline text, or a multipart whose parts could not be split (no boundary)."""
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    return part.get_content_maintype() in ("text", "multipart") and disposition != "attachment"


def _build(raw: bytes, generate_id: Callable[[], str]) -> ParsedEmail:
    seen = _Collector()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)

    message_id = normalize_message_id(_header(msg, "Message-ID", seen))
    generated = message_id is None
    if message_id is None:
        message_id = generate_id()
        seen.note(f"no usable Message-ID; generated {message_id}")
    in_reply_to = normalize_message_id(_header(msg, "In-Reply-To", seen))
    references = extract_message_ids(_header(msg, "References", seen))

    senders = _addresses(msg, "From", seen)
    from_name, from_addr = senders[0] if senders else (None, None)
    if from_addr is None:
        seen.note("no usable From address")

    plain = _body_part(msg, "plain", seen)
    html = _body_part(msg, "html", seen)
    text_body = _text_content(plain, seen) if plain is not None else None
    html_body = _text_content(html, seen) if html is not None else None

    attachments: list[Attachment] = []
    for index, part in enumerate(_leaves(msg, seen), start=1):
        if part is plain or part is html:
            continue
        content_type = _content_type(part)
        name = _filename(part, seen)
        if name is None and text_body is None and html_body is None and _is_inline_text(part):
            # No body was recognised (a broken multipart, say): show this text as the body.
            text_body = _text_content(part, seen)
            continue
        data = _payload_bytes(part, seen)
        if name is None and not data:
            continue  # an empty unnamed part (a multipart preamble, a stray boundary)
        if name is None:
            extension = ".eml" if content_type == "message/rfc822" else None
            extension = extension or mimetypes.guess_extension(content_type) or ".bin"
            name = f"part-{index}{extension}"
        attachments.append(Attachment(safe_filename(name, content_type), content_type, data))

    reply_to = tuple(addr for _, addr in _addresses(msg, "Reply-To", seen))
    to = tuple(addr for _, addr in _addresses(msg, "To", seen))
    cc = tuple(addr for _, addr in _addresses(msg, "Cc", seen))
    subject = _header(msg, "Subject", seen) or ""
    date = _date(msg, seen)

    problems = list(seen.notes)
    if seen.defects:
        problems.append(f"MIME defects: {'; '.join(seen.defects)}")
    return ParsedEmail(
        message_id=message_id,
        message_id_generated=generated,
        in_reply_to=in_reply_to,
        references=references,
        from_addr=from_addr,
        from_name=from_name or None,
        reply_to=reply_to,
        to=to,
        cc=cc,
        subject=subject,
        date=date,
        text_body=text_body,
        html_body=html_body,
        attachments=tuple(attachments),
        defects=tuple(seen.defects),
        problem="; ".join(problems) or None,
    )


def _generated_id() -> str:
    return f"<{uuid.uuid4().hex}@{GENERATED_ID_DOMAIN}>"


def parse_email(raw: bytes, *, generate_id: Callable[[], str] = _generated_id) -> ParsedEmail:
    """Parse one RFC 5322 message. Never raises: on a message the parser cannot walk at
    all, the result has only a generated Message-ID, the ``problem`` and, as text body,
    the raw bytes decoded as UTF-8 with replacement characters."""
    try:
        return _build(raw, generate_id)
    except Exception as error:  # the last net: the stdlib has raised on odd input before
        message_id = generate_id()
        return ParsedEmail(
            message_id=message_id,
            message_id_generated=True,
            in_reply_to=None,
            references=(),
            from_addr=None,
            from_name=None,
            reply_to=(),
            to=(),
            cc=(),
            subject="",
            date=None,
            text_body=clean_text(raw.decode("utf-8", "replace")),
            html_body=None,
            attachments=(),
            defects=(),
            problem=f"unparseable message ({type(error).__name__}: {_one_line(str(error))}); "
            f"generated Message-ID {message_id}; the raw bytes are kept",
        )
