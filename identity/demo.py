"""The demo identities `trustctl init --demo` makes: a citizen (L2, confirmed by a demo
registry file written under TRUST_HOME), an enterprise the citizen is authorised to act
for, and three officers with TOTP enrolled, one for each separated administrator duty
(trust.duties): the demo officer (security), and the system and audit administrators, whose
usernames are those of their demo SM2 credentials (hsm/demo.py): one person in both registers. Passwords are generated and returned once; run
again, it makes nothing new and returns no secrets. Does not commit.
"""

import json
import random
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from hsm.keystore import KeyStore
from identity import authn, subjects, totp
from identity.sources import REGISTRY_FILE, LocalRegistrySource
from trust.clock import utc_now
from trust.ids import generate_resident_id, generate_uscc

ACTOR = "trustctl"
CITIZEN = {"username": "demo-citizen", "name": "张三",
           "resident_id": generate_resident_id(random.Random("demo-citizen"), birth=date(1990, 1, 1), sex="M")}
ENTERPRISE = {"username": "demo-enterprise", "name": "示例数字科技有限公司",
              "uscc": generate_uscc(random.Random("demo-enterprise"), department="9", category="1", region="110000")}
OFFICER = {"username": "demo-officer", "name": "李四", "staff_number": "DEMO-0001",
           "department": "省政务服务和数据管理局", "roles": ["ca-officer", "licence-officer", "seal-admin"]}
SYSADMIN = {"username": "sysadmin-1", "name": "王五", "staff_number": "DEMO-0002",
            "department": "省政务服务和数据管理局", "roles": ["sys-admin"]}
AUDITOR = {"username": "auditor-1", "name": "赵六", "staff_number": "DEMO-0003",
           "department": "省政务服务和数据管理局", "roles": ["audit-admin"]}
OFFICERS = {"officer": OFFICER, "sysadmin": SYSADMIN, "auditor": AUDITOR}
REPRESENTATIVE_SCOPE = ["licence:read", "seal:sign"]
REPRESENTATIVE_YEARS = 1


def create_demo_identities(session: Session, keystore: KeyStore, home: Path, *,
                           clock: Callable[[], datetime] = utc_now) -> dict:
    registry = Path(home) / REGISTRY_FILE
    if not registry.exists():
        registry.write_text(json.dumps({
            "persons": [{"name": CITIZEN["name"], "resident_id": CITIZEN["resident_id"]}],
            "legal_persons": [{"name": ENTERPRISE["name"], "uscc": ENTERPRISE["uscc"]}],
        }, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    source = LocalRegistrySource(registry, clock=clock)

    people = {"citizen": CITIZEN, "enterprise": ENTERPRISE} | OFFICERS
    passwords = {key: None if subjects.find_subject(session, who["username"]) else secrets.token_urlsafe(12)
                 for key, who in people.items()}
    if passwords["citizen"]:
        subjects.create_person(session, username=CITIZEN["username"], password=passwords["citizen"],
                               name=CITIZEN["name"], resident_id=CITIZEN["resident_id"], source=source, actor=ACTOR,
                               clock=clock)
    citizen = subjects.find_subject(session, CITIZEN["username"])
    if passwords["enterprise"]:
        enterprise = subjects.create_legal_person(
            session, username=ENTERPRISE["username"], password=passwords["enterprise"], name=ENTERPRISE["name"],
            uscc=ENTERPRISE["uscc"], source=source, actor=ACTOR, clock=clock)
        subjects.authorise_representative(
            session, legal_person_id=enterprise.id, person_id=citizen.id, scope=REPRESENTATIVE_SCOPE,
            until=clock() + timedelta(days=365 * REPRESENTATIVE_YEARS), actor=ACTOR, clock=clock)
    enterprise = subjects.find_subject(session, ENTERPRISE["username"])
    described = {key: _demo_officer(session, keystore, who, passwords[key], clock) for key, who in OFFICERS.items()}

    return {
        "registry": str(registry),
        "citizen": _describe(citizen, passwords["citizen"]),
        "enterprise": _describe(enterprise, passwords["enterprise"]) | {
            "representatives": [r.person_id for r in subjects.representatives(session, enterprise.id, clock=clock)]},
    } | described


def _demo_officer(session: Session, keystore: KeyStore, who: dict, password: str | None, clock) -> dict:
    """An officer with TOTP enrolled and confirmed; made only when ``password`` is new."""
    totp_secret = totp_uri = None
    if password:
        officer = subjects.create_officer(session, username=who["username"], password=password, name=who["name"],
                                          staff_number=who["staff_number"], department=who["department"],
                                          roles=who["roles"], actor=ACTOR, clock=clock)
        secret, totp_uri = authn.enrol_totp(session, keystore, officer.id, actor=ACTOR)
        # Confirmed with the previous step's code (inside the window), so the current one still works.
        earlier = clock() - timedelta(seconds=totp.STEP_SECONDS)
        authn.confirm_totp(session, keystore, officer.id, totp.code_at(secret, earlier), clock=clock)
        totp_secret = totp.base32(secret)
    officer = subjects.find_subject(session, who["username"])
    return _describe(officer, password) | {
        "roles": sorted(subjects.roles(session, officer.id)), "totp_secret": totp_secret, "totp_uri": totp_uri}


def _describe(subject: subjects.Subject, password: str | None) -> dict:
    return {"id": subject.id, "username": subject.username, "password": password, "name": subject.display_name,
            "identifier": subject.identifier, "assurance_level": subject.assurance_level,
            "assurance_source": subject.assurance_source, "totp_enrolled": subject.totp_enrolled}


def notice(identities: dict) -> str:
    """What `trustctl init --demo` prints: the accounts, and their passwords this once."""
    lines = ["演示账号（密码仅显示这一次）/ Demo accounts (passwords shown this once only):"]
    for key, label in (("citizen", "自然人 / citizen"), ("enterprise", "法人 / enterprise"),
                       ("officer", "工作人员 / officer"), ("sysadmin", "系统管理员 / system administrator"),
                       ("auditor", "审计管理员 / audit administrator")):
        who = identities[key]
        password = who["password"] or "（已存在，未改动 / exists, unchanged）"
        lines.append(f"  {label}: {who['username']}  密码 / password: {password}  "
                     f"{who['name']} {who['identifier']} {who['assurance_level']}")
    for key in OFFICERS:
        if identities[key]["totp_secret"]:
            lines.append(f"  {identities[key]['username']} 动态口令密钥 / {key} TOTP secret: "
                         f"{identities[key]['totp_secret']}")
            lines.append(f"  {identities[key]['totp_uri']}")
    lines.append(f"  实名核验登记文件 / identity registry: {identities['registry']}")
    return "\n".join(lines)
