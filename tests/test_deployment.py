"""Issue #20 item 6: the deployment files are well-formed and say what the README says —
a container that runs as a non-root user on a read-only root with its state in a volume, a
compose file with PostgreSQL, two instances and a reverse proxy that production mode
accepts, systemd units for a plain host. No container runtime is needed: the files are
parsed (YAML by PyYAML, units as INI) and checked against the repository and our settings."""

import configparser
import re
from pathlib import Path

import yaml

from api import production
from trust.config import load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def _interpolated(value: str) -> str:
    """Compose's ${NAME:?message}, as an operator's deploy/.env would fill it."""
    given = {"TRUST_PUBLIC_URL": "https://trust.province.gov.cn", "TRUST_POLICY_OID": "1.2.156.112599.1"}
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: given[m[1]], value)


def test_the_compose_file_runs_two_hardened_instances_on_postgresql_behind_a_proxy(tmp_path):
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "init", "trust-1", "trust-2", "proxy"} <= set(services)
    for name in ("trust-1", "trust-2", "init"):
        service = services[name]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert not str(service["user"]).startswith(("0", "root")) and service["cap_drop"] == ["ALL"]
        assert service["environment"]["TRUST_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert set(service["secrets"]) <= set(compose["secrets"])
        assert all(volume.split(":")[0] in compose["volumes"] for volume in service["volumes"])
    assert services["trust-1"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")  # outside the image; never committed

    # Production mode, as `trustctl serve` checks it, accepts what the instances are given.
    env = {key: _interpolated(str(value)) for key, value in services["trust-1"]["environment"].items()}
    env |= {"TRUST_HOME": str(tmp_path), "TRUST_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    assert production.refusals(load_settings(env), env) == []

    nginx = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream trust \{(.*?)\}", nginx, re.S).group(1)
    assert re.findall(r"server (trust-\d):8000", upstream) == ["trust-1", "trust-2"]
    assert services["trust-1"]["environment"]["TRUST_PROXY_HOPS"] == "1"  # exactly the one proxy
    assert "proxy_set_header X-Forwarded-For" in nginx


def test_the_containerfile_installs_the_packages_and_drops_to_a_user_with_a_state_volume():
    lines = [line.strip() for line in (DEPLOY / "Containerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [line.split()[0] for line in lines if line and not line.startswith("#") and line.split()[0].isupper()]
    assert instructions[0] == "FROM" and "debian" in next(line for line in lines if line.startswith("FROM"))
    user = next(line for line in lines if line.startswith("USER"))
    assert user.split()[1] not in ("root", "0")
    assert instructions.index("USER") > max(i for i, name in enumerate(instructions) if name == "RUN")
    assert any(line.startswith("VOLUME") and "/var/lib/trust" in line for line in lines)
    copied = [line.split()[1:-1] for line in lines if line.startswith("COPY")]
    root = DEPLOY.parent
    for sources in copied:
        assert all((root / source).exists() for source in sources), sources
    packages = {source for sources in copied for source in sources if (root / source).is_dir()}
    assert packages == {"trust", "hsm", "ca", "seal", "ofd", "licence", "identity", "api"}  # every package, no tests


def test_the_systemd_units_are_complete_and_confined():
    units = {path.name: path for path in (DEPLOY / "systemd").iterdir()}
    assert set(units) == {"trust-service.service", "trust-service-housekeeping.service",
                          "trust-service-housekeeping.timer"}
    for name, path in units.items():
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str
        unit.read_string(path.read_text(encoding="utf-8"))
        assert unit.has_section("Unit") and unit["Unit"].get("Description")
        if name.endswith(".service"):
            service = unit["Service"]
            assert service["User"] == "trust" and service["ExecStart"].startswith("/opt/trust/venv/bin/trustctl ")
            assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
            assert service["ReadWritePaths"] == "/var/lib/trust-service" and service["UMask"] == "0077"
        else:
            assert unit["Timer"]["OnCalendar"] and unit["Install"]["WantedBy"] == "timers.target"
    main = (DEPLOY / "systemd" / "trust-service.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/trust/venv/bin/trustctl serve" in main and "WantedBy=multi-user.target" in main
    housekeeping = (DEPLOY / "systemd" / "trust-service-housekeeping.service").read_text(encoding="utf-8")
    assert [line.split("trustctl ")[1] for line in housekeeping.splitlines() if line.startswith("ExecStart=")] == [
        "seal expire", "licence expire", "identity purge"]
