"""Generate RSA key pairs and keep them on disk, private half readable by the owner only.

The private key is written once, atomically and without overwriting: if two processes race to
create it, the first link wins and the other adopts the winner's key. The public key is derived
data, so it is rewritten whenever it is missing or does not match the private key on disk.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.errors import AgentError

PUBLIC_EXPONENT = 65537
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def generate_rsa_keypair(bits: int = 2048) -> tuple[bytes, bytes]:
    """Return a new (private PEM in PKCS8, public PEM in SubjectPublicKeyInfo) RSA pair."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)
    return _private_pem(key), _public_pem(key)


def public_pem_for(private_pem: bytes) -> bytes:
    """Return the SubjectPublicKeyInfo PEM that belongs to an unencrypted RSA private key."""
    return _public_pem(_load_private(private_pem))


def load_or_create_keys(private_path: Path, public_path: Path) -> tuple[object, object]:
    """Return (private key, public key) objects, parsing the stored key once."""
    private_path, public_path = Path(private_path), Path(public_path)
    if private_path.exists():
        private_pem = private_path.read_bytes()
    else:
        private_pem = _create_private(private_path)
    key = _parse_private_file(private_path, private_pem)
    public_pem = _public_pem(key)
    if not public_path.exists() or public_path.read_bytes() != public_pem:
        _write_replacing(public_path, public_pem, PUBLIC_MODE)
    return key, key.public_key()


def load_or_create_keypair(private_path: Path, public_path: Path) -> tuple[bytes, bytes]:
    """Return the key pair stored at the two paths as PEM, creating any missing part first."""
    private_key, _public = load_or_create_keys(private_path, public_path)
    return _private_pem(private_key), Path(public_path).read_bytes()


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _load_private(private_pem: bytes) -> rsa.RSAPrivateKey:
    # Our own 0600 key file: the full RSA consistency check costs ~45 ms a parse at start-up
    key = serialization.load_pem_private_key(
        private_pem, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    return key


def _parse_private_file(path: Path, private_pem: bytes) -> rsa.RSAPrivateKey:
    # The file's content is secret: name the file, never echo what is in it.
    try:
        return _load_private(private_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise AgentError(f"{path}: not an unencrypted PEM RSA private key") from None


def _create_private(path: Path) -> bytes:
    """Write a new private key at `path` unless another process got there first."""
    private_pem, _ = generate_rsa_keypair()
    tmp = _write_temp(path, private_pem, PRIVATE_MODE)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    except OSError:
        os.replace(tmp, path)  # a filesystem without hard links: last writer wins
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return private_pem


def _write_replacing(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never half."""
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    """Write `data` to a fresh file beside `path`, with `mode` from the first byte on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(fd, mode)  # the umask may have narrowed it; make it exact
            out.write(data)
            out.flush()
            os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
