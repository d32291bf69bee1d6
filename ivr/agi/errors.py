"""Errors of the FastAGI layer.

AgiError
+-- ProtocolError
|   +-- LocalProtocolError   we tried to send something AGI cannot carry (CR/LF in an
|   |                        argument, a line Asterisk would cut, a second command in flight)
|   +-- RemoteProtocolError  the peer sent something that is not FastAGI (garbage,
|                            an oversized agi_* block or reply, a reply nobody asked for)
+-- AgiHangup                the caller hung up: Asterisk sent its HANGUP line, answered
|                            511, or closed the connection; ``.reply`` is the reply to the
|                            command that noticed it, if one came
+-- AgiCommandError          Asterisk refused the command (510 unknown, 520 usage, ...)
|   +-- AgiCommandFailed     Asterisk ran it and it failed on a live channel
|                            (``200 result=-1``: a missing sound file; EXEC ``-2``: no
|                            such application)
+-- AgiTimeout               no reply within the command's timeout; the connection is
                             closed (a late reply would be taken for the next one's)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.agi.codec import AgiReply

__all__ = [
    "AgiCommandError",
    "AgiCommandFailed",
    "AgiError",
    "AgiHangup",
    "AgiTimeout",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]


class AgiError(Exception):
    """Base of every error raised by ``ivr.agi``."""


class ProtocolError(AgiError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class AgiHangup(AgiError):
    def __init__(self, message: str = "the caller hung up", reply: AgiReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AgiCommandError(AgiError):
    def __init__(self, command: str, reply: AgiReply) -> None:
        super().__init__(f"{command}: Asterisk answered {reply.text!r}")
        self.command = command
        self.reply = reply


class AgiCommandFailed(AgiCommandError):
    pass


class AgiTimeout(AgiError, TimeoutError):
    pass
