"""The KeyStore: every private key of the authority behind one interface.

Domain code holds a :class:`KeyRef` (never key bytes) and calls ``sign``/``decrypt`` with
the usage it signs for; the KeyStore enforces the usage and the key's lifecycle state
(NIST SP 800-57 Part 1 §7), writes the audit log, and routes the operation to the
backend that holds the key: ``soft`` (``hsm.soft``, wrapped under a KEK) or ``pkcs11``
(``hsm.pkcs11``, inside a token). A PKCS#11 KeyStore keeps what its token cannot do (SM2
without a vendor profile, decryption) in the software backend under a KEK in the token.

The sign path, which may run in a hot loop, costs no database round trip in the steady
state:

- unwrapped/loaded keys are cached per KeyStore (per process), and so is each key's state
  and usages, re-read from the database when older than ``state_ttl`` seconds (default 1):
  a state change made in this process applies at once, one made in another worker process
  within ``state_ttl``;
- the audit record of key use is written when the caller commits: one ``key.sign`` (or
  ``key.decrypt``) record per key, usage and actor in that transaction, with the number of
  operations and the first and last time. A request that signs one document writes one
  record per signature; a batch that signs thousands in one transaction writes one record
  with the count, not thousands of chain appends (each costs more than an SM2 signature).
  The record shares the fate of the caller's transaction, as every audit.append does:
  operations in a transaction rolled back or never committed are not recorded (when the
  session had no transaction open, they are written at its next commit).

Lifecycle changes, generation, destruction, export and KEK rotation are audited at once,
in the caller's transaction; none of these commit: the caller does.

Key escrow: ``generate_escrowed`` makes an SM2 encryption key pair and returns only its
public key and two SM2 envelopes of it (``hsm.envelope``), to the applicant and to an
escrow key; an escrow key decrypts (``decrypt``, ``recover_escrowed``) only in an act
approved under dual control, as a root CA key signs.
"""

import base64
import builtins
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hsm import envelope
from hsm.backend import Backend, EscrowedKey
from hsm.models import hsm_keys
from trust import audit, metrics
from trust.algorithms import signature_algorithm
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput, KeyUnavailable, NotFound, UnsupportedAlgorithm
from trust.keys import PublicKey, load_public_key
from trust.sm2 import DEFAULT_ID, SM2PublicKey

if TYPE_CHECKING:
    from hsm.pkcs11 import Token

# A root CA key: made for certificates and labelled "root-ca/<name>". Only an act approved
# under dual control (hsm.dual_control runs it with actor "approval:<request id>") may sign.
ROOT_CA_LABEL_PREFIX = "root-ca/"
APPROVED_ACTOR_PREFIX = "approval:"


def is_root_ca_key(ref: "KeyRef") -> bool:
    return Usage.CERTIFICATE in ref.usages and ref.label.startswith(ROOT_CA_LABEL_PREFIX)


class KeyState(StrEnum):
    PRE_ACTIVE = "pre-active"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"


_S = KeyState
# NIST SP 800-57 Part 1 Rev. 5 §7: the allowed transitions. Destruction from active or
# suspended goes through deactivated (destroy() does both steps).
TRANSITIONS: dict[KeyState, frozenset[KeyState]] = {
    _S.PRE_ACTIVE: frozenset({_S.ACTIVE, _S.COMPROMISED, _S.DESTROYED}),
    _S.ACTIVE: frozenset({_S.SUSPENDED, _S.DEACTIVATED, _S.COMPROMISED}),
    _S.SUSPENDED: frozenset({_S.ACTIVE, _S.DEACTIVATED, _S.COMPROMISED}),
    _S.DEACTIVATED: frozenset({_S.COMPROMISED, _S.DESTROYED}),
    _S.COMPROMISED: frozenset({_S.DESTROYED}),
    _S.DESTROYED: frozenset(),
}
_STAMPS = {_S.ACTIVE: "activated_at", _S.SUSPENDED: "suspended_at", _S.DEACTIVATED: "deactivated_at",
           _S.COMPROMISED: "compromised_at", _S.DESTROYED: "destroyed_at"}


class Usage(StrEnum):
    SEAL = "seal"                  # seal signatures (用章)
    SEAL_MAKING = "seal-making"    # the seal maker signs seals (制章)
    CERTIFICATE = "certificate"    # CA: certificates and CRLs
    OCSP = "ocsp"
    TIMESTAMP = "timestamp"
    TOKEN = "token"                # JWT / OIDC
    DOCUMENT = "document"          # PDF / OFD signatures
    QR = "qr"                      # licence QR payloads
    AUDIT = "audit"                # checkpoints of the audit chain (hsm/checkpoints.py)
    ENCRYPTION = "encryption"      # decrypt SM2 envelopes
    ESCROW = "escrow"              # wrap escrowed keys


DECRYPT_USAGES = frozenset({Usage.ENCRYPTION, Usage.ESCROW})
SIGN_USAGES = frozenset(Usage) - DECRYPT_USAGES


class UsageNotPermitted(InvalidInput):
    code = "usage_not_permitted"


class KeyNotActive(InvalidInput):
    code = "key_not_active"


@dataclass(frozen=True)
class KeyRef:
    """Names a key version; never carries private key bytes."""

    id: str
    label: str
    version: int
    backend: str
    handle: str
    algorithm: str
    usages: frozenset[Usage]
    state: KeyState
    exportable: bool
    created_at: datetime
    activated_at: datetime | None = None
    suspended_at: datetime | None = None
    deactivated_at: datetime | None = None
    compromised_at: datetime | None = None
    destroyed_at: datetime | None = None


def _ref(row) -> KeyRef:
    return KeyRef(id=row.id, label=row.label, version=row.version, backend=row.backend, handle=row.handle,
                  algorithm=row.algorithm, usages=frozenset(Usage(u) for u in row.usages.split()),
                  state=KeyState(row.state), exportable=bool(row.exportable),
                  **{name: as_utc(getattr(row, name)) for name in
                     ("created_at", "activated_at", "suspended_at", "deactivated_at", "compromised_at",
                      "destroyed_at")})


def _usage(value) -> Usage:
    try:
        return Usage(value)
    except ValueError:
        raise InvalidInput(f"unknown key usage {value!r}; known: {', '.join(Usage)}",
                           f"未知的密钥用途 {value!r}") from None


_LABEL = re.compile(r"[\w.:@/+-]{1,200}")


# ---------------------------------------------------------------- audit of key use

_PENDING = "hsm.key_use"


def _note_use(session: Session, actor: str, action: str, key_id: str, usage: Usage, count: int = 1) -> None:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
        if not event.contains(session, "before_commit", _write_key_use):
            event.listen(session, "before_commit", _write_key_use)
            event.listen(session, "after_transaction_end", _forget_key_use)
    now = utc_now()
    counted = pending.get((actor, action, key_id, usage))
    if counted is None:
        pending[(actor, action, key_id, usage)] = [count, now, now]
    else:
        counted[0] += count
        counted[2] = now


def _write_key_use(session: Session) -> None:
    if session.in_nested_transaction():  # fired for savepoints too; write at the real commit
        return
    write_key_use(session, take_key_use(session))


def take_key_use(session: Session) -> dict:
    """The key uses noted in ``session`` and not written yet, taken out of it for another
    transaction to write (write_key_use): a request that only read hands its signature's
    audit record to trust.db.GroupCommit with the rest of its writes."""
    return session.info.pop(_PENDING, {})


def write_key_use(session: Session, uses: dict) -> None:
    for (actor, action, key_id, usage), (count, first, last) in uses.items():
        audit.append(session, actor, action, key_id, {
            "usage": str(usage), "count": count,
            "first_at": first.isoformat(), "last_at": last.isoformat()})


def _forget_key_use(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


class _Cached:
    """What the sign path needs about a key, and the loaded key once used."""

    __slots__ = ("checked_at", "key", "row", "state", "usages")

    def __init__(self, row, checked_at: float):
        self.row, self.state, self.checked_at = row, KeyState(row.state), checked_at
        self.key: Any = None  # the backend's loaded key (SoftKey, TokenKey), once used
        self.usages = frozenset(Usage(u) for u in row.usages.split())


# ---------------------------------------------------------------- the KeyStore

class KeyStore:
    """Keys behind one interface; ``backends`` by name, new keys go to ``default`` when it
    supports the algorithm and usage, else to ``soft``."""

    def __init__(self, backends: Iterable[Backend], default: str, *, state_ttl: float = 1.0,
                 sessions: sessionmaker | None = None):
        self.backends = {b.name: b for b in backends}
        if default not in self.backends:
            raise InvalidInput(f"no backend named {default!r}", f"没有名为 {default!r} 的后端")
        self.default, self.state_ttl, self.sessions = default, state_ttl, sessions
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyStore(default={self.default!r}, backends={sorted(self.backends)})"

    # -------------------------------------------------------- reading

    def _row(self, session: Session, key_id: str, *, for_update: bool = False):
        if not isinstance(key_id, str):
            raise InvalidInput("a key id is text", "密钥标识必须是文本")
        query = select(hsm_keys).where(hsm_keys.c.id == key_id)
        row = session.execute(query.with_for_update() if for_update else query).one_or_none()
        if row is None:
            raise NotFound(f"no key with id {key_id}", f"找不到标识为 {key_id} 的密钥")
        return row

    def get(self, session: Session, key_id: str) -> KeyRef:
        return _ref(self._row(session, key_id))

    def list(self, session: Session, label: str | None = None, include_destroyed: bool = False) -> list[KeyRef]:
        query = select(hsm_keys).order_by(hsm_keys.c.label, hsm_keys.c.version)
        if label is not None:
            query = query.where(hsm_keys.c.label == label)
        if not include_destroyed:
            query = query.where(hsm_keys.c.state != KeyState.DESTROYED.value)
        return [_ref(row) for row in session.execute(query)]

    def public_key(self, session: Session, ref: KeyRef) -> PublicKey:
        """From the row: works in every state, with the token or KEK away."""
        return load_public_key(self._row(session, ref.id).public_key)

    # -------------------------------------------------------- creating

    def generate(self, session: Session, algorithm: str, label: str, usages, *, exportable: bool = False,
                 actor: str, state: KeyState = KeyState.ACTIVE) -> KeyRef:
        """A new key: a new label gets version 1 (an existing one is rotated, not regenerated)."""
        name = signature_algorithm(algorithm).name
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise InvalidInput("a key label is 1-200 letters, digits or . _ : @ / + -",
                               "密钥标签为 1 至 200 个字母、数字或 . _ : @ / + -")
        usage_set = self._usages(name, usages)
        state = KeyState(state)
        if state not in (KeyState.ACTIVE, KeyState.PRE_ACTIVE):
            raise InvalidInput(f"a new key is active or pre-active, not {state}", f"新密钥只能是启用或预启用状态，不能是 {state}")
        if session.execute(select(hsm_keys.c.id).where(hsm_keys.c.label == label).limit(1)).first():
            raise InvalidInput(f"a key labelled {label!r} exists already; rotate it for a new version",
                               f"标签为 {label!r} 的密钥已存在，请轮换以生成新版本")
        return self._create(session, name, label, 1, usage_set, bool(exportable), state, actor, "key.generate", {})

    def _usages(self, algorithm: str, usages) -> frozenset[Usage]:
        if isinstance(usages, str):
            usages = [usages]
        usage_set = frozenset(_usage(u) for u in usages)
        if not usage_set:
            raise InvalidInput("a key needs at least one usage", "密钥至少要有一种用途")
        if usage_set & DECRYPT_USAGES and usage_set & SIGN_USAGES:
            raise InvalidInput("a key either signs or decrypts, never both (key separation, SP 800-57 §5.2)",
                               "同一密钥不能既签名又解密（密钥分离原则）")
        if usage_set & DECRYPT_USAGES and algorithm != "SM2-with-SM3":
            raise UnsupportedAlgorithm(f"only SM2 keys decrypt here, not {algorithm}", f"此处仅 SM2 密钥可用于解密，{algorithm} 不可")
        return usage_set

    def _create(self, session: Session, algorithm: str, label: str, version: int, usages: frozenset[Usage],
                exportable: bool, state: KeyState, actor: str, action: str, detail: dict) -> KeyRef:
        decrypts = bool(usages & DECRYPT_USAGES)
        backend = self.backends[self.default]
        if not backend.supports(algorithm, decrypts) or (exportable and backend.name != "soft"):
            backend = self.backends["soft"]
        key_id = str(uuid.uuid4())
        now = utc_now()
        with session.begin_nested():  # nothing half-written if any step fails
            material = backend.create(session, key_id, label, version, algorithm, exportable)
            try:
                session.execute(insert(hsm_keys).values(
                    id=key_id, label=label, version=version, backend=backend.name, handle=material.handle,
                    algorithm=algorithm, usages=" ".join(sorted(usages)), state=state.value,
                    exportable=exportable, public_key=material.public_key, wrapped_key=material.wrapped_key,
                    wrap_cipher=material.wrap_cipher, kek_id=material.kek_id, created_at=now,
                    activated_at=now if state == KeyState.ACTIVE else None, state_changed_at=now))
                audit.append(session, actor, action, key_id, {
                    "label": label, "version": version, "algorithm": algorithm, "backend": backend.name,
                    "usages": sorted(usages), "state": state.value, "exportable": exportable, **detail})
            except BaseException as error:
                backend.discard(material.handle)
                if isinstance(error, IntegrityError):
                    raise InvalidInput(f"key {label!r} version {version} was created meanwhile; try again",
                                       f"密钥 {label!r} 第 {version} 版已被同时创建，请重试") from None
                raise
        return self.get(session, key_id)

    def rotate(self, session: Session, label: str, *, actor: str) -> KeyRef:
        """A new version becomes active; the versions before it are deactivated (they still
        verify through public_key, and no longer sign)."""
        rows = session.execute(select(hsm_keys).where(hsm_keys.c.label == label)
                               .order_by(hsm_keys.c.version).with_for_update()).all()
        if not rows:
            raise NotFound(f"no key labelled {label!r}", f"找不到标签为 {label!r} 的密钥")
        latest = rows[-1]
        with session.begin_nested():
            new = self._create(session, latest.algorithm, label, latest.version + 1,
                               frozenset(Usage(u) for u in latest.usages.split()), bool(latest.exportable),
                               KeyState.ACTIVE, actor, "key.rotate", {"previous": latest.id})
            for row in rows:
                if row.state in (KeyState.ACTIVE, KeyState.SUSPENDED):
                    self._transition(session, row, KeyState.DEACTIVATED, actor, f"rotated to version {new.version}")
        return new

    # -------------------------------------------------------- lifecycle

    def set_state(self, session: Session, ref: KeyRef, state: KeyState, *, actor: str, reason: str = "") -> KeyRef:
        state = KeyState(state)
        if state == KeyState.DESTROYED:
            self.destroy(session, ref, actor=actor)
        else:
            self._transition(session, self._row(session, ref.id, for_update=True), state, actor, reason)
        return self.get(session, ref.id)

    def _transition(self, session: Session, row, state: KeyState, actor: str, reason: str) -> None:
        current = KeyState(row.state)
        if state not in TRANSITIONS[current]:
            raise InvalidInput(f"key {row.id} cannot go from {current} to {state}",
                               f"密钥 {row.id} 不能从 {current} 状态变为 {state} 状态")
        now = utc_now()
        values = {"state": state.value, "state_changed_at": now}
        if state in _STAMPS:
            values[_STAMPS[state]] = now
        session.execute(update(hsm_keys).where(hsm_keys.c.id == row.id).values(**values))
        audit.append(session, actor, "key.state", row.id, {"from": current.value, "to": state.value, "reason": reason})
        self._forget(row.id)

    def destroy(self, session: Session, ref: KeyRef, *, actor: str) -> None:
        """Wipe the private key (the wrapped blob, or the token objects); the record and the
        public key stay, so old signatures still verify. An active or suspended key is
        deactivated first (SP 800-57 has no direct step to destroyed from those)."""
        row = self._row(session, ref.id, for_update=True)
        if row.state == KeyState.DESTROYED:
            raise InvalidInput(f"key {row.id} is destroyed already", f"密钥 {row.id} 已销毁")
        with session.begin_nested():
            if row.state in (KeyState.ACTIVE, KeyState.SUSPENDED):
                self._transition(session, row, KeyState.DEACTIVATED, actor, "before destruction")
            backend = self.backends.get(row.backend)
            if backend is None:
                raise KeyUnavailable(f"key {row.id} is held by backend {row.backend!r}, not configured here",
                                     f"密钥 {row.id} 所在的后端 {row.backend!r} 未配置")
            now = utc_now()
            session.execute(update(hsm_keys).where(hsm_keys.c.id == row.id).values(
                state=KeyState.DESTROYED.value, destroyed_at=now, state_changed_at=now,
                **backend.wipe(session, row)))
            audit.append(session, actor, "key.destroy", row.id, {"from": row.state, "backend": row.backend})
        self._forget(row.id)

    def _forget(self, key_id: str) -> None:
        with self._lock:
            self._cache.pop(key_id, None)

    # -------------------------------------------------------- using

    def _usable(self, session: Session, ref: KeyRef, usage: Usage, backend_use: str) -> _Cached:
        cached = self._cache.get(ref.id)
        now = time.monotonic()
        if cached is None or now - cached.checked_at > self.state_ttl:
            row = self._row(session, ref.id)
            fresh = _Cached(row, now)
            if cached is not None and cached.row.backend == row.backend and fresh.state == KeyState.ACTIVE:
                fresh.key = cached.key
            with self._lock:
                self._cache[ref.id] = cached = fresh
        if usage not in cached.usages:
            raise UsageNotPermitted(
                f"key {cached.row.label} v{cached.row.version} ({ref.id}) may not be used for {usage}; "
                f"its usages are {', '.join(sorted(cached.usages))}",
                f"密钥 {cached.row.label} 第 {cached.row.version} 版不能用于“{usage}”，其用途为：{'、'.join(sorted(cached.usages))}")
        if cached.state != KeyState.ACTIVE:
            raise KeyNotActive(f"key {cached.row.label} v{cached.row.version} ({ref.id}) is {cached.state}, "
                               f"not active: it cannot {backend_use}",
                               f"密钥 {cached.row.label} 第 {cached.row.version} 版处于“{cached.state}”状态，不能使用")
        if cached.key is None:
            backend = self.backends.get(cached.row.backend)
            if backend is None:
                raise KeyUnavailable(f"key {ref.id} is held by backend {cached.row.backend!r}, not configured here",
                                     f"密钥 {ref.id} 所在的后端 {cached.row.backend!r} 未配置")
            cached.key = backend.load(session, cached.row)
        return cached

    def sign(self, session: Session, ref: KeyRef, data: bytes, *, usage, prehashed: bool = False,
             signer_id=DEFAULT_ID, actor: str = "service") -> bytes:
        """DER for SM2 and ECDSA, PKCS#1 bytes for RSA, 64 bytes for Ed25519. ``prehashed``:
        ``data`` is SM2's e or the hash (not for Ed25519)."""
        return self.sign_many(session, ref, [data], usage=usage, prehashed=prehashed, signer_id=signer_id,
                              actor=actor)[0]

    def sign_many(self, session: Session, ref: KeyRef, items, *, usage, prehashed: bool = False,
                  signer_id=DEFAULT_ID, actor: str = "service") -> builtins.list[bytes]:  # KeyStore.list shadows list
        """``sign`` for each of ``items``, with the key's state checked once: a batch pays for
        its signatures only. Call ``check_usable`` in an earlier transaction and this touches
        no database while the cached state is fresh (``state_ttl``)."""
        usage = _usage(usage)
        if usage not in SIGN_USAGES:
            raise UsageNotPermitted(f"{usage} is a decryption usage, not a signing one", f"“{usage}”是解密用途，不是签名用途")
        if not all(isinstance(data, (bytes, bytearray, memoryview)) for data in items):
            raise InvalidInput("data to sign must be bytes", "待签数据必须是字节串")
        if not items:
            return []
        cached = self._usable(session, ref, usage, "sign")
        if (Usage.CERTIFICATE in cached.usages and cached.row.label.startswith(ROOT_CA_LABEL_PREFIX)
                and not actor.startswith(APPROVED_ACTOR_PREFIX)):
            raise UsageNotPermitted(
                f"key {cached.row.label} ({ref.id}) is a root CA key: each use needs dual-control approval (key.use-root)",
                f"密钥 {cached.row.label} 是根 CA 密钥，每次使用须经双人批准（key.use-root）")
        sign = cached.key.sign
        try:
            signatures = [sign(bytes(data), prehashed, signer_id) for data in items]
        except KeyUnavailable:
            self._forget(ref.id)
            raise
        _note_use(session, actor, "key.sign", ref.id, usage, len(signatures))
        metrics.signed(usage.value, len(signatures))
        return signatures

    def check_usable(self, session: Session, ref: KeyRef, *, usage) -> None:
        """Check now, reading the database, that the key is active and may be used for
        ``usage`` (KeyNotActive, UsageNotPermitted otherwise)."""
        cached = self._cache.get(ref.id)
        if cached is not None:
            cached.checked_at = float("-inf")  # force the read
        self._usable(session, ref, _usage(usage), "sign")

    def decrypt(self, session: Session, ref: KeyRef, ciphertext: bytes, *, usage, actor: str = "service") -> bytes:
        """Open an SM2 envelope (DER ciphertext)."""
        usage = _usage(usage)
        if usage not in DECRYPT_USAGES:
            raise UsageNotPermitted(f"{usage} is a signing usage, not a decryption one", f"“{usage}”是签名用途，不是解密用途")
        if usage == Usage.ESCROW and not actor.startswith(APPROVED_ACTOR_PREFIX):
            raise UsageNotPermitted(
                f"key {ref.id} opens escrowed keys: each use needs dual-control approval (key.recover)",
                f"密钥 {ref.id} 用于解开托管密钥，每次使用须经双人批准（key.recover）")
        cached = self._usable(session, ref, usage, "decrypt")
        plaintext = cached.key.decrypt(ciphertext)
        _note_use(session, actor, "key.decrypt", ref.id, usage)
        return plaintext

    # -------------------------------------------------------- key escrow

    def generate_escrowed(self, session: Session, *, recipient: SM2PublicKey, escrow_ref: KeyRef,
                          actor: str) -> EscrowedKey:
        """A new SM2 encryption key pair, enveloped to ``recipient`` and to the escrow key
        ``escrow_ref`` (usage escrow, active); the private key is dropped inside hsm/."""
        if not isinstance(recipient, SM2PublicKey):
            raise InvalidInput("an escrowed key is enveloped to an SM2 public key", "托管密钥的接收方须为 SM2 公钥")
        escrow = _ref(self._row(session, escrow_ref.id))
        if Usage.ESCROW not in escrow.usages:
            raise UsageNotPermitted(f"key {escrow.label} ({escrow.id}) is not an escrow key; its usages are "
                                    f"{', '.join(sorted(escrow.usages))}",
                                    f"密钥 {escrow.label} 不是托管密钥，其用途为：{'、'.join(sorted(escrow.usages))}")
        if escrow.state != KeyState.ACTIVE:
            raise KeyNotActive(f"escrow key {escrow.label} ({escrow.id}) is {escrow.state}, not active",
                               f"托管密钥 {escrow.label} 处于“{escrow.state}”状态，不能使用")
        escrowed = self._soft().generate_escrowed(recipient, self.public_key(session, escrow))
        audit.append(session, actor, "key.escrow", escrow.id, {"public_key": escrowed.public_key.to_hex()})
        return escrowed

    def recover_escrowed(self, session: Session, escrow_ref: KeyRef, escrow_blob: bytes, *,
                         recipient: SM2PublicKey, actor: str) -> bytes:
        """Re-envelope an escrowed key to ``recipient``: an approved act only (the escrow
        key decrypts only for an ``approval:`` actor)."""
        if not isinstance(recipient, SM2PublicKey):
            raise InvalidInput("a recovered key is enveloped to an SM2 public key", "恢复密钥的接收方须为 SM2 公钥")
        sealed = envelope.parse(escrow_blob)
        sym_key = self.decrypt(session, escrow_ref, sealed.sym_encrypted_key, usage=Usage.ESCROW, actor=actor)
        return envelope.seal(envelope.unseal(sealed, sym_key), recipient)

    # -------------------------------------------------------- sensitive operations (dual control)

    def _soft(self):
        backend = self.backends.get("soft")
        if backend is None:
            raise UnsupportedAlgorithm("this key store has no software backend and no KEK", "此密钥库没有软件后端和主密钥")
        return backend

    def rotate_kek(self, session: Session, *, actor: str) -> dict:
        """Re-wrap every software key under a new KEK, all in the caller's transaction."""
        with session.begin_nested():
            detail = self._soft().rotate_kek(session)
            audit.append(session, actor, "kek.rotate", detail["to"], detail)
        return detail

    def export_wrapped(self, session: Session, ref: KeyRef, *, actor: str) -> bytes:
        """The key as wrapped under the KEK (JSON), for a backup only a KEK holder can open."""
        row = self._row(session, ref.id)
        if not row.exportable or row.backend != "soft":
            raise InvalidInput(f"key {row.id} was not generated exportable", f"密钥 {row.id} 生成时未设为可导出")
        if row.state == KeyState.DESTROYED:
            raise KeyNotActive(f"key {row.id} is destroyed", f"密钥 {row.id} 已销毁")
        wrapped = self._soft().export(row)
        audit.append(session, actor, "key.export", row.id, {"kek_id": wrapped["kek_id"]})
        return json.dumps({
            "format": "trust-wrapped-key/1", "id": row.id, "label": row.label, "version": row.version,
            "algorithm": row.algorithm, "usages": row.usages.split(), "kek_id": wrapped["kek_id"],
            "wrap_cipher": wrapped["wrap_cipher"], "aad": "trust-hsm wrapped key\\0id\\0version\\0algorithm",
            "wrapped_key": base64.b64encode(wrapped["wrapped_key"]).decode(),
            "public_key": base64.b64encode(row.public_key).decode(),
        }, sort_keys=True).encode()

    # -------------------------------------------------------- readiness

    def check_ready(self, session: Session | None = None) -> None:
        """Raise KeyUnavailable naming what failed (module, token, PIN, KEK file, passphrase)."""
        if session is None and self.sessions is not None:
            with self.sessions() as own:
                return self.check_ready(own)
        for backend in self.backends.values():
            backend.check_ready(session)


# ---------------------------------------------------------------- configuration

@dataclass(frozen=True)
class KeyStoreConfig:
    backend: str = "soft"                      # TRUST_KEYSTORE: soft | pkcs11
    kek_source: str = "file"                   # TRUST_KEK_SOURCE: file | passphrase | pkcs11
    kek_file: Path = Path("var/master.key")    # TRUST_KEK_FILE
    kek_passphrase_file: Path | None = None    # TRUST_KEK_PASSPHRASE_FILE
    kek_cipher: str = "AES-256-GCM"            # TRUST_KEK_CIPHER: AES-256-GCM | SM4-GCM
    pkcs11_module: str | None = None           # TRUST_PKCS11_MODULE
    pkcs11_token_label: str | None = None      # TRUST_PKCS11_TOKEN_LABEL
    pkcs11_pin_file: Path | None = None        # TRUST_PKCS11_PIN_FILE
    sm2_profile: str = "none"                  # TRUST_PKCS11_SM2_PROFILE: none | sansec | ibm-ep11 | mk1
    state_ttl: float = 1.0                     # TRUST_KEY_STATE_TTL (seconds)

    @classmethod
    def from_env(cls, environ=None, home: Path | None = None) -> "KeyStoreConfig":
        env = os.environ if environ is None else environ
        home = Path(env.get("TRUST_HOME", "var")).resolve() if home is None else Path(home)
        backend = env.get("TRUST_KEYSTORE", "soft")
        def optional(name):
            return (Path(env[name]) if env.get(name) else None)
        try:
            ttl = float(env.get("TRUST_KEY_STATE_TTL", "1"))
        except ValueError:
            raise InvalidInput("TRUST_KEY_STATE_TTL must be a number of seconds", "TRUST_KEY_STATE_TTL 必须是秒数") from None
        return cls(backend=backend,
                   kek_source=env.get("TRUST_KEK_SOURCE", "pkcs11" if backend == "pkcs11" else "file"),
                   kek_file=Path(env.get("TRUST_KEK_FILE") or home / "master.key"),
                   kek_passphrase_file=optional("TRUST_KEK_PASSPHRASE_FILE"),
                   kek_cipher=env.get("TRUST_KEK_CIPHER", "AES-256-GCM"),
                   pkcs11_module=env.get("TRUST_PKCS11_MODULE") or None,
                   pkcs11_token_label=env.get("TRUST_PKCS11_TOKEN_LABEL") or None,
                   pkcs11_pin_file=optional("TRUST_PKCS11_PIN_FILE"),
                   sm2_profile=env.get("TRUST_PKCS11_SM2_PROFILE", "none"),
                   state_ttl=ttl)


def open_keystore(settings_or_config=None, session_factory: sessionmaker | None = None) -> KeyStore:
    """Build the KeyStore the configuration asks for. Nothing is opened yet: the token is
    logged in and the KEK read on first use (or by check_ready), so a fault shows as
    KeyUnavailable there, not as a crash at start."""
    from hsm import kek as keks
    from hsm.pkcs11 import Pkcs11Backend, sm2_profile
    from hsm.soft import SoftBackend

    config = settings_or_config
    if not isinstance(config, KeyStoreConfig):
        config = KeyStoreConfig.from_env(home=getattr(config, "home", None))
    if config.backend not in ("soft", "pkcs11"):
        raise InvalidInput(f"TRUST_KEYSTORE must be soft or pkcs11, not {config.backend!r}",
                           f"TRUST_KEYSTORE 必须是 soft 或 pkcs11，不能是 {config.backend!r}")
    token = _token(config) if config.backend == "pkcs11" or config.kek_source == "pkcs11" else None

    kek: keks.KEKSource
    if config.kek_source == "file":
        kek = keks.FileKEK(config.kek_file)
    elif config.kek_source == "passphrase":
        if config.kek_passphrase_file is None:
            raise InvalidInput("TRUST_KEK_SOURCE=passphrase needs TRUST_KEK_PASSPHRASE_FILE",
                               "口令主密钥需要配置 TRUST_KEK_PASSPHRASE_FILE")
        try:
            passphrase = config.kek_passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise KeyUnavailable(f"the KEK passphrase file {config.kek_passphrase_file} cannot be read ({e.strerror})",
                                 f"无法读取主密钥口令文件 {config.kek_passphrase_file}（{e.strerror}）") from None
        kek = keks.PassphraseKEK(passphrase)
    elif config.kek_source == "pkcs11":
        if config.kek_cipher != keks.AES_GCM:
            raise InvalidInput(f"a KEK in a PKCS#11 token wraps with {keks.AES_GCM} only, not {config.kek_cipher}",
                               f"PKCS#11 设备中的主密钥只支持 {keks.AES_GCM}")
        kek = keks.TokenKEK(token or _token(config))
    else:
        raise InvalidInput(f"TRUST_KEK_SOURCE must be file, passphrase or pkcs11, not {config.kek_source!r}",
                           "TRUST_KEK_SOURCE 必须是 file、passphrase 或 pkcs11")
    backends: list[Backend] = [SoftBackend(kek, config.kek_cipher)]
    if config.backend == "pkcs11":
        backends.append(Pkcs11Backend(token or _token(config), sm2_profile(config.sm2_profile)))
    return KeyStore(backends, config.backend, state_ttl=config.state_ttl, sessions=session_factory)


def _token(config: KeyStoreConfig) -> "Token":
    from hsm.pkcs11 import Token  # only with PKCS#11 configured: python-pkcs11 loads nothing before
    module, label, pin_file = config.pkcs11_module, config.pkcs11_token_label, config.pkcs11_pin_file
    if not (module and label and pin_file):
        missing = [name for name, value in (("TRUST_PKCS11_MODULE", module), ("TRUST_PKCS11_TOKEN_LABEL", label),
                                            ("TRUST_PKCS11_PIN_FILE", pin_file)) if not value]
        raise InvalidInput(f"PKCS#11 needs {', '.join(missing)}", f"PKCS#11 需要配置 {', '.join(missing)}")
    return Token(module, label, pin_file)


def initialise_keystore(session: Session, settings) -> Path | None:
    """What `trustctl init` does for key custody: create the master key file (mode 0600)
    when the KEK is a file and none exists, then check the configured key store opens.
    Returns the master key file it created, if any."""
    from hsm.kek import create_master_key_file

    config = KeyStoreConfig.from_env(home=settings.home)
    created = None
    if config.kek_source == "file" and not config.kek_file.exists():
        create_master_key_file(config.kek_file)
        created = config.kek_file
    open_keystore(config).check_ready(session)
    return created
