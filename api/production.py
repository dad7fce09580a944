"""Production mode (``TRUST_MODE=production``, issue #19): the settings only a demo may
have, refused before `trustctl serve` starts, each with the setting that is wrong and how
to put it right. The embedded default (`make run`) checks none of them.

Refused: the soft key backend with its key-encryption key in a file (the keys and what
unwraps them on one disk); the certificate policy arc left at the example arc 2.999, which
identifies nothing; a public URL that is not https (the OIDC issuer, the CRL, OCSP and
licence-check addresses printed on every certificate and licence); the demo's accounts
and officers in the database; and TRUST_PROXY_HOPS not set at all. The service cannot
tell at start whether a reverse proxy is in front, so production asks for the number
explicitly: without it a proxy's X-Forwarded-For would be ignored, and every citizen's
failed logins would count against the proxy's one address.
"""

from dataclasses import dataclass

from sqlalchemy import select

from ca.profiles import DEFAULT_POLICY_ARC
from hsm.demo import DEMO_OFFICERS
from hsm.keystore import KeyStoreConfig
from hsm.officers import ACTIVE, officers
from identity.demo import CITIZEN, ENTERPRISE, OFFICERS
from identity.models import identity_subject
from trust.config import Mode, Settings
from trust.db import is_initialised, make_engine, session_factory
from trust.errors import StorageError

EXAMPLE_ARC = "2.999"   # ITU-T X.660's example arc, under which the default policy arc lies
DEMO_USERNAMES = (CITIZEN["username"], ENTERPRISE["username"], *(who["username"] for who in OFFICERS.values()))


@dataclass(frozen=True)
class Refusal:
    setting: str
    zh: str
    en: str


def refusals(settings: Settings, env: dict[str, str]) -> list[Refusal]:
    """What production mode refuses in ``settings`` and the environment ``env``; none in the
    embedded mode."""
    if settings.mode is not Mode.PRODUCTION:
        return []
    found = []
    keystore = KeyStoreConfig.from_env(env, home=settings.home)
    if keystore.backend == "soft" and keystore.kek_source == "file":
        found.append(Refusal(
            "TRUST_KEYSTORE / TRUST_KEK_SOURCE",
            "软件密钥库的密钥加密密钥保存在文件中（与其保护的密钥同在一处）：请使用硬件密码模块"
            "（TRUST_KEYSTORE=pkcs11），或至少令 TRUST_KEK_SOURCE=passphrase 或 pkcs11",
            "the soft key store's key-encryption key is a file beside the keys it protects: use an HSM "
            "(TRUST_KEYSTORE=pkcs11), or at least TRUST_KEK_SOURCE=passphrase or pkcs11"))
    arc = env.get("TRUST_POLICY_OID", DEFAULT_POLICY_ARC).strip()
    if arc == EXAMPLE_ARC or arc.startswith(EXAMPLE_ARC + "."):
        found.append(Refusal(
            "TRUST_POLICY_OID",
            f"证书策略仍是示例分支 {arc}（不标识任何机构）：请设为本省登记的对象标识符分支",
            f"the certificate policy arc is the example arc {arc}, which identifies nobody: set the arc "
            "your province registered"))
    if not settings.public_url.startswith("https://"):
        found.append(Refusal(
            "TRUST_PUBLIC_URL",
            f"对外地址 {settings.public_url} 不是 https：它是令牌签发方，也印在每张证书和证照上；请设为 https:// 地址",
            f"the public URL {settings.public_url} is not https: it is the token issuer and is printed on every "
            "certificate and licence; set an https:// URL"))
    if "TRUST_PROXY_HOPS" not in env:
        found.append(Refusal(
            "TRUST_PROXY_HOPS",
            "未设置 TRUST_PROXY_HOPS：位于反向代理之后时设为代理层数（信任其 X-Forwarded-For），客户端直连时设为 0",
            "TRUST_PROXY_HOPS is not set: behind reverse proxies set it to their number (their X-Forwarded-For "
            "is believed), or to 0 when clients connect directly"))
    demo = demo_accounts(settings)
    if demo:
        names = ", ".join(demo)
        found.append(Refusal(
            "trustctl init --demo",
            f"数据库中有演示账号或演示安全员：{names}；生产数据库应不带 --demo 初始化，或停用这些账号",
            f"the database holds the demo's accounts or officers: {names}; initialise a production database "
            "without --demo, or disable them"))
    return found


def demo_accounts(settings: Settings) -> list[str]:
    """The demo's people still active in the database (none when it is not initialised yet:
    readiness reports that)."""
    try:
        engine = make_engine(settings.database_url, create=False)
    except StorageError:
        return []
    try:
        if not is_initialised(engine):
            return []
        with session_factory(engine)() as session:
            people = session.execute(select(identity_subject.c.username).where(
                identity_subject.c.username.in_(DEMO_USERNAMES), identity_subject.c.status == "active")).scalars()
            custodians = session.execute(select(officers.c.id).where(
                officers.c.id.in_([officer_id for officer_id, _, _ in DEMO_OFFICERS]),
                officers.c.status == ACTIVE)).scalars()
            return sorted(people) + sorted(custodians)
    finally:
        engine.dispose()
