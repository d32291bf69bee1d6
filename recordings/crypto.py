"""Encryption at rest: a chunked AES-256-GCM file format (``cryptography``'s AESGCM).

Why a format of our own: AES-GCM authenticates a whole message, and a browser seeking
in a one-hour recording must not make us decrypt the hour. The file is cut into
fixed-size chunks, each sealed on its own, so a Range read opens only the chunks it
covers. The layout (version 1)::

    header  magic b"CWREC" | version u8 | chunk_size u32 | plaintext_size u64 | salt 16B
    chunk i ciphertext of plaintext[i*chunk_size : (i+1)*chunk_size] + 16-byte tag

All integers big-endian. There is always at least one chunk (an empty file has one
empty chunk), so even an empty object is authenticated.

Keys and nonces: each file gets a random 16-byte salt; its file key is
HKDF-SHA256(master key, salt, info = "callwright-recording-v1" + object id). Since the
key is unique per file, the nonce can be the chunk index (never reused under that
key). Each chunk's associated data is the header, the object id, the chunk index and a
"last chunk" flag: chunks cannot be reordered, dropped, truncated or swapped between
files, and a changed header (size, chunk size) fails authentication.

The master key is 32 bytes, given as 64 hex digits or base64 (``parse_key``); it is
never logged, and errors never show it.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "CHUNK_SIZE",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "TAG_SIZE",
    "DecryptionError",
    "EncryptedHeader",
    "decrypt_range",
    "encrypt_stream",
    "encrypted_size",
    "is_encrypted",
    "parse_key",
    "read_header",
]

MAGIC: Final = b"CWREC"
FORMAT_VERSION: Final = 1
CHUNK_SIZE: Final = 64 * 1024
TAG_SIZE: Final = 16
SALT_SIZE: Final = 16
KEY_SIZE: Final = 32
_HEADER: Final = struct.Struct(">5sBIQ16s")
HEADER_SIZE: Final = _HEADER.size
_INFO: Final = b"callwright-recording-v1"


class DecryptionError(Exception):
    """The object is not a valid encrypted recording, was altered, belongs to another
    id, or the key is wrong. The message says which check failed, never the key."""


@dataclass(frozen=True)
class EncryptedHeader:
    version: int
    chunk_size: int
    plaintext_size: int
    salt: bytes
    raw: bytes

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.plaintext_size // self.chunk_size))


def parse_key(text: str) -> bytes:
    """A 32-byte key from 64 hex digits or base64 text; ValueError (not showing the text)."""
    cleaned = text.strip()
    if len(cleaned) == 2 * KEY_SIZE:
        try:
            return bytes.fromhex(cleaned)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise ValueError(
            f"expected a {KEY_SIZE}-byte key as 64 hex digits or base64 "
            f"(e.g. `openssl rand -hex 32`), got {len(cleaned)} characters"
        )
    return raw


def is_encrypted(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC)


def encrypted_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def _file_key(master: bytes, salt: bytes, object_id: str) -> AESGCM:
    if len(master) != KEY_SIZE:
        raise ValueError(f"expected a {KEY_SIZE}-byte key, got {len(master)} bytes")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=salt,
        info=_INFO + object_id.encode("utf-8"),
    )
    return AESGCM(hkdf.derive(master))


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


def _aad(header: bytes, object_id: str, index: int, last: bool) -> bytes:
    return header + object_id.encode("utf-8") + index.to_bytes(8, "big") + bytes([last])


def encrypt_stream(
    master: bytes,
    object_id: str,
    source: BinaryIO,
    plaintext_size: int,
    *,
    chunk_size: int = CHUNK_SIZE,
    salt: bytes | None = None,
) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(plaintext piece, bytes to write)``: first ``(b"", header)``, then one pair per
    chunk. ``source`` must hold exactly ``plaintext_size`` bytes (ValueError otherwise:
    the file changed while it was read)."""
    if not 16 <= chunk_size <= 1 << 24:
        raise ValueError(f"chunk_size: expected 16 bytes to 16 MiB, got {chunk_size}")
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, chunk_size, plaintext_size, salt)
    aead = _file_key(master, salt, object_id)
    yield b"", header
    chunks = max(1, -(-plaintext_size // chunk_size))
    for index in range(chunks):
        want = min(chunk_size, plaintext_size - index * chunk_size)
        piece = source.read(want)
        if len(piece) != want:
            raise ValueError(
                f"source: expected {plaintext_size} bytes, it ended early (changed while read)"
            )
        last = index == chunks - 1
        yield piece, aead.encrypt(_nonce(index), piece, _aad(header, object_id, index, last))
    if source.read(1):
        raise ValueError(f"source: expected {plaintext_size} bytes, it grew while read")


def read_header(handle: BinaryIO) -> EncryptedHeader:
    raw = handle.read(HEADER_SIZE)
    if len(raw) != HEADER_SIZE:
        raise DecryptionError("encrypted object: header truncated")
    magic, version, chunk_size, plaintext_size, salt = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise DecryptionError("encrypted object: bad magic (not a Callwright encrypted file)")
    if version != FORMAT_VERSION:
        raise DecryptionError(f"encrypted object: unknown format version {version}")
    if not 16 <= chunk_size <= 1 << 24:
        raise DecryptionError(f"encrypted object: implausible chunk size {chunk_size}")
    return EncryptedHeader(version, chunk_size, plaintext_size, salt, raw)


def decrypt_range(
    master: bytes, object_id: str, handle: BinaryIO, start: int, end_inclusive: int
) -> Iterator[bytes]:
    """Plaintext bytes ``start..end_inclusive`` of the encrypted object open in ``handle``
    (positioned anywhere), decrypting only the chunks that cover them. Raises
    ``DecryptionError`` on any tampering, a wrong key or a wrong ``object_id``."""
    handle.seek(0)
    header = read_header(handle)
    size = header.plaintext_size
    if size == 0 and start == 0 and end_inclusive == -1:
        # Authenticate the single empty chunk, yield nothing.
        _open_chunk(_file_key(master, header.salt, object_id), object_id, handle, header, 0)
        return
    if not 0 <= start <= end_inclusive < size:
        raise ValueError(f"range {start}-{end_inclusive} outside 0-{size - 1}")
    aead = _file_key(master, header.salt, object_id)
    first, last = start // header.chunk_size, end_inclusive // header.chunk_size
    for index in range(first, last + 1):
        plain = _open_chunk(aead, object_id, handle, header, index)
        chunk_start = index * header.chunk_size
        lo = max(start - chunk_start, 0)
        hi = min(end_inclusive - chunk_start, len(plain) - 1)
        yield plain[lo : hi + 1]


def _open_chunk(
    aead: AESGCM, object_id: str, handle: BinaryIO, header: EncryptedHeader, index: int
) -> bytes:
    cs = header.chunk_size
    want = min(cs, header.plaintext_size - index * cs) + TAG_SIZE
    handle.seek(HEADER_SIZE + index * (cs + TAG_SIZE))
    sealed = handle.read(want)
    if len(sealed) != want:
        raise DecryptionError(f"encrypted object: chunk {index} truncated")
    last = index == header.chunk_count - 1
    try:
        return aead.decrypt(_nonce(index), sealed, _aad(header.raw, object_id, index, last))
    except InvalidTag:
        raise DecryptionError(
            f"encrypted object: chunk {index} failed authentication "
            "(altered, moved from another file, or the wrong key)"
        ) from None
