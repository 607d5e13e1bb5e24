"""Ed25519 keys for signed exports, via the ``cryptography`` package.

The private key lives in the data folder as ``audit-signing-key.pem`` (PKCS#8, mode 0600); it is
generated on first use and never printed or logged. Its public half is written beside it as
``audit-signing-key.pub.pem`` and into every export. A fingerprint is ``sha256:`` and the hex
SHA-256 of the 32 raw public-key bytes: what an operator publishes and compares.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.errors import ConfigError

__all__ = [
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "fingerprint",
    "load_or_create_signing_key",
    "load_signing_key",
    "parse_public_key",
    "public_key_pem",
    "sign",
    "verify_signature",
]

PRIVATE_KEY_FILE = "audit-signing-key.pem"
PUBLIC_KEY_FILE = "audit-signing-key.pub.pem"


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_public_key(data: bytes) -> Ed25519PublicKey:
    """A PEM public key or an OpenSSH ``ssh-ed25519 ...`` line; ValueError if it is neither."""
    try:
        text = data.strip()
        key = (
            serialization.load_ssh_public_key(text)
            if text.startswith(b"ssh-")
            else serialization.load_pem_public_key(text)
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("not a PEM or OpenSSH public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return key.sign(data).hex()


def verify_signature(key: Ed25519PublicKey, signature_hex: str, data: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex.strip()), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_signing_key(data_dir: Path) -> Ed25519PrivateKey | None:
    """The signing key if there is one (never generated here). Raises ConfigError."""
    path = data_dir / PRIVATE_KEY_FILE
    if not path.exists():
        return None
    return _load(path)


def load_or_create_signing_key(data_dir: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The bot's signing key, generated on first use; returns (key, created). Raises ConfigError."""
    path = data_dir / PRIVATE_KEY_FILE
    created = False
    if not path.exists():
        created = _create(data_dir, path)
    key = _load(path)
    if created or not (data_dir / PUBLIC_KEY_FILE).exists():
        _write_public(data_dir, key.public_key())
    return key, created


def _load(path: Path) -> Ed25519PrivateKey:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"storage.data_dir: {path} is readable by other users; run chmod 600 on it "
                "(and consider the key compromised)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"storage.data_dir: cannot read {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # `from None`: the parser's message could quote key material.
        raise ConfigError(f"storage.data_dir: {path} is not a usable private key (damaged?)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"storage.data_dir: {path} is not an Ed25519 private key")
    return key


def _create(data_dir: Path, path: Path) -> bool:
    """Write a new key under a temporary name with mode 0600, then link it into place.

    Linking fails if another process got there first (then its key is used), and a crash
    mid-write leaves only the temporary file, never a half-written key under the real name.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = data_dir / f".{PRIVATE_KEY_FILE}.{os.getpid()}.tmp"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise ConfigError(
            f"storage.data_dir: cannot create the signing key in {data_dir}: {exc.strerror}"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_public(data_dir: Path, key: Ed25519PublicKey) -> None:
    path = data_dir / PUBLIC_KEY_FILE
    tmp = data_dir / f".{PUBLIC_KEY_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(public_key_pem(key))
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"storage.data_dir: cannot write {path}: {exc.strerror}") from exc
