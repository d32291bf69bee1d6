"""The e-mail channel: parse, thread, store, receive (SMTP) and send replies.

Inbound mail arrives on ``MailListener`` (SMTP), is parsed (``parse_email``), stored
by ``MailStore.store_inbound`` onto a new or existing interaction, and only then
handed to the ``on_email`` callback (the routing service makes a task of it). Agents'
replies leave through ``MailSender.send_reply``.
"""

from crm.mail.errors import MailError, ReplyError
from crm.mail.parse import Attachment, ParsedEmail, parse_email, safe_filename
from crm.mail.repository import AttachmentMeta, EmailStatus, MailStore, StoredEmail
from crm.mail.smtp_in import MailListener, OnEmail
from crm.mail.smtp_out import MailSender, reply_subject
from crm.mail.threading import ThreadMatch, find_thread

__all__ = [
    "Attachment",
    "AttachmentMeta",
    "EmailStatus",
    "MailError",
    "MailListener",
    "MailSender",
    "MailStore",
    "OnEmail",
    "ParsedEmail",
    "ReplyError",
    "StoredEmail",
    "ThreadMatch",
    "find_thread",
    "parse_email",
    "reply_subject",
    "safe_filename",
]
