"""Errors of the e-mail channel.

MailError
+-- ReplyError   a reply cannot be built: the parent message is on another interaction,
                 or has no address to answer (also a ValueError)

Unknown ids raise ``store.errors.NotFoundError``; storage failures propagate as the
database or OS error (the SMTP listener answers them with ``451 4.3.0``).
"""

from __future__ import annotations

__all__ = ["MailError", "ReplyError"]


class MailError(Exception):
    """Base of the errors raised by ``crm.mail``."""


class ReplyError(MailError, ValueError):
    pass
