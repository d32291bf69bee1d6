"""Twilio's side of voice webhooks, for tests and the demo: a signer and a caller.

``sign(auth_token, url, params)`` is the ``X-Twilio-Signature`` Twilio would
send: twiml's own ``RequestValidator.compute_signature`` over the exact URL it
calls and the form fields.

``TwilioCaller`` plays one inbound call the way Twilio drives a voice webhook
application: it POSTs the first webhook (``CallSid``, ``From``, ``To``,
``CallStatus`` ...) to ``<public base>/twilio/voice?flow=<name>``, parses the
TwiML answer (``xml.etree``) and performs its verbs in order:

* ``<Say>`` / ``<Play>`` are heard (``heard``: ``(text or URL, language)``).
* ``<Gather>``: its nested prompts are heard, then the next entry of ``keys``
  is typed: a string of keys (cut at ``numDigits``; the ``finishOnKey`` ends it
  and is not sent, as Twilio does) or ``None`` for silence (the timeout).
  The ``action`` gets ``Digits`` (left out when nothing was typed).
  No keys left: the caller hangs up.
* ``<Record>``: the next entry of ``recordings`` (seconds of speech, 0 for
  silence, ``None`` to hang up while recording) decides: the ``action`` gets
  ``RecordingUrl``, ``RecordingDuration``, ``RecordingSid`` and ``Digits``
  (``hangup`` when the caller hung up); silence skips to the next verb, as
  Twilio does.
* ``<Dial>``: ``dial_status`` (``completed``, ``busy``, ``no-answer``, ``failed``)
  goes to the ``action`` as ``DialCallStatus``.
* ``<Enqueue>``: the caller waits in the queue: the walk stops there
  (``queued``); ``leave_queue(result)`` later posts the ``action`` with
  ``QueueResult`` (``bridged``, ``hangup``) and goes on with its answer.
* ``<Redirect>``: followed. ``<Hangup>`` or the end of a document: the call ends.

Relative URLs resolve against the URL of the document, like Twilio. A call
that ends posts ``CallStatus=completed`` (with ``CallDuration``) to
``status_path`` when one is given. ``hangup_after=N``: the caller hangs up
instead of answering the Nth TwiML document (after hearing nothing of it).

Behind a proxy: ``base`` is where the requests go, ``public_base`` is the URL
Twilio thinks it calls (signed), and ``forwarded=True`` adds the
``X-Forwarded-Proto`` and ``Host`` headers a TLS proxy would.
"""

from __future__ import annotations

import itertools
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

__all__ = ["TwilioCaller", "TwilioReply", "call_sid", "find", "sign", "verbs"]

ACCOUNT_SID = "AC" + "5" * 32


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a POST of ``params`` to ``url``."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


def call_sid() -> str:
    return "CA" + secrets.token_hex(16)


@dataclass
class TwilioReply:
    """One webhook answered: the URL called, the HTTP status, the body, the TwiML."""

    url: str
    status: int
    body: str
    xml: ET.Element | None


@dataclass
class TwilioCaller:
    base: str
    auth_token: str
    flow: str
    caller: str = "+14155550100"
    dialed: str = "+14155550199"
    sid: str = field(default_factory=call_sid)
    keys: Iterable[str | None] = ()
    recordings: Iterable[float | None] = ()
    dial_status: str = "completed"
    public_base: str | None = None
    forwarded: bool = False
    status_path: str | None = "/twilio/status"
    hangup_after: int | None = None
    voice_path: str = "/twilio/voice"
    replies: list[TwilioReply] = field(default_factory=list)
    heard: list[tuple[str, str]] = field(default_factory=list)
    queued: str | None = None
    ended: bool = False
    _queue_action: str | None = None
    _documents: int = 0

    def __post_init__(self) -> None:
        self._keys: deque[str | None] = deque(self.keys)
        self._recordings: deque[float | None] = deque(self.recordings)
        self._rec = itertools.count(1)

    # -- the wire --------------------------------------------------------------

    def params(self, **extra: str) -> dict[str, str]:
        fields = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "CallStatus": "in-progress",
            "Called": self.dialed,
            "Caller": self.caller,
            "Direction": "inbound",
            "From": self.caller,
            "To": self.dialed,
        }
        fields.update(extra)
        return fields

    def _public(self, url: str) -> str:
        """The URL Twilio would sign for a request sent to ``url``."""
        if self.public_base is None:
            return url
        parts = urlsplit(url)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.public_base.rstrip("/") + tail

    async def post(
        self, http: aiohttp.ClientSession, url: str, fields: Mapping[str, str]
    ) -> TwilioReply:
        """POST ``fields`` to ``url`` (a public URL) signed as Twilio would."""
        public = url
        target = url
        if self.public_base is not None:
            parts = urlsplit(url)
            target = self.base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"X-Twilio-Signature": sign(self.auth_token, public, fields)}
        if self.forwarded and self.public_base is not None:
            public_parts = urlsplit(self.public_base)
            headers["X-Forwarded-Proto"] = public_parts.scheme
            headers["Host"] = public_parts.netloc
        async with http.post(target, data=dict(fields), headers=headers) as resp:
            body = await resp.text()
            document = None
            if resp.status == 200 and resp.content_type in ("application/xml", "text/xml"):
                document = ET.fromstring(body)
            reply = TwilioReply(url=public, status=resp.status, body=body, xml=document)
        self.replies.append(reply)
        return reply

    # -- the call --------------------------------------------------------------

    @property
    def first_url(self) -> str:
        base = self.public_base if self.public_base is not None else self.base
        return f"{base.rstrip('/')}{self.voice_path}?flow={self.flow}"

    async def run(self, http: aiohttp.ClientSession) -> TwilioCaller:
        """Call in and walk the TwiML until the call ends or waits in a queue."""
        reply = await self.post(http, self.first_url, self.params())
        await self._follow(http, reply)
        return self

    async def leave_queue(self, http: aiohttp.ClientSession, result: str = "bridged") -> None:
        """The caller leaves the Twilio queue (``QueueResult``)."""
        assert self._queue_action is not None, "the caller is not in a queue"
        action, self._queue_action, self.queued = self._queue_action, None, None
        reply = await self.post(http, action, self.params(QueueResult=result, QueueTime="12"))
        if result == "hangup":
            await self._end(http)
            return
        await self._follow(http, reply)

    async def hang_up(self, http: aiohttp.ClientSession) -> None:
        await self._end(http)

    async def _end(self, http: aiohttp.ClientSession, duration: int = 42) -> None:
        if self.ended:
            return
        self.ended = True
        if self.status_path is not None:
            base = self.public_base if self.public_base is not None else self.base
            url = base.rstrip("/") + self.status_path
            fields = self.params(CallStatus="completed", CallDuration=str(duration))
            await self.post(http, url, fields)

    async def _follow(self, http: aiohttp.ClientSession, reply: TwilioReply) -> None:
        while True:
            if reply.xml is None:
                await self._end(http)
                return
            self._documents += 1
            if self.hangup_after is not None and self._documents >= self.hangup_after:
                await self._end(http)
                return
            next_reply = await self._perform(http, reply)
            if next_reply is None:
                return
            reply = next_reply

    async def _perform(self, http: aiohttp.ClientSession, reply: TwilioReply) -> TwilioReply | None:
        assert reply.xml is not None
        for verb in reply.xml:
            tag = verb.tag
            if tag in ("Say", "Play"):
                self._hear(verb)
            elif tag == "Pause":
                continue
            elif tag == "Gather":
                for prompt in verb:
                    self._hear(prompt)
                if not self._keys:
                    await self._end(http)
                    return None
                typed = self._type(verb, self._keys.popleft())
                if typed is None and verb.get("actionOnEmptyResult") != "true":
                    continue
                fields = self.params(**({"Digits": typed} if typed else {}))
                return await self.post(http, self._url(reply, verb.get("action")), fields)
            elif tag == "Record":
                seconds = self._recordings.popleft() if self._recordings else None
                if seconds is None:
                    return await self._recorded(http, reply, verb, 3, hung_up=True)
                if seconds <= 0:
                    continue  # silence: Twilio goes on with the next verb
                return await self._recorded(http, reply, verb, int(seconds), hung_up=False)
            elif tag == "Dial":
                fields = self.params(DialCallStatus=self.dial_status, DialCallDuration="30")
                return await self.post(http, self._url(reply, verb.get("action")), fields)
            elif tag == "Enqueue":
                self.queued = (verb.text or "").strip()
                self._queue_action = self._url(reply, verb.get("action"))
                return None
            elif tag == "Redirect":
                return await self.post(http, self._url(reply, verb.text), self.params())
            elif tag == "Hangup":
                await self._end(http)
                return None
        await self._end(http)
        return None

    async def _recorded(
        self,
        http: aiohttp.ClientSession,
        reply: TwilioReply,
        verb: ET.Element,
        seconds: int,
        *,
        hung_up: bool,
    ) -> TwilioReply | None:
        sid = f"RE{next(self._rec):032x}"
        fields = self.params(
            RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
            RecordingDuration=str(seconds),
            RecordingSid=sid,
            Digits="hangup" if hung_up else (verb.get("finishOnKey") or "#")[:1],
        )
        if hung_up:
            fields["CallStatus"] = "completed"
        answer = await self.post(http, self._url(reply, verb.get("action")), fields)
        if hung_up:
            await self._end(http)
            return None
        return answer

    def _hear(self, verb: ET.Element) -> None:
        self.heard.append(((verb.text or "").strip(), verb.get("language", "")))

    @staticmethod
    def _type(verb: ET.Element, keys: str | None) -> str | None:
        if keys is None:
            return None
        finish = verb.get("finishOnKey", "#")
        limit = int(verb.get("numDigits", "0") or 0)
        typed = ""
        for key in keys:
            if finish and key == finish:
                break
            typed += key
            if limit and len(typed) >= limit:
                break
        return typed or None

    @staticmethod
    def _url(reply: TwilioReply, target: str | None) -> str:
        return urljoin(reply.url, target or "")

    def said(self) -> list[str]:
        return [text for text, _ in self.heard]


def verbs(document: ET.Element) -> list[str]:
    return [child.tag for child in document]


def find(document: ET.Element, tag: str) -> ET.Element:
    found = document.find(tag)
    assert found is not None, f"no <{tag}> in {ET.tostring(document, encoding='unicode')}"
    return found
