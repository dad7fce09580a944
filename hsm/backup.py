"""Backup and restore of the service's state (issue #20 item 3).

A backup is a directory: the database as one consistent snapshot (SQLite through its
online backup API, so writers may go on meanwhile) and ``MANIFEST.json``: the installation
(the hash of its first audit record), the audit chain's head, the keys in custody (id,
label, state, the KEK that wraps each: never the KEK itself, never an unwrapped key), each
file's SHA-256, and a signature over all of it by the service's audit key
(hsm/checkpoints.py). Everything the service knows is in the database, so one snapshot is
consistent with the key store by construction; the officers' credentials and the KEK are
kept by their holders, not in backups.

``verify`` opens the snapshot read-only, walks its audit chain to the head the manifest
names, checks the signed checkpoints, unwraps every software key with the KEK this host
holds (a backup of another installation, or keys swapped in by hand, fail here: their
wrapping is bound to this KEK) and checks the manifest's signature with the audit key so
unwrapped. ``restore`` verifies first, copies the snapshot into the home under a temporary
name and renames it into place last, so a home is never left half restored.

PostgreSQL (pg_dump) is not done yet: such a home is refused with a clear message.
"""

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from hsm import checkpoints
from hsm.keystore import KeyStore, Usage
from hsm.models import hsm_keys
from trust import audit
from trust.audit import canonical_json, utc_now
from trust.db import make_engine, session_factory
from trust.errors import InvalidInput, InvalidSignature, NotFound, TrustError
from trust.keys import load_public_key

FORMAT = "trust-service-backup/1"
MANIFEST, DATABASE = "MANIFEST.json", "trust.db"
CHUNK = 1 << 20


class BackupInvalid(TrustError):
    """A backup that is not whole, not ours, or altered."""

    code = "backup_invalid"


@dataclass(frozen=True)
class Verified:
    installation: str
    audit_seq: int
    audit_hash: str
    keys: int
    created_at: str


def _sqlite_file(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise InvalidInput(en="backing up a PostgreSQL database (pg_dump) is not supported yet; "
                              "use pg_dump and this tool once it is",
                           zh="暂不支持备份 PostgreSQL 数据库（pg_dump），请直接使用 pg_dump")
    return Path(url.database)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _empty_target(path: Path, allowed=()) -> None:
    if path.exists() and (not path.is_dir() or any(p.name not in allowed for p in path.iterdir())):
        raise InvalidInput(en=f"{path} is not empty: a backup goes into a new directory, a restore into an empty home",
                           zh=f"{path} 不是空目录：备份须写入新目录，恢复须恢复到空的主目录")


def _facts(session: Session) -> dict:
    first = session.execute(select(audit.audit_log.c.hash).order_by(audit.audit_log.c.seq).limit(1)).scalar()
    head = audit.head(session)
    keys = session.execute(select(hsm_keys.c.id, hsm_keys.c.label, hsm_keys.c.version, hsm_keys.c.state,
                                  hsm_keys.c.backend, hsm_keys.c.kek_id).order_by(hsm_keys.c.id)).all()
    return {"installation": first, "audit_head": {"seq": head.seq, "hash": head.hash},
            "keys": [dict(row._mapping) for row in keys]}


def create(database_url: str, keystore: KeyStore, target: Path, *, actor: str) -> dict:
    """Write a backup of the database at ``database_url`` into the new directory ``target``."""
    source = _sqlite_file(database_url)
    target = Path(target)
    _empty_target(target)
    partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    partial.mkdir(mode=0o700, parents=True)
    partial.chmod(0o700)
    try:
        engine = make_engine(database_url, create=False)
        try:
            with session_factory(engine)() as session:  # record the act first: the backup holds it
                audit.append(session, actor, "backup.create", str(target), {})
                checkpoints.make_checkpoint(session, keystore)
                session.commit()
                snapshot = partial / DATABASE
                snapshot.touch(mode=0o600)
                live, copy = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(snapshot)
                try:
                    live.backup(copy)
                finally:
                    live.close()
                    copy.close()
                manifest = {"format": FORMAT, "created_at": utc_now().isoformat(), "database": "sqlite",
                            "files": {DATABASE: _sha256(snapshot)}} | _snapshot_facts(snapshot)
                key = checkpoints.signing_key(session, keystore)
                body = canonical_json(manifest).encode()
                signature = keystore.sign(session, key, body, usage=Usage.AUDIT, actor=actor)
                session.commit()
        finally:
            engine.dispose()
        fd = os.open(partial / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps({"manifest": manifest, "signature": {"key_id": key.id, "value": signature.hex()}},
                               ensure_ascii=False, indent=1) + "\n")
        for path in partial.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackupInvalid(en=f"the backup could not be written to {target}: {error.strerror}; nothing was kept",
                            zh=f"无法写入备份到 {target}：{error.strerror}；未保留任何部分") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _snapshot_facts(snapshot: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="trust-backup-") as scratch:  # no lock file beside the snapshot
        shutil.copyfile(snapshot, Path(scratch) / DATABASE)
        engine = make_engine(f"sqlite:///{Path(scratch) / DATABASE}", create=False)
        try:
            with session_factory(engine)() as session:
                return _facts(session)
        finally:
            engine.dispose()


def _read_manifest(directory: Path) -> tuple[dict, dict]:
    try:
        raw = (Path(directory) / MANIFEST).read_bytes()
    except OSError as error:
        raise NotFound(en=f"{directory} holds no backup ({MANIFEST}: {error.strerror})",
                       zh=f"{directory} 中没有备份（{MANIFEST}：{error.strerror}）") from None
    try:
        whole = json.loads(raw[:1 << 20])
        manifest, signature = whole["manifest"], whole["signature"]
        if manifest["format"] != FORMAT or not isinstance(manifest["files"], dict):
            raise ValueError(manifest["format"])
    except (ValueError, KeyError, TypeError):
        raise BackupInvalid(en=f"{MANIFEST} in {directory} is not a backup manifest of this service ({FORMAT})",
                            zh=f"{directory} 中的 {MANIFEST} 不是本服务的备份清单") from None
    return manifest, signature


def verify(directory: Path, keystore: KeyStore) -> Verified:
    """Check a backup as a restore would; BackupInvalid naming the first thing wrong."""
    with tempfile.TemporaryDirectory(prefix="trust-backup-") as scratch:
        return _verified_copy(Path(directory), keystore, Path(scratch) / DATABASE)


def _verified_copy(directory: Path, keystore: KeyStore, copy: Path) -> Verified:
    """Copy the backup's database to ``copy`` and check that copy, so what is restored is
    exactly what was checked (and the backup itself is only read)."""
    manifest, signature = _read_manifest(directory)
    for name in sorted(manifest["files"]):
        if "/" in name or not (directory / name).is_file():
            raise BackupInvalid(en=f"the backup lacks {name}", zh=f"备份缺少文件 {name}")
    if set(manifest["files"]) != {DATABASE}:
        raise BackupInvalid(en=f"the manifest lists files other than {DATABASE}", zh=f"清单列出了 {DATABASE} 以外的文件")
    copy.touch(mode=0o600)
    shutil.copyfile(directory / DATABASE, copy)
    if _sha256(copy) != manifest["files"][DATABASE]:
        raise BackupInvalid(en=f"{DATABASE} in the backup was altered (its SHA-256 is not the manifest's)",
                            zh=f"备份中的 {DATABASE} 已被改动（SHA-256 与清单不符）")
    engine = make_engine(f"sqlite:///{copy}", create=False)
    try:
        with session_factory(engine)() as session:
            _check_snapshot(session, keystore, manifest, signature)
    except TrustError:
        raise
    except Exception as error:  # not an SQLite database of ours, whatever its digest says
        raise BackupInvalid(en=f"{DATABASE} in the backup cannot be read: {error.__class__.__name__}",
                            zh=f"无法读取备份中的 {DATABASE}") from None
    finally:
        engine.dispose()
    head = manifest["audit_head"]
    return Verified(manifest["installation"], head["seq"], head["hash"], len(manifest["keys"]), manifest["created_at"])


def _check_snapshot(session: Session, keystore: KeyStore, manifest: dict, signature: dict) -> None:
    report = audit.verify_chain(session)
    if not report.ok:
        raise BackupInvalid(en=f"the audit chain in the backup is broken: {report.en}",
                            zh=f"备份中的审计链已断：{report.zh}")
    facts = _facts(session)
    if {k: manifest.get(k) for k in facts} != facts:
        raise BackupInvalid(en="the database in the backup is not the one its manifest describes",
                            zh="备份中的数据库与其清单不符")
    broken = [f for f in checkpoints.verify_checkpoints(session, checkpoints.Policy.from_env()) if f.fails]
    if broken:
        raise BackupInvalid(en=f"a signed checkpoint of the backup fails: {broken[0].en}",
                            zh=f"备份的签名检查点不通过：{broken[0].zh}")
    soft = keystore.backends.get("soft")
    rows = session.execute(select(hsm_keys).where(hsm_keys.c.backend == "soft", hsm_keys.c.wrapped_key.is_not(None))
                           ).all()
    for row in rows:
        try:
            if soft is None:
                raise TrustError("no software key store here")
            soft.unwrap(row)
        except TrustError:
            raise BackupInvalid(
                en=f"key {row.id} ({row.label}) in the backup does not open with this host's KEK: the backup is "
                   f"another installation's, or its keys were replaced",
                zh=f"备份中的密钥 {row.id}（{row.label}）无法用本机的密钥加密密钥解开：备份来自其他安装，或其密钥被替换")
    key = session.execute(select(hsm_keys).where(hsm_keys.c.id == signature.get("key_id"))).one_or_none()
    try:
        if key is None or key.label != checkpoints.LABEL:
            raise InvalidSignature("not the audit key")
        load_public_key(key.public_key).verify(bytes.fromhex(signature["value"]),
                                               canonical_json(manifest).encode())
    except (InvalidSignature, InvalidInput, ValueError, TypeError):
        raise BackupInvalid(en="the manifest's signature by the service's audit key does not verify",
                            zh="清单上审计密钥的签名验证不通过") from None


def restore(directory: Path, database_url: str, keystore: KeyStore, *, allowed=()) -> Verified:
    """Verify the backup, then put its database in place of none: the home must be empty
    but for ``allowed`` (the KEK file the operator brought). The checked copy is renamed
    into place last, after the restore is recorded in its audit log."""
    target = _sqlite_file(database_url)
    _empty_target(target.parent, allowed=allowed)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".restoring-", dir=target.parent))
    try:
        copy = scratch / DATABASE
        verified = _verified_copy(Path(directory), keystore, copy)
        engine = make_engine(f"sqlite:///{copy}", create=False)
        try:
            with session_factory(engine)() as session:
                audit.append(session, "trustctl", "backup.restore", str(directory),
                             {"installation": verified.installation, "audit_seq": verified.audit_seq,
                              "created_at": verified.created_at})
                session.commit()
        finally:
            engine.dispose()
        with open(copy, "rb") as f:
            os.fsync(f.fileno())
        os.replace(copy, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return verified
