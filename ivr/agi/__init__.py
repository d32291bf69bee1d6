"""FastAGI: a sans-I/O codec (``codec``) and an asyncio server (``server``)."""

from ivr.agi.codec import (
    CLOSED,
    NEED_DATA,
    AgiReply,
    AgiRequest,
    AgiSession,
    HangupNotice,
)
from ivr.agi.errors import (
    AgiCommandError,
    AgiCommandFailed,
    AgiError,
    AgiHangup,
    AgiTimeout,
    LocalProtocolError,
    RemoteProtocolError,
)
from ivr.agi.server import AgiChannel, AgiHandler, AgiServer, AgiServerStats

__all__ = [
    "CLOSED",
    "NEED_DATA",
    "AgiChannel",
    "AgiCommandError",
    "AgiCommandFailed",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiReply",
    "AgiRequest",
    "AgiServer",
    "AgiServerStats",
    "AgiSession",
    "AgiTimeout",
    "HangupNotice",
    "LocalProtocolError",
    "RemoteProtocolError",
]
