from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.mail.parse import (
    ParsedEmail,
    extract_message_ids,
    normalize_message_id,
    parse_email,
    safe_filename,
)


def _ids() -> str:
    return "<fixed@callwright.invalid>"


def _message(**headers: str) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hello.")
    return message


def test_headers_addresses_and_date_are_read() -> None:
    message = _message(
        From='"Müller, Jörg" <Joerg@Example.com>',
        To="support@callwright.example, Sales <sales@callwright.example>",
        Cc="boss@example.com",
        Reply_To="other@example.com",
        Subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Köln",
        Date="Sat, 01 Mar 2025 10:00:00 +0100",
        Message_ID="<abc@host.example>",
        In_Reply_To="<parent@host.example> (Your message of ...)",
        References="<root@x> <parent@host.example>",
    )

    parsed = parse_email(message.as_bytes())

    assert parsed.message_id == "<abc@host.example>"
    assert not parsed.message_id_generated
    assert parsed.in_reply_to == "<parent@host.example>"
    assert parsed.references == ("<root@x>", "<parent@host.example>")
    assert (parsed.from_name, parsed.from_addr) == ("Müller, Jörg", "Joerg@Example.com")
    assert parsed.to == ("support@callwright.example", "sales@callwright.example")
    assert parsed.cc == ("boss@example.com",)
    assert parsed.reply_to == ("other@example.com",)
    assert parsed.subject == "Grüße aus Köln"
    assert parsed.date == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert parsed.text_body == "Hello.\n"
    assert parsed.html_body is None
    assert parsed.problem is None
    assert parsed.defects == ()


def test_missing_message_id_is_generated_and_noted() -> None:
    parsed = parse_email(b"From: a@b.c\r\n\r\nhi\r\n", generate_id=_ids)

    assert parsed.message_id == "<fixed@callwright.invalid>"
    assert parsed.message_id_generated
    assert parsed.problem == "no usable Message-ID; generated <fixed@callwright.invalid>"


def test_html_alternative_and_nested_attachments_are_separated() -> None:
    message = _message(From="a@b.c", Message_ID="<m@x>")
    message.add_alternative("<p>Hello <script>x()</script></p>", subtype="html")
    message.add_attachment(b"\x89PNG\r\n", maintype="image", subtype="png", filename="shot.png")
    forwarded = _message(From="old@b.c", Subject="Original", Message_ID="<old@x>")
    message.add_attachment(forwarded)

    parsed = parse_email(message.as_bytes())

    assert parsed.text_body == "Hello.\n"
    assert parsed.html_body == "<p>Hello <script>x()</script></p>\n"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("shot.png", "image/png"),
        ("part-4.eml", "message/rfc822"),
    ]
    assert parsed.attachments[0].data == b"\x89PNG\r\n"
    assert parse_email(parsed.attachments[1].data).subject == "Original"


def test_non_text_single_part_message_becomes_an_attachment() -> None:
    raw = (
        b"From: scanner@example.com\r\nMessage-ID: <scan@x>\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQ=\r\n"
    )

    parsed = parse_email(raw)

    assert parsed.text_body is None
    assert [(a.filename, a.data) for a in parsed.attachments] == [("part-1.pdf", b"%PDF-1.4")]


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (b"Content-Type: multipart/mixed\r\n\r\nbody without boundary", "NoBoundaryInMultipart"),
        (
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: text/plain\r\n\r\nunterminated",
            "CloseBoundaryNotFound",
        ),
        (
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
            "InvalidBase64",
        ),
        (b"not a header line at all\r\n\r\nbody", "MissingHeaderBodySeparator"),
    ],
)
def test_malformed_mime_is_parsed_as_far_as_possible_with_its_defects(
    raw: bytes, defect: str
) -> None:
    parsed = parse_email(raw)

    assert parsed.problem is not None
    assert any(d.startswith(defect) for d in parsed.defects)
    assert defect in parsed.problem


def test_unknown_charset_falls_back_to_utf8_with_replacement() -> None:
    raw = (
        b"From: a@b.c\r\nMessage-ID: <c@x>\r\n"
        b"Content-Type: text/plain; charset=x-klingon\r\n\r\ncaf\xc3\xa9 \xff\r\n"
    )

    parsed = parse_email(raw)

    assert parsed.text_body == "café \ufffd\n"
    assert parsed.problem is not None and "undecodable" in parsed.problem


def test_nul_characters_and_raw_8bit_headers_become_storable_text() -> None:
    raw = b"From: a@b.c\r\nSubject: caf\xe9 \x00 ok\r\nMessage-ID: <n@x>\r\n\r\nbody\x00end\r\n"

    parsed = parse_email(raw)

    assert parsed.subject == "caf\ufffd ok"
    assert parsed.text_body == "bodyend\n"


def test_overlong_message_id_is_replaced() -> None:
    raw = b"From: a@b.c\r\nMessage-ID: <" + b"x" * 300 + b"@y>\r\n\r\nhi"

    parsed = parse_email(raw, generate_id=_ids)

    assert parsed.message_id == "<fixed@callwright.invalid>"
    assert parsed.message_id_generated


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\evil.exe", "evil.exe"),
        ("C:evil.exe", "C_evil.exe"),
        ("..", "attachment.pdf"),
        (".bashrc", "bashrc"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a\x00b\nc\x1b.txt", "abc.txt"),
        ("NUL.txt", "_NUL.txt"),
        ("trailing. . ", "trailing"),
        (None, "attachment.pdf"),
        ("x" * 300 + ".docx", "x" * 195 + ".docx"),
    ],
)
def test_safe_filename_never_yields_a_path(name: str | None, expected: str) -> None:
    assert safe_filename(name, "application/pdf") == expected


def test_message_ids_are_normalised() -> None:
    assert normalize_message_id("  <a@b>  ") == "<a@b>"
    assert normalize_message_id("a@b") == "<a@b>"
    assert normalize_message_id("no id here") is None
    assert normalize_message_id(None) is None
    assert extract_message_ids("<a@b>\r\n <c@d>,<a@b> <e@f>") == ("<a@b>", "<c@d>", "<e@f>")
    assert extract_message_ids("a@b c@d") == ("<a@b>", "<c@d>")


def _storable(value: str) -> bool:
    value.encode("utf-8")  # raises on lone surrogates
    return "\x00" not in value


def _check_storable(parsed: ParsedEmail) -> None:
    for text in (
        parsed.message_id,
        parsed.in_reply_to or "",
        *parsed.references,
        parsed.from_addr or "",
        parsed.from_name or "",
        *parsed.to,
        *parsed.cc,
        *parsed.reply_to,
        parsed.subject,
        parsed.text_body or "",
        parsed.html_body or "",
        parsed.problem or "",
        *(a.filename for a in parsed.attachments),
    ):
        assert _storable(text)
    for attachment in parsed.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename


_HEADER_LINES = st.sampled_from(
    [
        b"From: ",
        b"To: ",
        b"Subject: ",
        b"Message-ID: ",
        b"In-Reply-To: ",
        b"References: ",
        b"Date: ",
        b"Content-Type: multipart/mixed; boundary=",
        b"Content-Type: text/plain; charset=",
        b"Content-Transfer-Encoding: ",
        b"Content-Disposition: attachment; filename*=",
        b"--",
        b"\r\n",
        b"=?utf-8?b?",
        b"?=",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_HEADER_LINES, st.binary(max_size=40)), max_size=40))
def test_garbage_never_raises_and_yields_storable_text(chunks: list[bytes]) -> None:
    parsed = parse_email(b"".join(chunks))

    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    _check_storable(parsed)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _check_storable(parse_email(raw))
