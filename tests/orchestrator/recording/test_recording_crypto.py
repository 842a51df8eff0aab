"""Encryption at rest: the .hlrec container - round trips, tampering, truncation, keys, bounded memory."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tracemalloc
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.recording import crypto
from orchestrator.recording.crypto import (
    MAGIC,
    KeyRing,
    NotAContainerError,
    TamperedError,
    TruncatedError,
    UnknownKeyError,
    add_key,
    decrypt_file,
    encrypt_file,
    read_header,
    shred,
)

KEY = bytes(range(32))
RING = KeyRing.single(KEY, "k1")


def seal(data: bytes, ring: KeyRing = RING, chunk: int = 64) -> bytes:
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, ring, chunk_size=chunk)
    return out.getvalue()


def open_(blob: bytes, ring: KeyRing = RING) -> bytes:
    out = io.BytesIO()
    crypto.decrypt_stream(io.BytesIO(blob), out, ring)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=700), st.integers(min_value=16, max_value=200))
def test_round_trip_any_size_any_chunk(data, chunk):
    blob = seal(data, chunk=chunk)
    assert open_(blob) == data
    header = 10 + 2 + 4 + 32 + 7
    chunks = max(1, -(-len(data) // chunk))
    assert len(blob) == header + len(data) + 16 * chunks  # exactly one tag per chunk, no padding


def test_layout_matches_the_documented_format_byte_for_byte():
    """Decrypt with nothing but the documented recipe (HKDF + AES-GCM from the spec), not our reader."""
    data = os.urandom(150)
    blob = seal(data, chunk=64)
    assert blob[:8] == b"\x89HLREC\r\n" == MAGIC and blob[8] == 1 and blob[9] == 2 and blob[10:12] == b"k1"
    assert int.from_bytes(blob[12:16], "big") == 64
    salt, prefix, header = blob[16:48], blob[48:55], blob[:55]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"hotline recording v1").derive(KEY)
    aead = AESGCM(key)
    body = blob[55:]
    pieces = [body[0:80], body[80:160], body[160:]]  # 64+16, 64+16, 22+16
    plain = b"".join(aead.decrypt(prefix + i.to_bytes(4, "big") + bytes([i == 2]), p, header)
                     for i, p in enumerate(pieces))
    assert plain == data


def test_each_file_gets_a_fresh_salt_and_prefix():
    a, b = seal(b"same"), seal(b"same")
    assert a[16:55] != b[16:55] and a != b


def test_empty_plaintext_is_one_final_chunk():
    blob = seal(b"")
    assert len(blob) == 55 + 16
    assert open_(blob) == b""


@pytest.mark.parametrize("where", ["magic", "version", "key_id", "chunk", "salt", "prefix", "body", "tag"])
def test_any_changed_byte_is_refused(where):
    data = os.urandom(300)
    blob = bytearray(seal(data, chunk=64))
    offset = {"magic": 1, "version": 8, "key_id": 10, "chunk": 15, "salt": 20, "prefix": 50, "body": 60,
              "tag": len(blob) - 1}[where]
    blob[offset] ^= 0x01
    with pytest.raises(crypto.CryptoError) as err:
        open_(bytes(blob))
    expected = {"magic": NotAContainerError, "version": NotAContainerError, "key_id": UnknownKeyError,
                "chunk": TamperedError}.get(where, TamperedError)
    assert isinstance(err.value, expected), repr(err.value)


def test_every_single_bit_flip_is_detected():
    data = os.urandom(100)
    blob = seal(data, chunk=32)
    for i in range(len(blob)):
        for bit in (0, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(crypto.CryptoError):
                open_(bytes(bad))


def test_truncation_anywhere_is_detected_and_boundaries_say_so():
    data = os.urandom(64 * 4)  # exactly four full chunks
    blob = seal(data, chunk=64)
    for cut in range(len(blob)):
        with pytest.raises(crypto.CryptoError):
            open_(blob[:cut])
    # Cut exactly after chunk 1: a whole, authentic chunk sealed as "not last".
    with pytest.raises(TruncatedError, match="cut short after chunk 1"):
        open_(blob[:55 + 2 * 80])
    with pytest.raises(TruncatedError, match="ends inside its header"):
        open_(blob[:30])


def test_reordered_dropped_and_appended_chunks_are_refused():
    data = os.urandom(64 * 3 + 10)
    blob = seal(data, chunk=64)
    head, c = blob[:55], [blob[55 + i * 80:55 + (i + 1) * 80] for i in range(3)]
    last = blob[55 + 240:]
    with pytest.raises(TamperedError):
        open_(head + c[1] + c[0] + c[2] + last)
    with pytest.raises(TamperedError):
        open_(head + c[0] + c[2] + last)
    with pytest.raises(TamperedError):
        open_(blob + b"\x00" * 16)
    with pytest.raises(TamperedError):  # a chunk from another file under the same key
        open_(head + seal(data, chunk=64)[55:135] + b"".join(c[1:]) + last)


def test_wrong_key_and_unknown_key_id():
    blob = seal(b"secret audio")
    with pytest.raises(TamperedError, match="key 'k1' is not the key it was encrypted with"):
        open_(blob, KeyRing.single(bytes(32), "k1"))
    with pytest.raises(UnknownKeyError, match="key 'k1' is not in the key file"):
        open_(blob, KeyRing.single(KEY, "k2"))


def test_not_a_container():
    with pytest.raises(NotAContainerError, match="not an encrypted recording"):
        open_(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(NotAContainerError, match="version 2 is not supported"):
        open_(MAGIC + b"\x02" + seal(b"x")[9:])


# ------------------------------------------------------------------------------------------ keys
def test_key_file_text_form_rotation_and_old_recordings_stay_readable(tmp_path):
    path = tmp_path / "keys"
    assert add_key(path, "2024-01") == "2024-01"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring1 = KeyRing.load(path)
    src = tmp_path / "a.wav"
    src.write_bytes(os.urandom(5000))
    old = tmp_path / "a.hlrec"
    res_old = encrypt_file(src, old, ring1, chunk_size=1024)
    assert res_old.key_id == "2024-01"
    add_key(path, "2024-07")
    ring2 = KeyRing.load(path)
    assert ring2.current == "2024-07" and set(ring2.keys) == {"2024-01", "2024-07"}
    new = tmp_path / "b.hlrec"
    assert encrypt_file(src, new, ring2).key_id == "2024-07"
    assert read_header(new).key_id == "2024-07" and read_header(old).key_id == "2024-01"
    for f in (old, new):
        out = tmp_path / f"{f.stem}.out"
        decrypt_file(f, out, ring2)
        assert out.read_bytes() == src.read_bytes()
    with pytest.raises(ValueError, match="already in"):
        add_key(path, "2024-07")


def test_key_file_forms_and_errors(tmp_path):
    raw = tmp_path / "raw"
    raw.write_bytes(KEY)
    raw.chmod(0o600)
    ring = KeyRing.load(raw)
    assert ring.current == "k" + hashlib.sha256(KEY).hexdigest()[:8] and ring.keys[ring.current] == KEY
    add_key(raw, "next")  # a raw file is rewritten in the text form, keeping its key
    assert set(KeyRing.load(raw).keys) == {ring.current, "next"}
    b64 = tmp_path / "b64"
    import base64

    b64.write_text("# comment\nmain " + base64.b64encode(KEY).decode() + "  # trailing\n")
    b64.chmod(0o600)
    assert KeyRing.load(b64).keys == {"main": KEY}
    bad = tmp_path / "bad"
    for text, message in [("main 1234\n", "bad:1: a key must be 64 hex digits or base64 of 32 bytes"),
                          ("a " + KEY.hex() + "\na " + KEY.hex() + "\n", "bad:2: key id 'a' appears twice"),
                          ("# nothing\n", "the key file has no key"),
                          ("a b c\n", "bad:1: expected 'ID KEY'"),
                          ("sp@ce " + KEY.hex() + "\n", "bad:1: key id 'sp@ce' must be")]:
        bad.write_text(text)
        bad.chmod(0o600)
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            KeyRing.load(bad)
    bad.write_text("a " + KEY.hex() + "\n")
    bad.chmod(0o644)
    with pytest.raises(ValueError, match="must not be readable or writable by others"):
        KeyRing.load(bad)
    with pytest.raises(ValueError, match="cannot read the key file"):
        KeyRing.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="must be 32 bytes"):
        KeyRing({"a": b"short"}, "a")
    with pytest.raises(ValueError, match="current"):
        KeyRing({"a": KEY}, "b")


# ------------------------------------------------------------------------------------------ files
def test_encrypt_file_is_atomic_and_leaves_no_part_file_on_error(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(b"x" * 1000)
    dst = tmp_path / "out.hlrec"
    with pytest.raises(UnknownKeyError):
        encrypt_file(src, dst, RING, key_id="nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
    res = encrypt_file(src, dst, RING, chunk_size=100)
    assert res.chunks == 10 and res.plaintext_size == 1000
    assert res.sha256 == hashlib.sha256(b"x" * 1000).hexdigest()
    assert res.stored_sha256 == hashlib.sha256(dst.read_bytes()).hexdigest() and res.stored_size == dst.stat().st_size


def test_decrypt_file_writes_nothing_for_a_tampered_file(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(os.urandom(10_000))
    enc = tmp_path / "in.hlrec"
    encrypt_file(src, enc, RING, chunk_size=1024)
    blob = bytearray(enc.read_bytes())
    blob[-100] ^= 0xFF  # in the last chunk: every chunk before it authenticates
    enc.write_bytes(bytes(blob))
    out = tmp_path / "out.wav"
    with pytest.raises(TamperedError, match="chunk 9 failed authentication"):
        decrypt_file(enc, out, RING)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.hlrec", "in.wav"]


def test_streaming_a_large_file_in_bounded_memory(tmp_path):
    """48 MiB through 64 KiB chunks: Python allocations peak near a few chunks, not the file size."""
    src = tmp_path / "big.wav"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for i in range(48):
            f.write(block[i:] + block[:i])
    size = src.stat().st_size
    enc, out = tmp_path / "big.hlrec", tmp_path / "big.out"
    tracemalloc.start()
    try:
        res = encrypt_file(src, enc, RING, chunk_size=64 * 1024)
        _, peak_enc = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        dec = decrypt_file(enc, out, RING)
        _, peak_dec = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.plaintext_size == size == dec.size and res.sha256 == dec.sha256 and res.chunks == 768
    # The buffered writer holds up to 1 MiB; reads and sealed chunks a few 64 KiB each.
    assert peak_enc < 2 * 1024 * 1024, peak_enc
    assert peak_dec < 2 * 1024 * 1024, peak_dec
    h = hashlib.sha256()
    with open(out, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    assert h.hexdigest() == res.sha256


def test_shred_overwrites_then_unlinks(tmp_path, monkeypatch):
    p = tmp_path / "plain.wav"
    p.write_bytes(b"card number 4111" * 1000)
    seen = {}
    real_unlink = Path.unlink

    def spy(self, missing_ok=False):
        seen["content"] = self.read_bytes()
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", spy)
    shred(p)
    monkeypatch.undo()
    assert seen["content"] == bytes(16000) and not p.exists()
    shred(p)  # already gone: nothing to do
