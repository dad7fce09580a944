"""`trustctl backup create|verify|restore` (issue #20 item 3): a demo home with a sealed
document and an issued licence, backed up, restored into a fresh home with only its KEK
file, and served: the earlier files verify VALID against the restored service (its CA
answering the chain and OCSP), and its audit chain verifies. Then each way a backup can be
wrong: altered, re-described, another installation's, restored over a home in use."""

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from bench.postgres import PG_USER, admin_connection, free_port
from hsm.kek import create_master_key_file
from trust.db import make_engine
from trust.duties import Duty

from tests.custody import enrol_administrator
from tests.serving import clean_env, trustctl, trustctl_serve

ROOT = Path(__file__).resolve().parent.parent
VERDICT = re.compile(r"^结果 Result: \S+ (VALID|INVALID|INDETERMINATE)", re.MULTILINE)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A served demo home's backup, and the files it issued before."""
    tmp = tmp_path_factory.mktemp("backup")
    port = free_port()
    env = clean_env(TRUST_HOME=str(tmp / "home"), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}",
                    TRUST_REVOCATION_HOSTS=f"127.0.0.1:{port}")
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    licence_id = re.search(r"Demo business licence: (\S+)", init.stdout).group(1)
    assert trustctl(env, "licence", "file", licence_id, "--out", str(tmp / "licence.ofd")).returncode == 0
    shutil.copy(tmp / "home" / "samples" / "demo-sealed.ofd", tmp / "sealed.ofd")
    sysadmin = str(tmp / "home" / "officers" / "sysadmin-1.pem")
    refused = trustctl(env, "backup", "create", str(tmp / "refused"), "--credential",
                       str(tmp / "home" / "officers" / "officer-1.pem"))
    assert refused.returncode == 1 and "system administrator" in refused.stderr and not (tmp / "refused").exists()
    done = trustctl(env, "backup", "create", str(tmp / "backup"), "--credential", sysadmin)
    assert done.returncode == 0, done.stderr
    return {"dir": tmp, "env": env, "port": port, "sysadmin": sysadmin}


def _fresh_home(made, name: str) -> dict:
    """An empty home with only the KEK file the operator brought."""
    home = made["dir"] / name
    home.mkdir(mode=0o700)
    shutil.copy(made["dir"] / "home" / "master.key", home / "master.key")
    return {**made["env"], "TRUST_HOME": str(home)}


def test_a_restored_home_serves_and_verifies_what_was_issued_before(made):
    tmp = made["dir"]
    backup = tmp / "backup"
    assert sorted(p.name for p in backup.iterdir()) == ["MANIFEST.json", "trust.db"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in [backup, *backup.iterdir()])  # personal data: owner only
    manifest = json.loads((backup / "MANIFEST.json").read_text())["manifest"]
    assert manifest["keys"] and all("wrapped" not in json.dumps(k) for k in manifest["keys"])
    assert not any(name.endswith(".key") or name.endswith(".pem") for name in manifest["files"])

    env = _fresh_home(made, "restored")
    checked = trustctl(env, "backup", "verify", str(backup), "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["audit_seq"] == manifest["audit_head"]["seq"]
    restored = trustctl(env, "backup", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert (made["dir"] / "restored" / "trust.db").stat().st_mode & 0o077 == 0
    audit = trustctl(env, "audit", "verify", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout)["ok"], audit.stdout
    with trustctl_serve(env, made["port"], tmp / "restored.log"):
        for name in ("sealed.ofd", "licence.ofd"):
            verified = trustctl(env, "verify", str(tmp / name))
            assert VERDICT.search(verified.stdout).group(1) == "VALID", (name, verified.stdout[-2000:])
    again = trustctl(env, "backup", "restore", str(backup))
    assert again.returncode == 1 and "not empty" in again.stderr  # never over a home in use


def test_an_altered_or_foreign_backup_is_refused_and_nothing_is_restored(made, tmp_path):
    tmp = made["dir"]
    env = _fresh_home(made, "victim")
    victim = tmp / "victim"

    altered = tmp_path / "altered"
    shutil.copytree(tmp / "backup", altered)
    data = bytearray((altered / "trust.db").read_bytes())
    data[len(data) // 2] ^= 0x01
    (altered / "trust.db").write_bytes(bytes(data))
    refused = trustctl(env, "backup", "restore", str(altered))
    assert refused.returncode == 1 and "altered" in refused.stderr

    redescribed = tmp_path / "redescribed"  # the manifest changed to match: its signature fails
    shutil.copytree(tmp / "backup", redescribed)
    whole = json.loads((redescribed / "MANIFEST.json").read_text())
    whole["manifest"]["created_at"] = "2020-01-01T00:00:00+00:00"
    (redescribed / "MANIFEST.json").write_text(json.dumps(whole))
    refused = trustctl(env, "backup", "verify", str(redescribed))
    assert refused.returncode == 1 and "signature" in refused.stderr

    assert trustctl(env, "backup", "verify", str(tmp_path)).returncode == 3  # no backup there
    assert sorted(p.name for p in victim.iterdir()) == ["master.key"]  # nothing half restored

    foreign = clean_env(TRUST_HOME=str(tmp_path / "foreign"))
    assert trustctl(foreign, "init").returncode == 0  # another installation, with its own KEK
    for path in (tmp_path / "foreign").iterdir():
        if path.name != "master.key":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    refused = trustctl(foreign, "backup", "restore", str(tmp / "backup"))
    assert refused.returncode == 1 and "another installation" in refused.stderr, refused.stderr
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["master.key"]

    busy = trustctl(made["env"], "backup", "create", str(tmp / "backup"), "--credential", made["sysadmin"])
    assert busy.returncode == 1 and "not empty" in busy.stderr  # never over an earlier backup


def test_a_full_disk_leaves_no_partial_backup(made, tmp_path):
    """The disk fills at 400 kB (RLIMIT_FSIZE: writes past it fail as on a full disk)."""
    full = subprocess.run([sys.executable, "-c", (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))\n"
        "from api.cli import main\n"
        "main()"), "backup", "create", str(tmp_path / "full"), "--credential", made["sysadmin"]],
        env=made["env"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert full.returncode == 1 and "nothing was kept" in full.stderr, full.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_postgresql_home_goes_through_pg_dump_into_an_empty_database(postgres_url, tmp_path):
    port = make_url(postgres_url).port
    names = [f"b_{uuid.uuid4().hex[:12]}_{role}" for role in ("source", "target", "spare")]
    with admin_connection(port) as admin:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
    source, target, spare = (f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{name}" for name in names)
    try:
        env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_DATABASE_URL=source)
        assert trustctl(env, "init").returncode == 0
        sysadmin = enrol_administrator(tmp_path / "home", "sysadmin-1", Duty.SYSTEM, db_url=source)
        done = trustctl(env, "backup", "create", str(tmp_path / "backup"), "--credential", str(sysadmin))
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["MANIFEST.json", "trust.pgdump"]
        keys = json.loads(trustctl(env, "key", "list", "--json").stdout)

        (tmp_path / "new").mkdir()
        shutil.copy(tmp_path / "home" / "master.key", tmp_path / "new" / "master.key")
        new = clean_env(TRUST_HOME=str(tmp_path / "new"), TRUST_DATABASE_URL=target)
        checked = trustctl(new, "backup", "verify", str(tmp_path / "backup"))
        assert checked.returncode == 0, checked.stderr
        restored = trustctl(new, "backup", "restore", str(tmp_path / "backup"))
        assert restored.returncode == 0, restored.stderr
        audit = trustctl(new, "audit", "verify", "--json")
        assert audit.returncode == 0 and json.loads(audit.stdout)["ok"], audit.stdout
        assert [k["id"] for k in json.loads(trustctl(new, "key", "list", "--json").stdout)] == [k["id"] for k in keys]
        again = trustctl(new, "backup", "restore", str(tmp_path / "backup"))
        assert again.returncode == 1 and "not empty" in again.stderr

        (tmp_path / "foreign").mkdir()  # another installation's KEK: loaded, refused, emptied again
        create_master_key_file(tmp_path / "foreign" / "master.key")
        foreign = clean_env(TRUST_HOME=str(tmp_path / "foreign"), TRUST_DATABASE_URL=spare)
        refused = trustctl(foreign, "backup", "restore", str(tmp_path / "backup"))
        assert refused.returncode == 1 and "another installation" in refused.stderr, refused.stderr
        engine = make_engine(spare, create=False)
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
        engine.dispose()

        dump = tmp_path / "backup" / "trust.pgdump"
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0x01
        dump.write_bytes(bytes(data))
        spare_env = {**new, "TRUST_DATABASE_URL": spare}
        refused = trustctl(spare_env, "backup", "restore", str(tmp_path / "backup"))
        assert refused.returncode == 1 and "altered" in refused.stderr
        with admin_connection(port) as admin:
            left = [row[0] for row in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE '%_check_%'")]
        assert left == []  # the scratch database of verify is gone
    finally:
        with admin_connection(port) as admin:
            for name in names:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
