"""Encryption at rest: round trips, range reads that decrypt only what they need, and
every kind of tampering refused."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest

from recordings.crypto import (
    CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    DecryptionError,
    decrypt_range,
    encrypt_stream,
    encrypted_size,
    parse_key,
)
from recordings.storage import LocalStorage
from recordings.wav import write_tone

MASTER = bytes(range(32))
OTHER = bytes(32)
REC_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
REC_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
KEY_A = f"2025/03/01/{REC_A}.wav"
KEY_B = f"2025/03/01/{REC_B}.wav"


def seal(data: bytes, object_id: str = REC_A, chunk_size: int = 1024) -> bytes:
    pieces = encrypt_stream(MASTER, object_id, io.BytesIO(data), len(data), chunk_size=chunk_size)
    return b"".join(sealed for _, sealed in pieces)


def unseal(blob: bytes, start: int, end: int, object_id: str = REC_A, key: bytes = MASTER) -> bytes:
    return b"".join(decrypt_range(key, object_id, io.BytesIO(blob), start, end))


def read(path: Path) -> bytes:
    return path.read_bytes()


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


async def collect(storage: LocalStorage, key: str, start: int, end: int) -> bytes:
    return b"".join([piece async for piece in storage.read_range(key, start, end)])


# -- the format ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 5000])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)

    assert len(blob) == encrypted_size(size, 1024)
    # The plaintext does not show through (a 1-byte plaintext turns up in any kilobyte of
    # random ciphertext by chance, so only sizes where a match would mean a leak count).
    assert size < 16 or data not in blob
    if size:
        assert unseal(blob, 0, size - 1) == data
    else:
        assert unseal(blob, 0, -1) == b""


def test_any_range_decrypts_to_the_same_bytes() -> None:
    data = os.urandom(5000)
    blob = seal(data)

    for start, end in [(0, 0), (1023, 1024), (100, 4999), (2048, 3071), (4999, 4999)]:
        assert unseal(blob, start, end) == data[start : end + 1]
    with pytest.raises(ValueError, match="outside"):
        unseal(blob, 0, 5000)


def test_a_range_reads_only_the_chunks_it_covers() -> None:
    data = os.urandom(10 * 1024)
    blob = bytearray(seal(data))
    # Corrupt chunk 0: a range in chunks 3-4 never touches it.
    blob[HEADER_SIZE + 5] ^= 1

    assert unseal(bytes(blob), 3 * 1024 + 7, 4 * 1024 + 9) == data[3 * 1024 + 7 : 4 * 1024 + 10]
    with pytest.raises(DecryptionError, match="chunk 0 failed authentication"):
        unseal(bytes(blob), 0, 10)


def test_the_same_file_encrypts_differently_each_time() -> None:
    data = b"x" * 3000
    assert seal(data) != seal(data)


def test_a_flipped_bit_anywhere_is_detected() -> None:
    data = os.urandom(3000)
    blob = seal(data)
    for position in (HEADER_SIZE, HEADER_SIZE + 1024 + TAG_SIZE + 3, len(blob) - 1):
        bad = bytearray(blob)
        bad[position] ^= 0x80
        with pytest.raises(DecryptionError, match="failed authentication"):
            unseal(bytes(bad), 0, 2999)


def test_a_changed_header_is_detected() -> None:
    data = os.urandom(3000)
    blob = bytearray(seal(data))
    # plaintext_size lives at bytes 10..17: claim a shorter file.
    blob[10:18] = (2048).to_bytes(8, "big")

    with pytest.raises(DecryptionError, match="failed authentication"):
        unseal(bytes(blob), 0, 2047)


def test_reordered_or_dropped_chunks_are_detected() -> None:
    data = os.urandom(3 * 1024)
    blob = seal(data)
    step = 1024 + TAG_SIZE
    header, c0, c1, c2 = (
        blob[:HEADER_SIZE],
        blob[HEADER_SIZE : HEADER_SIZE + step],
        blob[HEADER_SIZE + step : HEADER_SIZE + 2 * step],
        blob[HEADER_SIZE + 2 * step :],
    )
    with pytest.raises(DecryptionError, match="chunk 0"):
        unseal(header + c1 + c0 + c2, 0, 3071)
    with pytest.raises(DecryptionError):
        unseal(header + c0 + c2, 0, 2047)  # truncated: the last chunk is missing
    # A chunk moved to the last position fails as a "last" chunk too.
    with pytest.raises(DecryptionError, match="chunk 2"):
        unseal(header + c0 + c1 + c1, 2048, 3071)


def test_a_chunk_from_another_file_is_detected() -> None:
    data_a, data_b = os.urandom(2048), os.urandom(2048)
    blob_a, blob_b = seal(data_a, REC_A), seal(data_b, REC_B)
    step = 1024 + TAG_SIZE
    mixed = blob_a[: HEADER_SIZE + step] + blob_b[HEADER_SIZE + step :]

    with pytest.raises(DecryptionError, match="chunk 1"):
        unseal(mixed, 1024, 2047)


def test_a_file_read_as_another_recording_or_with_another_key_is_refused() -> None:
    blob = seal(os.urandom(100))

    with pytest.raises(DecryptionError):
        unseal(blob, 0, 99, object_id=REC_B)
    with pytest.raises(DecryptionError):
        unseal(blob, 0, 99, key=OTHER)


def test_bad_headers_say_what_is_wrong() -> None:
    with pytest.raises(DecryptionError, match="header truncated"):
        unseal(b"CWREC", 0, 0)
    with pytest.raises(DecryptionError, match="bad magic"):
        unseal(b"RIFF" + bytes(HEADER_SIZE), 0, 0)
    blob = bytearray(seal(b"abc"))
    blob[5] = 9
    with pytest.raises(DecryptionError, match="unknown format version 9"):
        unseal(bytes(blob), 0, 2)


def test_keys_parse_from_hex_or_base64_and_errors_never_show_them() -> None:
    raw = os.urandom(32)
    assert parse_key(raw.hex()) == raw
    assert parse_key(base64.b64encode(raw).decode()) == raw
    secret = "s3cr3t-not-a-key-" * 3
    with pytest.raises(ValueError, match="32-byte key") as caught:
        parse_key(secret)
    assert secret not in str(caught.value)
    with pytest.raises(ValueError):
        parse_key(os.urandom(16).hex())


# -- LocalStorage with a key -----------------------------------------------------------


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    write_tone(path, 9.0)  # 144 044 bytes: three 64 KiB chunks
    return path


async def test_encrypted_storage_round_trip_and_ranges(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store", MASTER)
    data = read(wav)

    stored = await storage.put(KEY_A, wav)

    on_disk = read(tmp_path / "store" / "2025" / "03" / "01" / f"{REC_A}.wav")
    assert stored.encrypted and stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert on_disk.startswith(b"CWREC") and b"RIFF" not in on_disk and b"WAVE" not in on_disk
    assert len(on_disk) == encrypted_size(len(data))
    assert await storage.size(KEY_A) == len(data)
    assert await storage.is_encrypted(KEY_A)
    assert await collect(storage, KEY_A, 0, len(data) - 1) == data
    start, end = CHUNK_SIZE - 10, 2 * CHUNK_SIZE + 10
    assert await collect(storage, KEY_A, start, end) == data[start : end + 1]
    assert await collect(storage, KEY_A, len(data) - 1, len(data) - 1) == data[-1:]
    assert "0001020304" not in repr(storage) and "encrypted=True" in repr(storage)


async def test_an_encrypted_file_moved_to_another_key_is_refused(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store", MASTER)
    await storage.put(KEY_A, wav)
    folder = tmp_path / "store" / "2025" / "03" / "01"
    shutil.copy(folder / f"{REC_A}.wav", folder / f"{REC_B}.wav")

    with pytest.raises(DecryptionError, match="failed authentication"):
        await collect(storage, KEY_B, 0, 10)


async def test_a_tampered_stored_file_is_refused(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store", MASTER)
    await storage.put(KEY_A, wav)
    path = tmp_path / "store" / "2025" / "03" / "01" / f"{REC_A}.wav"
    blob = bytearray(read(path))
    blob[HEADER_SIZE + CHUNK_SIZE + TAG_SIZE + 100] ^= 1
    write(path, bytes(blob))

    assert await collect(storage, KEY_A, 0, 99) == read(wav)[:100], "chunk 0 is intact"
    with pytest.raises(DecryptionError, match="chunk 1 failed authentication"):
        await collect(storage, KEY_A, CHUNK_SIZE, CHUNK_SIZE + 200)


async def test_plain_files_stay_readable_after_encryption_is_turned_on(
    tmp_path: Path, wav: Path
) -> None:
    await LocalStorage(tmp_path / "store").put(KEY_A, wav)
    storage = LocalStorage(tmp_path / "store", MASTER)

    assert not await storage.is_encrypted(KEY_A)
    assert await collect(storage, KEY_A, 0, 43) == read(wav)[:44]


async def test_an_encrypted_file_without_the_key_is_refused_clearly(
    tmp_path: Path, wav: Path
) -> None:
    await LocalStorage(tmp_path / "store", MASTER).put(KEY_A, wav)

    with pytest.raises(DecryptionError, match="no recordings encryption key is set"):
        await collect(LocalStorage(tmp_path / "store"), KEY_A, 0, 10)
    with pytest.raises(DecryptionError, match="failed authentication"):
        await collect(LocalStorage(tmp_path / "store", OTHER), KEY_A, 0, 10)
