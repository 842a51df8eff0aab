"""Encryption at rest: AES-256-GCM in a chunked, streaming container (``.hlrec``).

A finished recording is encrypted into one container file, chunk by chunk,
so a recording of any length streams through bounded memory (one chunk in,
one chunk out), and any change to the file - a flipped bit, a reordered,
dropped or appended chunk, a file cut short anywhere - is detected when it
is read back. The construction is STREAM (Hoang, Reyhanitabar, Rogaway,
Vizar, "Online Authenticated-Encryption and its Nonce-Reuse
Misuse-Resistance", CRYPTO 2015, section 7) over AES-256-GCM (NIST SP
800-38D), with a key derived per file by HKDF-SHA256 (RFC 5869), the same
shape as Tink's AES-GCM-HKDF streaming AEAD. AES-GCM itself comes from the
``cryptography`` package (OpenSSL); nothing cryptographic is written here.

Container, version 1 (all integers big-endian)::

    offset    size  field
    0         8     magic      89 48 4C 52 45 43 0D 0A   ("\\x89HLREC\\r\\n", like PNG's:
                                                        catches 7-bit and newline mangling)
    8         1     version    1
    9         1     n          length of the key id, 1..64
    10        n     key id     ASCII [A-Za-z0-9._-]: which key of the key file
    10+n      4     chunk      plaintext bytes per chunk, 16 .. 16 MiB
    14+n      32    salt       random; file key = HKDF-SHA256(master key, salt,
                               info = "hotline recording v1", 32 bytes)
    46+n      7     prefix     random nonce prefix
    53+n      ...   chunks

Chunk ``i`` (from 0) is ``AES-256-GCM(file key, nonce_i, plaintext_i,
aad = the header bytes)``: its ciphertext followed by the 16-byte tag, where
``nonce_i = prefix (7) || i (4 bytes) || last (1 byte: 1 on the final chunk,
else 0)``. Every chunk but the last holds exactly ``chunk`` plaintext bytes;
the last holds 0..``chunk`` (an empty file is one empty final chunk: a bare
tag). So:

* the header is authenticated by every chunk (changing the key id, chunk
  size, salt or prefix fails the first chunk);
* chunk order is bound by the counter in the nonce;
* truncation at a chunk boundary leaves a last chunk sealed as "not last",
  which fails; truncation inside a chunk fails that chunk's tag; bytes after
  the final chunk are refused;
* the per-file key (a fresh salt each time) keeps the 96-bit nonces unique
  per key however many files a master key encrypts; the chunk counter bounds
  one file to 2**32 chunks.

Key file (``[recording] key_file``): 32 raw bytes (key id: ``k`` + the first
8 hex digits of its SHA-256), or text lines ``ID KEY`` (KEY as 64 hex digits
or base64 of 32 bytes; ``#`` starts a comment). The last line is the
*current* key, used for new recordings; earlier lines stay to read older
recordings. Rotation is appending a line (:func:`add_key`, ``hotline
recordings rotate-key``). The file must not be readable by others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "DEFAULT_CHUNK",
    "MAGIC",
    "VERSION",
    "ContainerHeader",
    "CryptoError",
    "DecryptResult",
    "EncryptResult",
    "KeyRing",
    "NotAContainerError",
    "TamperedError",
    "TruncatedError",
    "UnknownKeyError",
    "add_key",
    "decrypt_file",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_stream",
    "fsync_dir",
    "is_container",
    "iter_decrypted",
    "read_header",
    "shred",
]

MAGIC = b"\x89HLREC\r\n"
VERSION = 1
DEFAULT_CHUNK = 64 * 1024
MIN_CHUNK = 16
MAX_CHUNK = 16 * 1024 * 1024
TAG = 16
SALT = 32
PREFIX = 7
_INFO = b"hotline recording v1"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CryptoError(ValueError):
    """A container that cannot be read (the subclasses say why)."""


class NotAContainerError(CryptoError):
    """The file does not start with a valid container header."""


class UnknownKeyError(CryptoError):
    """The container names a key id the key file does not have."""


class TamperedError(CryptoError):
    """A chunk failed authentication: the file was altered, or the key is not the one it was sealed with."""


class TruncatedError(CryptoError):
    """The file ends before its final chunk."""


# ---------------------------------------------------------------------------------------------- keys


def _parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{64}", text):
        return bytes.fromhex(text)
    raw = b""
    for altchars in (None, b"-_"):
        try:
            raw = base64.b64decode((text + "=" * (-len(text) % 4)).encode("ascii"), altchars=altchars,
                                   validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            break
    if len(raw) != 32:
        raise ValueError(f"{where}: a key must be 64 hex digits or base64 of 32 bytes")
    return raw


def derived_key_id(key: bytes) -> str:
    """The id given to a key that has none (a raw 32-byte key file): ``k`` + 8 hex digits of its SHA-256."""
    return "k" + hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class KeyRing:
    """Master keys by id, and which one new recordings use (``current``)."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("keys: a key ring needs at least one key")
        for kid, key in self.keys.items():
            if not isinstance(kid, str) or not _KEY_ID.fullmatch(kid):
                raise ValueError(f"keys: key id {kid!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
            if not isinstance(key, bytes) or len(key) != 32:
                raise ValueError(f"keys: key {kid!r} must be 32 bytes (AES-256)")
        if self.current not in self.keys:
            raise ValueError(f"current: {self.current!r} is not one of the keys")

    @classmethod
    def single(cls, key: bytes, key_id: str | None = None) -> KeyRing:
        kid = key_id or derived_key_id(key)
        return cls({kid: key}, kid)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKeyError(f"key {key_id!r} is not in the key file (known: {', '.join(self.keys)})") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, check_permissions: bool = True) -> KeyRing:
        """Read a key file (see the module docstring). ValueError says what is wrong and where."""
        p = Path(path)
        try:
            st = p.stat()
            data = p.read_bytes()
        except OSError as exc:
            raise ValueError(f"{p}: cannot read the key file: {exc.strerror}") from None
        if check_permissions and st.st_mode & (stat.S_IROTH | stat.S_IWOTH):
            raise ValueError(f"{p}: the key file must not be readable or writable by others "
                             f"(mode {stat.S_IMODE(st.st_mode):o}; chmod 600 it)")
        if len(data) == 32 and not _looks_like_text(data):
            return cls.single(data)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{p}: not a key file (32 raw bytes, or lines 'ID KEY')") from None
        keys: dict[str, bytes] = {}
        current = None
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            where = f"{p}:{number}"
            if len(parts) == 1:
                key = _parse_key(parts[0], where)
                kid = derived_key_id(key)
            elif len(parts) == 2:
                kid, key = parts[0], _parse_key(parts[1], where)
                if not _KEY_ID.fullmatch(kid):
                    raise ValueError(f"{where}: key id {kid!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
            else:
                raise ValueError(f"{where}: expected 'ID KEY' (two fields), got {len(parts)}")
            if kid in keys:
                raise ValueError(f"{where}: key id {kid!r} appears twice")
            keys[kid] = key
            current = kid
        if current is None:
            raise ValueError(f"{p}: the key file has no key")
        return cls(keys, current)


def _looks_like_text(data: bytes) -> bool:
    return all(32 <= b < 127 or b in (9, 10, 13) for b in data)


def add_key(path: str | os.PathLike[str], key_id: str | None = None, key: bytes | None = None) -> str:
    """Append a new key (random unless given) to a key file, creating it (mode 600) if needed.

    The new key becomes the current one; the others stay for older
    recordings. Returns the new key's id.
    """
    key = secrets.token_bytes(32) if key is None else key
    if len(key) != 32:
        raise ValueError("key: must be 32 bytes")
    kid = key_id or derived_key_id(key)
    if not _KEY_ID.fullmatch(kid):
        raise ValueError(f"key_id: {kid!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    p = Path(path)
    if p.exists():
        ring = KeyRing.load(p)
        if kid in ring.keys:
            raise ValueError(f"key_id: {kid!r} is already in {p}")
        if p.stat().st_size == 32 and not _looks_like_text(p.read_bytes()):
            # A raw key file cannot hold two keys: rewrite it in the text form first.
            old = ring.keys[ring.current]
            lines = f"{ring.current} {old.hex()}\n"
        else:
            lines = p.read_text("ascii")
            if lines and not lines.endswith("\n"):
                lines += "\n"
    else:
        lines = "# Hotline recording keys: 'ID KEY' per line; the last line is the current key.\n"
    lines += f"{kid} {key.hex()}\n"
    tmp = p.with_name(f".{p.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, lines.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)
    fsync_dir(p.parent)
    return kid


# ---------------------------------------------------------------------------------------------- container


@dataclass(frozen=True)
class ContainerHeader:
    version: int
    key_id: str
    chunk_size: int
    salt: bytes
    prefix: bytes
    raw: bytes  # the header bytes, the AAD of every chunk

    @property
    def size(self) -> int:
        return len(self.raw)


@dataclass(frozen=True, kw_only=True)
class EncryptResult:
    key_id: str
    plaintext_size: int
    stored_size: int
    sha256: str
    """SHA-256 of the plaintext (the recording as exported)."""
    stored_sha256: str
    """SHA-256 of the container file."""
    chunks: int


@dataclass(frozen=True, kw_only=True)
class DecryptResult:
    key_id: str
    size: int
    sha256: str
    chunks: int


def _header(key_id: str, chunk_size: int, salt: bytes, prefix: bytes) -> bytes:
    kid = key_id.encode("ascii")
    return MAGIC + bytes([VERSION, len(kid)]) + kid + chunk_size.to_bytes(4, "big") + salt + prefix


def _file_key(master: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(master)
    return AESGCM(key)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 1 << 32:
        raise CryptoError("a container holds at most 2**32 chunks")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _read_exact(src: BinaryIO, n: int) -> bytes:
    parts = []
    while n > 0:
        b = src.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _parse_header(src: BinaryIO, name: str = "") -> ContainerHeader:
    where = f"{name}: " if name else ""
    head = _read_exact(src, 10)
    if len(head) < 10 or head[:8] != MAGIC:
        raise NotAContainerError(f"{where}not an encrypted recording (no HLREC header)")
    version, n = head[8], head[9]
    if version != VERSION:
        raise NotAContainerError(f"{where}container version {version} is not supported (this Hotline reads {VERSION})")
    if not 1 <= n <= 64:
        raise NotAContainerError(f"{where}bad key id length {n}")
    rest = _read_exact(src, n + 4 + SALT + PREFIX)
    if len(rest) < n + 4 + SALT + PREFIX:
        raise TruncatedError(f"{where}the file ends inside its header")
    try:
        kid = rest[:n].decode("ascii")
    except UnicodeDecodeError:
        raise NotAContainerError(f"{where}the key id is not ASCII") from None
    if not _KEY_ID.fullmatch(kid):
        raise NotAContainerError(f"{where}bad key id {kid!r}")
    chunk = int.from_bytes(rest[n:n + 4], "big")
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise NotAContainerError(f"{where}bad chunk size {chunk}")
    salt = rest[n + 4:n + 4 + SALT]
    prefix = rest[n + 4 + SALT:]
    return ContainerHeader(version, kid, chunk, salt, prefix, head + rest)


def read_header(path: str | os.PathLike[str]) -> ContainerHeader:
    """The header of a container file (raises NotAContainerError if it is not one)."""
    with open(path, "rb") as f:
        return _parse_header(f, os.fspath(path))


def is_container(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == MAGIC
    except OSError:
        return False


def encrypt_stream(src: BinaryIO, dst: BinaryIO, keys: KeyRing, *, chunk_size: int = DEFAULT_CHUNK,
                   key_id: str | None = None) -> EncryptResult:
    """Encrypt everything ``src`` reads into ``dst`` (see the module docstring); bounded memory."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise ValueError(f"chunk_size: must be an int from {MIN_CHUNK} to {MAX_CHUNK}, got {chunk_size!r}")
    kid = keys.current if key_id is None else key_id
    master = keys.key(kid)
    salt, prefix = secrets.token_bytes(SALT), secrets.token_bytes(PREFIX)
    header = _header(kid, chunk_size, salt, prefix)
    aead = _file_key(master, salt)
    plain_hash, stored_hash = hashlib.sha256(), hashlib.sha256()
    dst.write(header)
    stored_hash.update(header)
    stored = len(header)
    size = 0
    counter = 0
    block = _read_exact(src, chunk_size)
    while True:
        following = _read_exact(src, chunk_size) if len(block) == chunk_size else b""
        last = not following
        plain_hash.update(block)
        sealed = aead.encrypt(_nonce(prefix, counter, last), block, header)
        dst.write(sealed)
        stored_hash.update(sealed)
        stored += len(sealed)
        size += len(block)
        counter += 1
        if last:
            break
        block = following
    return EncryptResult(key_id=kid, plaintext_size=size, stored_size=stored, sha256=plain_hash.hexdigest(),
                         stored_sha256=stored_hash.hexdigest(), chunks=counter)


def iter_decrypted(src: BinaryIO, keys: KeyRing, *, name: str = "") -> Iterator[bytes]:
    """Plaintext chunks of a container, each yielded only once it has been authenticated.

    Raises a :class:`CryptoError` subclass at the first problem; a consumer
    must not trust what it got before the iterator ends normally.
    """
    return _chunks(src, _parse_header(src, name), keys, name)


def _chunks(src: BinaryIO, header: ContainerHeader, keys: KeyRing, name: str) -> Iterator[bytes]:
    where = f"{name}: " if name else ""
    aead = _file_key(keys.key(header.key_id), header.salt)
    sealed_size = header.chunk_size + TAG
    counter = 0
    block = _read_exact(src, sealed_size)
    while True:
        if len(block) < TAG:
            raise TruncatedError(f"{where}the file ends before its final chunk (chunk {counter})")
        following = _read_exact(src, sealed_size) if len(block) == sealed_size else b""
        last = not following
        try:
            plain = aead.decrypt(_nonce(header.prefix, counter, last), block, header.raw)
        except InvalidTag:
            if last:
                # Sealed as "not last"? Then the file was cut at a chunk boundary.
                try:
                    aead.decrypt(_nonce(header.prefix, counter, False), block, header.raw)
                except InvalidTag:
                    pass
                else:
                    raise TruncatedError(f"{where}the file was cut short after chunk {counter}") from None
            raise TamperedError(f"{where}chunk {counter} failed authentication: the file was altered, or key "
                                f"{header.key_id!r} is not the key it was encrypted with") from None
        yield plain
        counter += 1
        if last:
            return
        block = following


def decrypt_stream(src: BinaryIO, dst: BinaryIO, keys: KeyRing, *, name: str = "") -> DecryptResult:
    """Decrypt a container from ``src`` into ``dst`` chunk by chunk (bounded memory).

    On an error ``dst`` holds the authenticated part only; callers that
    expose the output (export) write to a temporary file and keep it only on success.
    """
    h = hashlib.sha256()
    size = chunks = 0
    header = _parse_header(src, name)
    for plain in _chunks(src, header, keys, name):
        dst.write(plain)
        h.update(plain)
        size += len(plain)
        chunks += 1
    return DecryptResult(key_id=header.key_id, size=size, sha256=h.hexdigest(), chunks=chunks)


# ---------------------------------------------------------------------------------------------- files


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename or unlink in it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_output(dst: Path) -> tuple[Path, BinaryIO]:
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
    return tmp, os.fdopen(fd, "wb", buffering=1024 * 1024)


def encrypt_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], keys: KeyRing, *,
                 chunk_size: int = DEFAULT_CHUNK, key_id: str | None = None) -> EncryptResult:
    """Encrypt ``src`` into ``dst`` atomically: a temporary file, fsync, rename, directory fsync.

    ``dst`` appears only complete; ``src`` is left as it is (see :func:`shred`).
    """
    dst = Path(dst)
    tmp, out = _atomic_output(dst)
    try:
        with open(src, "rb", buffering=0) as f, out:
            result = encrypt_stream(f, out, keys, chunk_size=chunk_size, key_id=key_id)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dst.parent)
    return result


def decrypt_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], keys: KeyRing) -> DecryptResult:
    """Decrypt a container into ``dst``; ``dst`` is written only if every chunk authenticates."""
    dst = Path(dst)
    tmp, out = _atomic_output(dst)
    try:
        with open(src, "rb") as f, out:
            result = decrypt_stream(f, out, keys, name=os.fspath(src))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def shred(path: str | os.PathLike[str], *, block: int = 1024 * 1024) -> None:
    """Overwrite a plaintext file with zeros, fsync, then unlink it (and fsync its directory).

    This removes the plaintext from the file's blocks on a filesystem that
    rewrites in place (ext4, xfs). Copy-on-write filesystems (btrfs, zfs) and
    SSD wear levelling may keep old blocks: keep the recordings' spool on an
    encrypted volume where that matters.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(block, max(size, 1)))
        done = 0
        while done < size:
            done += os.write(fd, zeros[:min(len(zeros), size - done)])
        os.fsync(fd)
    finally:
        os.close(fd)
    p.unlink(missing_ok=True)
    fsync_dir(p.parent)
