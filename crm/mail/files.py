"""Mail bytes on disk: uuid-named files under ``<data_dir>/mail/``, written atomically.

A file is written to a temporary name in its final directory, fsynced, renamed with
``os.replace`` and the directory fsynced: a reader sees the whole file or none. No
name ever comes from the message (attachment names are display metadata only).
Blocking; ``MailStore`` calls these from a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = ["MailFiles", "StoredFile"]

Kind = Literal["raw", "attachments"]
_SUFFIX: Final[dict[Kind, str]] = {"raw": ".eml", "attachments": ".bin"}


@dataclass(frozen=True)
class StoredFile:
    path: str
    """Relative to the data directory, with forward slashes (``mail/raw/ab/<uuid>.eml``)."""
    sha256: str
    size: int


class MailFiles:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "mail"

    def write(self, kind: Kind, data: bytes) -> StoredFile:
        name = uuid.uuid4().hex
        directory = self.root / kind / name[:2]
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{name}{_SUFFIX[kind]}"
        temporary = directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        _fsync_directory(directory)
        return StoredFile(
            path=final.relative_to(self.data_dir).as_posix(),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    def write_all(self, items: Iterable[tuple[Kind, bytes]]) -> list[StoredFile]:
        """Write every item; on any failure remove the ones already written and raise."""
        written: list[StoredFile] = []
        try:
            for kind, data in items:
                written.append(self.write(kind, data))
        except BaseException:
            self.remove(f.path for f in written)
            raise
        return written

    def remove(self, paths: Iterable[str]) -> None:
        """Delete these files (relative paths); missing ones are ignored."""
        for relative in paths:
            with contextlib.suppress(OSError, ValueError):
                self.resolve(relative).unlink()

    def resolve(self, relative: str) -> Path:
        """The absolute path of a stored file; ValueError if ``relative`` leads outside
        ``<data_dir>/mail`` (a tampered row)."""
        path = (self.data_dir / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"mail file path outside the mail directory: {relative!r}")
        return path

    def read(self, relative: str) -> bytes:
        return self.resolve(relative).read_bytes()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
