"""Backup and restore of the service's state (issue #20 item 3).

A backup is a directory: the database as one consistent snapshot (SQLite through its
online backup API; PostgreSQL through ``pg_dump`` in a snapshot exported from the
transaction that reads the manifest's facts; writers go on meanwhile) and ``MANIFEST.json``: the installation
(the hash of its first audit record), the audit chain's head, the keys in custody (id,
label, state, the KEK that wraps each: never the KEK itself, never an unwrapped key), each
file's SHA-256, and a signature over all of it by the service's audit key
(hsm/checkpoints.py). Everything the service knows is in the database, so one snapshot is
consistent with the key store by construction; the officers' credentials and the KEK are
kept by their holders, not in backups.

``verify`` opens a private copy of the snapshot (a PostgreSQL dump: restored into a
scratch database on the configured server, dropped afterwards), walks its audit chain to the head the manifest
names, checks the signed checkpoints, unwraps every software key with the KEK this host
holds (a backup of another installation, or keys swapped in by hand, fail here: their
wrapping is bound to this KEK) and checks the manifest's signature with the audit key so
unwrapped. ``restore`` into SQLite checks a private copy and renames exactly that copy into
the empty home last; into PostgreSQL, ``pg_restore --single-transaction`` loads the empty
target database whole or not at all, and a load that then fails the checks is emptied
again. Either way nothing is left half restored.
"""

import contextlib
import glob
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from hsm import checkpoints
from hsm.keystore import KeyStore, Usage
from hsm.models import hsm_keys
from trust import audit
from trust.audit import canonical_json
from trust.clock import utc_now
from trust.db import make_engine, session_factory
from trust.errors import InvalidInput, InvalidSignature, NotFound, TrustError
from trust.keys import load_public_key
from trust.sm2 import SM2PublicKey

FORMAT = "trust-service-backup/1"
MANIFEST, DATABASE, DUMP = "MANIFEST.json", "trust.db", "trust.pgdump"
SNAPSHOTS = {"sqlite": DATABASE, "postgresql": DUMP}
CHUNK = 1 << 20
TOOL_TIMEOUT_S = 6 * 3600  # a province's database takes a while; a hung tool must still end


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


def _kind(database_url: str) -> str:
    kind = make_url(database_url).get_backend_name()
    if kind not in SNAPSHOTS:
        raise InvalidInput(en=f"cannot back up a {kind} database", zh=f"无法备份 {kind} 数据库")
    return kind


def _sqlite_file(database_url: str) -> Path:
    return Path(make_url(database_url).database or "")


def _libpq(database_url: str) -> tuple[str, dict]:
    """The URL for libpq's tools without the password, which goes in their environment
    (an argument would show in ps)."""
    url = make_url(database_url)
    env = dict(os.environ) | ({"PGPASSWORD": url.password} if url.password else {})
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _pg_tool(name: str, *args: str, env: dict) -> None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        raise InvalidInput(en=f"{name} is not installed (Debian: apt-get install postgresql-client)",
                           zh=f"未安装 {name}（Debian：apt-get install postgresql-client）")
    try:
        done = subprocess.run([found, *args], env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BackupInvalid(en=f"{name} did not finish within {TOOL_TIMEOUT_S} s", zh=f"{name} 超时未完成") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise BackupInvalid(en=f"{name} failed: {detail[0][:300]}", zh=f"{name} 执行失败：{detail[0][:300]}")


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


def _facts(session: Session | Connection) -> dict:
    first = session.execute(select(audit.audit_log.c.hash).order_by(audit.audit_log.c.seq).limit(1)).scalar()
    head = audit.head(session)
    keys = session.execute(select(hsm_keys.c.id, hsm_keys.c.label, hsm_keys.c.version, hsm_keys.c.state,
                                  hsm_keys.c.backend, hsm_keys.c.kek_id).order_by(hsm_keys.c.id)).all()
    return {"installation": first, "audit_head": {"seq": head.seq, "hash": head.hash},
            "keys": [dict(row._mapping) for row in keys]}


def create(database_url: str, keystore: KeyStore, target: Path, *, actor: str) -> dict:
    """Write a backup of the database at ``database_url`` into the new directory ``target``."""
    kind = _kind(database_url)
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
                snapshot = partial / SNAPSHOTS[kind]
                snapshot.touch(mode=0o600)
                if kind == "sqlite":
                    facts = _sqlite_snapshot(_sqlite_file(database_url), snapshot)
                else:
                    facts = _pg_snapshot(engine, database_url, snapshot)
                manifest = {"format": FORMAT, "created_at": utc_now().isoformat(), "database": kind,
                            "files": {snapshot.name: _sha256(snapshot)}} | facts
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
    except (OSError, sqlite3.Error) as error:  # a full disk shows as either
        shutil.rmtree(partial, ignore_errors=True)
        reason = getattr(error, "strerror", None) or str(error)
        raise BackupInvalid(en=f"the backup could not be written to {target}: {reason}; nothing was kept",
                            zh=f"无法写入备份到 {target}：{reason}；未保留任何部分") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _sqlite_snapshot(source: Path, snapshot: Path) -> dict:
    live, copy = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(snapshot)
    try:
        live.backup(copy)
    finally:
        live.close()
        copy.close()
    with tempfile.TemporaryDirectory(prefix="trust-backup-") as scratch:  # no lock file beside the snapshot
        shutil.copyfile(snapshot, Path(scratch) / DATABASE)
        engine = make_engine(f"sqlite:///{Path(scratch) / DATABASE}", create=False)
        try:
            with engine.connect() as connection:
                return _facts(connection)
        finally:
            engine.dispose()


def _pg_snapshot(engine, database_url: str, snapshot: Path) -> dict:
    """pg_dump inside the snapshot of the transaction that reads the facts: both see the
    same database, however many writers go on."""
    url, env = _libpq(database_url)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        with connection.begin():
            exported = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = _facts(connection)
            _pg_tool("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={exported}",
                     f"--file={snapshot}", f"--dbname={url}", env=env)
    snapshot.chmod(0o600)
    return facts


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


def verify(directory: Path, keystore: KeyStore, database_url: str) -> Verified:
    """Check a backup as a restore would; BackupInvalid naming the first thing wrong. A
    PostgreSQL backup is loaded into a scratch database on the server of ``database_url``."""
    directory = Path(directory)
    with tempfile.TemporaryDirectory(prefix="trust-backup-") as scratch:
        manifest, signature, copy = _checked_copy(directory, Path(scratch))
        if manifest["database"] == "sqlite":
            return _check_sqlite(copy, keystore, manifest, signature)
        if _kind(database_url) != "postgresql":
            raise InvalidInput(en="checking a PostgreSQL backup needs a PostgreSQL server: set TRUST_DATABASE_URL",
                               zh="检查 PostgreSQL 备份需要 PostgreSQL 服务器，请设置 TRUST_DATABASE_URL")
        with _scratch_database(database_url) as scratch_url:
            return _load_and_check(copy, scratch_url, keystore, manifest, signature)


def _checked_copy(directory: Path, scratch: Path) -> tuple[dict, dict, Path]:
    """The manifest, and a private copy of the snapshot whose digest is the manifest's, so
    what is restored is exactly what was checked (and the backup itself is only read)."""
    manifest, signature = _read_manifest(directory)
    name = SNAPSHOTS.get(str(manifest.get("database")))
    if name is None or set(manifest["files"]) != {name}:
        raise BackupInvalid(en="the manifest names no snapshot this service makes", zh="清单中没有本服务可识别的快照")
    if not (directory / name).is_file():
        raise BackupInvalid(en=f"the backup lacks {name}", zh=f"备份缺少文件 {name}")
    copy = scratch / name
    copy.touch(mode=0o600)
    shutil.copyfile(directory / name, copy)
    if _sha256(copy) != manifest["files"][name]:
        raise BackupInvalid(en=f"{name} in the backup was altered (its SHA-256 is not the manifest's)",
                            zh=f"备份中的 {name} 已被改动（SHA-256 与清单不符）")
    return manifest, signature, copy


def _check_sqlite(copy: Path, keystore: KeyStore, manifest: dict, signature: dict) -> Verified:
    engine = make_engine(f"sqlite:///{copy}", create=False)
    try:
        with session_factory(engine)() as session:
            _check_snapshot(session, keystore, manifest, signature)
    except TrustError:
        raise
    except Exception as error:  # not an SQLite database of ours, whatever its digest says
        raise BackupInvalid(en=f"{copy.name} in the backup cannot be read: {error.__class__.__name__}",
                            zh=f"无法读取备份中的 {copy.name}") from None
    finally:
        engine.dispose()
    return _verified(manifest)


def _load_and_check(dump: Path, database_url: str, keystore: KeyStore, manifest: dict, signature: dict) -> Verified:
    """pg_restore the dump into the empty database whole or not at all, then check it there."""
    url, env = _libpq(database_url)
    _pg_tool("pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
             f"--dbname={url}", str(dump), env=env)
    engine = make_engine(database_url, create=False)
    try:
        with session_factory(engine)() as session:
            _check_snapshot(session, keystore, manifest, signature)
    finally:
        engine.dispose()
    return _verified(manifest)


@contextlib.contextmanager
def _scratch_database(database_url: str):
    url = make_url(database_url)
    name = f"{url.database}_check_{secrets.token_hex(4)}"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False), create=False)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _verified(manifest: dict) -> Verified:
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
            soft.load(session, row)  # unwrapped with this host's KEK, then dropped
        except TrustError:
            raise BackupInvalid(
                en=f"key {row.id} ({row.label}) in the backup does not open with this host's KEK: the backup is "
                   f"another installation's, or its keys were replaced",
                zh=f"备份中的密钥 {row.id}（{row.label}）无法用本机的密钥加密密钥解开：备份来自其他安装，或其密钥被替换"
            ) from None
    key = session.execute(select(hsm_keys).where(hsm_keys.c.id == signature.get("key_id"))).one_or_none()
    try:
        if key is None or key.label != checkpoints.LABEL:
            raise InvalidSignature("not the audit key")
        audit_key = load_public_key(key.public_key)
        if not isinstance(audit_key, SM2PublicKey):  # checkpoints.ALGORITHM
            raise InvalidSignature("the audit key is not SM2")
        audit_key.verify(bytes.fromhex(signature["value"]), canonical_json(manifest).encode())
    except (InvalidSignature, InvalidInput, ValueError, TypeError):
        raise BackupInvalid(en="the manifest's signature by the service's audit key does not verify",
                            zh="清单上审计密钥的签名验证不通过") from None


def restore(directory: Path, database_url: str, keystore: KeyStore, *, allowed=()) -> Verified:
    """Verify the backup and put it in place of nothing: an SQLite home empty but for
    ``allowed`` (the KEK file the operator brought), or a PostgreSQL database without tables.
    The restore is recorded in the restored audit log."""
    kind = _kind(database_url)
    directory = Path(directory)
    if kind == "sqlite":
        target = _sqlite_file(database_url)
        _empty_target(target.parent, allowed=allowed)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".restoring-", dir=target.parent))
    else:
        _empty_database(database_url)
        scratch = Path(tempfile.mkdtemp(prefix="trust-restoring-"))
    try:
        manifest, signature, copy = _checked_copy(directory, scratch)
        if manifest["database"] != kind:
            raise BackupInvalid(en=f"this is a {manifest['database']} backup; the service here uses {kind}",
                                zh=f"这是 {manifest['database']} 备份，而本机使用 {kind}")
        if kind == "sqlite":
            verified = _check_sqlite(copy, keystore, manifest, signature)
            _record_restore(f"sqlite:///{copy}", directory, verified)
            with open(copy, "rb") as f:
                os.fsync(f.fileno())
            os.replace(copy, target)
        else:
            try:
                verified = _load_and_check(copy, database_url, keystore, manifest, signature)
            except TrustError:
                _empty_again(database_url)
                raise
            _record_restore(database_url, directory, verified)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return verified


def _record_restore(database_url: str, directory: Path, verified: Verified) -> None:
    engine = make_engine(database_url, create=False)
    try:
        with session_factory(engine)() as session:
            audit.append(session, "trustctl", "backup.restore", str(directory),
                         {"installation": verified.installation, "audit_seq": verified.audit_seq,
                          "created_at": verified.created_at})
            session.commit()
    finally:
        engine.dispose()


def _empty_database(database_url: str) -> None:
    engine = make_engine(database_url, create=False)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise InvalidInput(en=f"the database {make_url(database_url).database} is not empty ({len(tables)} tables): "
                              f"a restore goes into a new, empty database",
                           zh=f"数据库 {make_url(database_url).database} 不是空的（{len(tables)} 张表），须恢复到新的空数据库")


def _empty_again(database_url: str) -> None:
    """Undo a load that failed its checks: the database is as empty as it was."""
    engine = make_engine(database_url, create=False)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
