"""Errors of the CTI layer.

CtiError
+-- ProtocolError
|   +-- LocalProtocolError   we tried to send something AMI cannot carry
|   +-- RemoteProtocolError  the peer sent something we cannot accept
+-- AmiLinkError
|   +-- NotConnected         no logged-in AMI session right now
|   +-- LinkLost             the link dropped while the action was in flight;
|   |                        it was NOT re-sent (it may or may not have run)
|   +-- ActionTimeout        Asterisk did not answer in time
|   +-- AuthenticationFailed Asterisk refused the username or secret
+-- ActionFailed             Asterisk answered "Response: Error"; .message is its text
+-- CallControlError
    +-- UnknownCall          no active call with that id
    +-- InvalidRequest       a parameter is missing or malformed (names it)
"""

from __future__ import annotations

__all__ = [
    "ActionFailed",
    "ActionTimeout",
    "AmiLinkError",
    "AuthenticationFailed",
    "CallControlError",
    "CtiError",
    "InvalidRequest",
    "LinkLost",
    "LocalProtocolError",
    "NotConnected",
    "ProtocolError",
    "RemoteProtocolError",
    "UnknownCall",
    "WrongState",
]


class CtiError(Exception):
    """Base of every error raised by ``cti``."""


class ProtocolError(CtiError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class AmiLinkError(CtiError):
    pass


class NotConnected(AmiLinkError):
    pass


class LinkLost(AmiLinkError):
    pass


class ActionTimeout(AmiLinkError):
    pass


class AuthenticationFailed(AmiLinkError):
    pass


class ActionFailed(CtiError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"Asterisk refused {action}: {message}")
        self.action = action
        self.message = message


class CallControlError(CtiError):
    pass


class UnknownCall(CallControlError):
    pass


class InvalidRequest(CallControlError):
    pass


class WrongState(CallControlError):
    pass
