"""The demo key custody that `trustctl init --demo` sets up: three security officers (two
approve what dual control guards), and one system and one audit administrator, so each of
the separated duties (trust.duties) has someone to try it with.

Each demo officer's credential (an SM2 private key) is written under
``TRUST_HOME/officers/`` with mode 0600 and its path printed once. In production an
officer makes their own key pair where only they can read it (``openssl genpkey
-algorithm SM2``) and only the public key is enrolled (``hsm.officers.enrol``).
"""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from hsm import officers
from trust.config import Settings
from trust.duties import NAMES, Duty

DEMO_OFFICERS = (("officer-1", "演示安全员一 / Demo officer 1", Duty.SECURITY),
                 ("officer-2", "演示安全员二 / Demo officer 2", Duty.SECURITY),
                 ("officer-3", "演示安全员三 / Demo officer 3", Duty.SECURITY),
                 ("sysadmin-1", "演示系统管理员 / Demo system administrator", Duty.SYSTEM),
                 ("auditor-1", "演示审计管理员 / Demo audit administrator", Duty.AUDIT))


@dataclass(frozen=True)
class DemoCustody:
    credentials: tuple[tuple[str, Path], ...]  # (officer id, credential file)

    def notice(self) -> str:
        """What `trustctl init --demo` prints, once."""
        lines = ["演示管理员凭据（仅显示这一次，请妥善保管）/ Demo administrators' credentials "
                 "(shown this once; keep them safe):"]
        lines += [f"  {officer_id} ({NAMES[duty][1]} / {NAMES[duty][0]}): {path}"
                  for (officer_id, path), (_, _, duty) in zip(self.credentials, DEMO_OFFICERS, strict=True)]
        lines.append("  用法 / usage: trustctl approvals list; "
                     "TRUST_OFFICER_KEY=<file> trustctl approvals approve <id>")
        lines.append("仅供演示，生产环境中每名安全员自行生成并保管自己的私钥 / For demonstration only: "
                     "in production each officer makes and keeps their own private key.")
        return "\n".join(lines)


def set_up_demo_custody(session: Session, settings: Settings) -> DemoCustody:
    """Enrol the demo officers. Does not commit."""
    directory = settings.home / "officers"
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    credentials = []
    for officer_id, name, duty in DEMO_OFFICERS:
        credential, pem_text = officers.new_credential()
        path = directory / f"{officer_id}.pem"
        officers.write_credential(path, pem_text)
        officers.enrol(session, officer_id, name, credential.private_key.public_key().to_pem(),
                       actor="trustctl", duty=duty)
        credentials.append((officer_id, path))

    return DemoCustody(tuple(credentials))
