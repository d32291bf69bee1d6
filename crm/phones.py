"""Phone number normalisation, the same on the way into the store and on lookup.

``normalize_phone`` turns what a user typed or what Asterisk put in CallerIDNum into
the key stored in ``customer_phones.number_e164``:

- E.164 (``+15550100001``) when phonenumbers can parse it as a number of plausible
  length (national numbers are read in ``default_region``);
- otherwise the digits alone, with a leading ``+`` kept (short internal numbers such as
  ``1001``, or local-only ``555-1234`` -> ``5551234``, or anything read with no region);
- ``None`` for empty input or something that is not a number (``anonymous``, ``*97``,
  ``abc123``).

Both sides go through the same function, so a caller ID ``5551234`` finds a customer
stored as ``555-1234``.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

__all__ = ["normalize_phone"]

_MAX_INPUT = 64
_MAX_DIGITS = 20
_SEPARATORS = frozenset(" \t-.()/")
_ASCII_DIGITS = frozenset("0123456789")


def normalize_phone(raw: str, default_region: str | None = "US") -> str | None:
    if not raw:
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_INPUT:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        pass
    else:
        if phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE:
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return _digits_only(text)


def _digits_only(text: str) -> str | None:
    plus = text.startswith("+")
    body = text[1:] if plus else text
    digits = []
    for char in body:
        if char in _ASCII_DIGITS:
            digits.append(char)
        elif char not in _SEPARATORS:
            return None
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    return ("+" if plus else "") + "".join(digits)
