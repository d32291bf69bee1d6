"""Twilio webhook signatures: is this request really from Twilio?

Twilio signs every webhook (``X-Twilio-Signature``) with the account's auth
token over the exact URL it called plus the form fields (or, for a JSON body,
the URL carrying ``bodySHA256``). Checking it is twilio's own
``RequestValidator``; what this module adds is the URL: behind a TLS proxy the
server sees ``http://10.0.0.5:8080/...`` while Twilio signed
``https://cc.example.com/...``.

* ``public_url(request, public_url=, trust_proxy=)``: the URL Twilio called:
  ``public_url`` (configured base) + the request's path and query; else, with
  ``trust_proxy``, the scheme from ``X-Forwarded-Proto`` and the host from
  ``X-Forwarded-Host`` or ``Host``; else the request's own URL.
* ``await verified_form(request, auth_token=, public_url=, trust_proxy=)``:
  the form fields of a request whose signature verifies, else
  ``InvalidSignature`` (its ``reason`` says which check failed, never the
  token or the expected signature). An empty auth token refuses everything.

Used by ``recordings.twilio`` (recording status callbacks) and the IVR's
Twilio adapter. Only trust ``X-Forwarded-*`` (``trust_proxy``) when a proxy
you run sets them: otherwise anyone can choose the URL that gets checked.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    get_signature_algorithm,
)

__all__ = ["SIGNATURE_HEADER", "InvalidSignature", "public_url", "verified_form"]

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
SETTINGS_HEADER: Final = "X-Twilio-Webhooks-Signature-Settings"


class InvalidSignature(Exception):
    """The request is not provably from Twilio: refuse it (403) and change nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def public_url(request: web.Request, *, public_url: str = "", trust_proxy: bool = False) -> str:
    """The URL Twilio called for this request (see the module docstring)."""
    path = request.raw_path  # path and query exactly as sent
    if public_url:
        return public_url.rstrip("/") + path
    if trust_proxy:
        proto = _first(request.headers.get("X-Forwarded-Proto")) or request.scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or request.headers.get("Host", "")
        if proto in ("http", "https") and host:
            return f"{proto}://{host}{path}"
    return str(request.url)


async def verified_form(
    request: web.Request, *, auth_token: str, public_url: str = "", trust_proxy: bool = False
) -> MultiDictProxy[str]:
    """The request's form fields once its Twilio signature checks out."""
    if not auth_token:
        raise InvalidSignature("no Twilio auth token is configured")
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    form = await request.post()
    fields: MultiDict[str] = MultiDict()
    for key, value in form.items():
        if not isinstance(value, str):
            raise InvalidSignature("a file upload is not a Twilio webhook")
        fields.add(key, value)
    url = _url(request, public_url, trust_proxy)
    algorithm = get_signature_algorithm(request.headers.get(SETTINGS_HEADER))
    if not RequestValidator(auth_token).validate(url, fields, signature, algorithm):
        raise InvalidSignature("the signature does not match")
    return MultiDictProxy(fields)


def _url(request: web.Request, base: str, trust_proxy: bool) -> str:
    return public_url(request, public_url=base, trust_proxy=trust_proxy)
