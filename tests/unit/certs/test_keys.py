"""RSA key pairs: formats, file modes, reuse of what is on disk, and refusing a corrupt key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.certs import keys
from agent.errors import AgentError


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    """Generate one key pair for the module: RSA generation is slow."""
    return keys.generate_rsa_keypair()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "keys" / "privateKey.pem", tmp_path / "keys" / "publicKey.pem"


def test_generate_gives_pkcs8_private_and_spki_public(pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = pair
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert keys.public_pem_for(private_pem) == public_pem


def test_create_writes_both_files_private_owner_only(tmp_path: Path) -> None:
    private_path, public_path = _paths(tmp_path)
    public_path.parent.mkdir()
    public_path.write_bytes(b"an orphan public key without its private half")
    private_pem, public_pem = keys.load_or_create_keypair(private_path, public_path)
    assert private_path.read_bytes() == private_pem
    assert public_path.read_bytes() == public_pem
    assert keys.public_pem_for(private_pem) == public_pem
    assert _mode(private_path) == 0o600
    assert _mode(public_path) == 0o644
    assert sorted(p.name for p in private_path.parent.iterdir()) == [
        "privateKey.pem",
        "publicKey.pem",
    ]


def test_existing_pair_is_loaded_not_replaced(tmp_path: Path, pair: tuple[bytes, bytes]) -> None:
    private_path, public_path = _paths(tmp_path)
    private_path.parent.mkdir()
    private_path.write_bytes(pair[0])
    public_path.write_bytes(pair[1])
    assert keys.load_or_create_keypair(private_path, public_path) == pair


def test_missing_public_key_is_derived_from_private(
    tmp_path: Path, pair: tuple[bytes, bytes]
) -> None:
    private_path, public_path = _paths(tmp_path)
    private_path.parent.mkdir()
    private_path.write_bytes(pair[0])
    assert keys.load_or_create_keypair(private_path, public_path) == pair
    assert public_path.read_bytes() == pair[1]


def test_stale_public_key_is_rewritten(tmp_path: Path, pair: tuple[bytes, bytes]) -> None:
    private_path, public_path = _paths(tmp_path)
    private_path.parent.mkdir()
    private_path.write_bytes(pair[0])
    public_path.write_bytes(b"-----BEGIN PUBLIC KEY-----\nstale\n-----END PUBLIC KEY-----\n")
    assert keys.load_or_create_keypair(private_path, public_path) == pair
    assert public_path.read_bytes() == pair[1]


def test_corrupt_private_key_names_the_file_not_its_content(tmp_path: Path) -> None:
    private_path, public_path = _paths(tmp_path)
    private_path.parent.mkdir()
    private_path.write_bytes(b"hunter2-not-a-key")
    with pytest.raises(AgentError) as caught:
        keys.load_or_create_keypair(private_path, public_path)
    assert str(private_path) in caught.value.message
    assert "hunter2" not in caught.value.message
    assert not public_path.exists()


def test_private_key_created_by_a_racing_process_wins(
    tmp_path: Path, pair: tuple[bytes, bytes]
) -> None:
    private_path, _ = _paths(tmp_path)
    private_path.parent.mkdir()
    private_path.write_bytes(pair[0])  # appeared after the caller saw it missing
    assert keys._create_private(private_path) == pair[0]
    assert private_path.read_bytes() == pair[0]
    assert [p.name for p in private_path.parent.iterdir()] == ["privateKey.pem"]
