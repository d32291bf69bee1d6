"""Where recording files live: a ``Storage`` interface and ``LocalStorage`` (a directory).

Keys have one fixed shape, ``YYYY/MM/DD/<recording id>.<ext>`` (``key_for`` builds
one; ``validate_key`` refuses anything else with ``InvalidKey``): no ``..``, no
absolute path, no other characters. A file system path is only ever derived from a
validated key, never from request text.

``put`` is atomic: the file is written to a hidden temporary name in the target
directory, fsynced, then ``os.replace``d into place (and the directory fsynced). A
crash at any point leaves either no object or the whole object; a leftover temporary
file (``.<name>.tmp``) is never listed by ``keys()`` and never readable by key.

With a key (32 bytes) ``LocalStorage`` encrypts at rest (``recordings.crypto``).
Reads work on both forms (a file starting with the encrypted magic is decrypted), so
turning encryption on later keeps old files readable. ``size`` and ``read_range``
count plaintext bytes.

Errors: ``InvalidKey`` (a ValueError), ``ObjectNotFound`` (a LookupError),
``recordings.crypto.DecryptionError`` (altered file, wrong key, or no key configured
for an encrypted file), ``ValueError`` for a range outside the object.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from recordings.crypto import (
    MAGIC,
    DecryptionError,
    decrypt_range,
    encrypt_stream,
    read_header,
)

__all__ = [
    "KEY_PATTERN",
    "READ_BLOCK",
    "InvalidKey",
    "LocalStorage",
    "ObjectNotFound",
    "Storage",
    "StoredObject",
    "key_for",
    "object_id",
    "validate_key",
]

log = logging.getLogger(__name__)

KEY_PATTERN: Final = re.compile(
    r"(?P<y>\d{4})/(?P<m>0[1-9]|1[0-2])/(?P<d>0[1-9]|[12]\d|3[01])/(?P<id>[0-9a-f]{32})\.(?P<ext>wav|mp3)"
)
READ_BLOCK: Final = 64 * 1024
_QUARANTINE: Final = ".quarantine"


class InvalidKey(ValueError):
    def __init__(self, key: object) -> None:
        self.key = key
        super().__init__(
            f"storage key: expected YYYY/MM/DD/<32 hex digits>.wav|mp3, got {key!r:.80}"
        )


class ObjectNotFound(LookupError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no stored object {key!r}")


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    """SHA-256 (hex) of the plaintext."""
    size: int
    """Plaintext bytes."""
    encrypted: bool


def validate_key(key: str) -> str:
    """``key`` if it has the one allowed shape; ``InvalidKey`` otherwise."""
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise InvalidKey(key)
    return key


def object_id(key: str) -> str:
    """The recording id inside a valid key."""
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        raise InvalidKey(key)
    return match["id"]


def key_for(recording_id: str, when: datetime, ext: str = "wav") -> str:
    """The storage key of a recording started at ``when`` (UTC date folders)."""
    return validate_key(f"{when:%Y/%m/%d}/{recording_id}.{ext}")


class Storage(Protocol):
    """Recording files by key. Every method validates ``key`` (``InvalidKey``)."""

    @property
    def encrypting(self) -> bool:
        """True when ``put`` encrypts."""
        ...

    async def put(self, key: str, source: Path) -> StoredObject:
        """Copy ``source`` in under ``key`` atomically (replacing any object there)."""
        ...

    async def size(self, key: str) -> int:
        """Plaintext size; ``ObjectNotFound`` if absent."""
        ...

    def read_range(self, key: str, start: int, end_inclusive: int) -> AsyncIterator[bytes]:
        """Plaintext bytes ``start..end_inclusive`` (both within the object, else
        ValueError), in pieces of at most ``READ_BLOCK`` (plaintext) or one chunk
        (encrypted). ``ObjectNotFound`` if absent (raised on first iteration)."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the object; False if it was not there."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def is_encrypted(self, key: str) -> bool:
        """True when the stored object is encrypted; ``ObjectNotFound`` if absent."""
        ...

    def keys(self) -> AsyncIterator[str]:
        """Every stored key (temporary and stray files are not keys)."""
        ...

    async def quarantine(self, key: str) -> str:
        """Move the object out of the key space (for an orphan); returns where it went."""
        ...


class LocalStorage:
    """A directory tree under ``root``. ``key``: 32 bytes to encrypt at rest, or None."""

    def __init__(self, root: Path, key: bytes | None = None) -> None:
        if key is not None and len(key) != 32:
            raise ValueError(f"encryption key: expected 32 bytes, got {len(key)}")
        self._root = Path(root).resolve()
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"LocalStorage({str(self._root)!r}, encrypted={self._key is not None})"

    @property
    def root(self) -> Path:
        return self._root

    @property
    def encrypting(self) -> bool:
        return self._key is not None

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self._root.joinpath(*key.split("/"))

    # -- writing ---------------------------------------------------------------------------

    async def put(self, key: str, source: Path) -> StoredObject:
        path = self._path(key)
        return await asyncio.to_thread(self._put_sync, key, path, Path(source))

    def _put_sync(self, key: str, path: Path, source: Path) -> StoredObject:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        digest = hashlib.sha256()
        try:
            with source.open("rb") as src, temp.open("xb") as out:
                size = os.fstat(src.fileno()).st_size
                if self._key is not None:
                    for plain, sealed in encrypt_stream(self._key, object_id(key), src, size):
                        digest.update(plain)
                        out.write(sealed)
                else:
                    copied = 0
                    while block := src.read(READ_BLOCK):
                        digest.update(block)
                        out.write(block)
                        copied += len(block)
                    size = copied
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return StoredObject(key, digest.hexdigest(), size, self._key is not None)

    async def delete(self, key: str) -> bool:
        path = self._path(key)

        def remove() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            _fsync_dir(path.parent)
            return True

        return await asyncio.to_thread(remove)

    async def quarantine(self, key: str) -> str:
        path = self._path(key)
        target = self._root / _QUARANTINE / key.replace("/", "-")

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, target)
            except FileNotFoundError:
                raise ObjectNotFound(key) from None

        await asyncio.to_thread(move)
        return str(target)

    # -- reading ---------------------------------------------------------------------------

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await asyncio.to_thread(path.is_file)

    async def is_encrypted(self, key: str) -> bool:
        path = self._path(key)

        def sniff() -> bool:
            try:
                with path.open("rb") as handle:
                    return handle.read(len(MAGIC)) == MAGIC
            except FileNotFoundError:
                raise ObjectNotFound(key) from None

        return await asyncio.to_thread(sniff)

    async def size(self, key: str) -> int:
        path = self._path(key)
        return await asyncio.to_thread(self._size_sync, key, path)

    def _size_sync(self, key: str, path: Path) -> int:
        try:
            with path.open("rb") as handle:
                if handle.read(len(MAGIC)) == MAGIC:
                    handle.seek(0)
                    return read_header(handle).plaintext_size
                return os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def read_range(self, key: str, start: int, end_inclusive: int) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            pieces = await asyncio.to_thread(self._reader, key, handle, start, end_inclusive)
            while True:
                piece = await asyncio.to_thread(next, pieces, None)
                if piece is None:
                    return
                yield piece
        finally:
            await asyncio.to_thread(handle.close)

    def _reader(
        self, key: str, handle: BinaryIO, start: int, end_inclusive: int
    ) -> Iterator[bytes]:
        if start < 0 or end_inclusive < start:
            raise ValueError(f"range {start}-{end_inclusive}: expected 0 <= start <= end")
        encrypted = handle.read(len(MAGIC)) == MAGIC
        if encrypted:
            if self._key is None:
                raise DecryptionError(
                    f"{key}: the object is encrypted and no recordings encryption key is set"
                )
            handle.seek(0)
            size = read_header(handle).plaintext_size
            if end_inclusive >= size:
                raise ValueError(f"range {start}-{end_inclusive} outside 0-{size - 1}")
            return decrypt_range(self._key, object_id(key), handle, start, end_inclusive)
        size = os.fstat(handle.fileno()).st_size
        if end_inclusive >= size:
            raise ValueError(f"range {start}-{end_inclusive} outside 0-{size - 1}")
        return _plain_range(handle, start, end_inclusive)

    async def keys(self) -> AsyncIterator[str]:
        found = await asyncio.to_thread(self._keys_sync)
        for key in found:
            yield key

    def _keys_sync(self) -> list[str]:
        keys: list[str] = []
        if not self._root.is_dir():
            return keys
        for dirpath, dirnames, filenames in os.walk(self._root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(self._root).as_posix()
            for name in sorted(filenames):
                key = name if rel == "." else f"{rel}/{name}"
                if KEY_PATTERN.fullmatch(key):
                    keys.append(key)
        return keys

    def leftovers(self) -> list[Path]:
        """Temporary files of interrupted ``put``s and files whose names are not keys
        (``check`` reports them)."""
        found: list[Path] = []
        if not self._root.is_dir():
            return found
        for dirpath, dirnames, filenames in os.walk(self._root):
            dirnames[:] = sorted(d for d in dirnames if d != _QUARANTINE)
            rel = Path(dirpath).relative_to(self._root).as_posix()
            for name in sorted(filenames):
                key = name if rel == "." else f"{rel}/{name}"
                if not KEY_PATTERN.fullmatch(key):
                    found.append(Path(dirpath) / name)
        return found


def _plain_range(handle: BinaryIO, start: int, end_inclusive: int) -> Iterator[bytes]:
    handle.seek(start)
    remaining = end_inclusive - start + 1
    while remaining > 0:
        block = handle.read(min(READ_BLOCK, remaining))
        if not block:
            raise ValueError("object shrank while it was read")
        remaining -= len(block)
        yield block


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
