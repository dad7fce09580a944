"""The software backend: keys generated in this process, stored wrapped under a KEK.

Each private key is kept as PKCS#8 sealed with AES-256-GCM (or SM4-GCM) under the current
KEK (``hsm.kek``). The AAD binds the key's id, version and algorithm, so a wrapped blob
copied into another row fails to unwrap. Unwrapped keys live only in process memory (the
KeyStore's cache), never in a log, an error, or a repr.
"""


from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hsm import envelope
from hsm.backend import EscrowedKey, Material
from hsm.kek import AES_GCM, WRAP_CIPHERS, KEKSource
from hsm.models import hsm_keks, hsm_keys
from trust.algorithms import ECDSA, RSA, SM2WithSM3, signature_algorithm
from trust.clock import utc_now
from trust.errors import InvalidInput, UnsupportedAlgorithm
from trust.keys import load_private_key
from trust.sm2 import SM2PrivateKey, SM2PublicKey


def wrap_aad(key_id: str, version: int, algorithm: str) -> bytes:
    return "\x00".join(("trust-hsm wrapped key", key_id, str(version), algorithm)).encode()


def _pkcs8(private_key) -> bytes:
    if isinstance(private_key, SM2PrivateKey):
        return private_key.to_pkcs8_der()
    return private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def _spki(public_key) -> bytes:
    if hasattr(public_key, "to_der"):
        return public_key.to_der()
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class SoftKey:
    """An unwrapped private key and the algorithm it signs with."""

    __slots__ = ("_alg", "_key")

    def __init__(self, algorithm: str, private_key):
        self._alg, self._key = signature_algorithm(algorithm), private_key

    def __repr__(self) -> str:
        return f"SoftKey({self._alg.name})"

    def sign(self, data: bytes, prehashed: bool, signer_id) -> bytes:
        alg, key = self._alg, self._key
        if isinstance(alg, SM2WithSM3):
            return key.sign_digest(data) if prehashed else key.sign(data, signer_id=signer_id)
        if not prehashed:
            return alg.sign(key, data)
        try:
            if isinstance(alg, ECDSA):
                return key.sign(data, ec.ECDSA(Prehashed(alg.hash())))
            if isinstance(alg, RSA):
                pad = (padding.PSS(mgf=padding.MGF1(alg.hash()), salt_length=alg.hash().digest_size)
                       if alg.pss else padding.PKCS1v15())
                return key.sign(data, pad, Prehashed(alg.hash()))
        except (ValueError, TypeError) as e:
            raise InvalidInput(f"not a {alg.name} digest: {e}", f"不是 {alg.name} 的摘要值：{e}") from None
        raise UnsupportedAlgorithm(f"{alg.name} signs the whole message; it has no prehashed form",
                                   f"{alg.name} 只能对完整消息签名，不支持预先杂凑")

    def decrypt(self, ciphertext: bytes) -> bytes:
        if not isinstance(self._key, SM2PrivateKey):
            raise UnsupportedAlgorithm(f"only SM2 keys decrypt here, not {self._alg.name}",
                                       f"此处仅 SM2 密钥可解密，{self._alg.name} 不可")
        return self._key.decrypt(ciphertext)


class SoftBackend:
    name = "soft"

    def __init__(self, kek: KEKSource, cipher: str = AES_GCM):
        if cipher not in WRAP_CIPHERS:
            raise UnsupportedAlgorithm(f"unknown key wrapping cipher {cipher!r}; use one of {', '.join(WRAP_CIPHERS)}",
                                       f"未知的密钥保护算法 {cipher!r}")
        self.kek, self.cipher = kek, cipher

    def supports(self, algorithm: str, decrypts: bool) -> bool:
        return True

    def current_kek(self, session: Session) -> str:
        """The KEK that wraps new keys; the source's first one is recorded on first use."""
        kek_id = session.execute(select(hsm_keks.c.kek_id).where(hsm_keks.c.retired_at.is_(None))).scalar()
        if kek_id is None:
            kek_id = self.kek.initial_kek()
            session.execute(insert(hsm_keks).values(kek_id=kek_id, source=self.kek.source,
                                                    created_at=utc_now()))
        return kek_id

    def create(self, session: Session, key_id: str, label: str, version: int, algorithm: str,
               exportable: bool) -> Material:
        private_key = signature_algorithm(algorithm).generate_key()
        kek_id = self.current_kek(session)
        wrapped = self.kek.wrap(kek_id, self.cipher, _pkcs8(private_key), wrap_aad(key_id, version, algorithm))
        return Material(handle=key_id, public_key=_spki(private_key.public_key()), wrapped_key=wrapped,
                        wrap_cipher=self.cipher, kek_id=kek_id)

    def generate_escrowed(self, recipient: SM2PublicKey, escrow: SM2PublicKey) -> EscrowedKey:
        """A fresh SM2 key pair, enveloped to ``recipient`` and to ``escrow``; the private key
        is dropped here and kept nowhere else."""
        private_key = SM2PrivateKey.generate()
        return EscrowedKey(public_key=private_key.public_key(), envelope=envelope.seal(private_key, recipient),
                           escrow_blob=envelope.seal(private_key, escrow))

    def discard(self, handle: str) -> None:
        """Nothing outside the row to clean up."""

    def unwrap(self, row) -> bytes:
        if row.wrapped_key is None:
            raise InvalidInput(f"key {row.id} has no private key left (destroyed)", f"密钥 {row.id} 的私钥已销毁")
        return self.kek.unwrap(row.kek_id, row.wrap_cipher, row.wrapped_key,
                               wrap_aad(row.id, row.version, row.algorithm))

    def load(self, session: Session, row) -> SoftKey:
        return SoftKey(row.algorithm, load_private_key(self.unwrap(row)))

    def wipe(self, session: Session, row) -> dict:
        return {"wrapped_key": None}

    def check_ready(self, session: Session | None) -> None:
        kek_id = None
        if session is not None:
            kek_id = session.execute(select(hsm_keks.c.kek_id).where(hsm_keks.c.retired_at.is_(None))).scalar()
        self.kek.check_ready(kek_id)

    def rotate_kek(self, session: Session) -> dict:
        """Re-wrap every software key under a new KEK, in the caller's transaction."""
        old = self.current_kek(session)
        new = self.kek.new_kek()
        rows = session.execute(select(hsm_keys).where(hsm_keys.c.backend == self.name,
                                                      hsm_keys.c.wrapped_key.is_not(None))
                               .order_by(hsm_keys.c.id).with_for_update()).all()
        for row in rows:
            wrapped = self.kek.wrap(new, self.cipher, self.unwrap(row), wrap_aad(row.id, row.version, row.algorithm))
            session.execute(update(hsm_keys).where(hsm_keys.c.id == row.id)
                            .values(wrapped_key=wrapped, wrap_cipher=self.cipher, kek_id=new))
        now = utc_now()
        session.execute(update(hsm_keks).where(hsm_keks.c.retired_at.is_(None)).values(retired_at=now))
        session.execute(insert(hsm_keks).values(kek_id=new, source=self.kek.source, created_at=now))
        return {"from": old, "to": new, "keys": len(rows)}

    def export(self, row) -> dict:
        """The wrapped blob as kept, for a backup that only a holder of the same KEK can open."""
        return {"kek_id": row.kek_id, "wrap_cipher": row.wrap_cipher, "wrapped_key": row.wrapped_key}
