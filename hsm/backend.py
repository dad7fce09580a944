"""What a key store backend is (the software store in hsm/soft.py, PKCS#11 in
hsm/pkcs11.py) and what it hands back to the KeyStore; nothing here knows either backend,
so the backends import this module and never the KeyStore that chooses between them."""

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from trust.sm2 import SM2PublicKey


@dataclass(frozen=True, repr=False)
class Material:
    """What a backend made for a new key: the row's handle, public key and wrapped key."""

    handle: str
    public_key: bytes
    wrapped_key: bytes | None = None
    wrap_cipher: str | None = None
    kek_id: str | None = None


@dataclass(frozen=True)
class EscrowedKey:
    """An SM2 encryption key pair made for escrow: its private key exists only in the two
    SM2EnvelopedKey envelopes (``hsm.envelope``), never as plain bytes outside hsm/."""

    public_key: SM2PublicKey
    envelope: bytes      # DER SM2EnvelopedKey to the recipient
    escrow_blob: bytes   # DER SM2EnvelopedKey to the escrow key


class Backend(Protocol):
    name: str

    def supports(self, algorithm: str, decrypts: bool) -> bool: ...
    def create(self, session: Session, key_id: str, label: str, version: int, algorithm: str,
               exportable: bool) -> Material: ...
    def discard(self, handle: str) -> None: ...
    def load(self, session: Session, row): ...
    def wipe(self, session: Session, row) -> dict: ...
    def check_ready(self, session: Session | None) -> None: ...
