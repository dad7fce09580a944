"""`trustctl identity`: people and their credentials — citizens, enterprises, officers,
representatives, TOTP enrolment, lockouts —, the rotation of token signing keys, the
registry of client applications and the trusted issuers of other identity platforms.

Passwords are asked for at a prompt (hidden, twice; piped in, as two lines): they never
appear on the command line. Every change is an administrator's act (trust.duties): the
system administrator's for accounts, clients and federation, the security administrator's
for the token signing keys; they sign it with their credential (``--credential`` or
TRUST_OFFICER_KEY) and are named in the audit log. Only ``purge``, housekeeping that cron
runs by the rules already set, needs none.

Exit codes: 0 done, 1 refused or failed, 2 usage error (bad input, unknown user).
"""

import io
import json
from datetime import UTC, datetime, time

import click
import segno

from api.cli import exits
from api.cli.approvals import credential_option, json_option, print_json, run, run_as
from identity import authn, clients, federation, sessions, signing_keys, subjects, tokens, totp
from identity.client_models import AUTH_METHODS
from identity.sources import configured_source
from trust.errors import InvalidInput, NotFound

ACTOR = "trustctl"
KIND_ZH = {"person": "自然人", "legal_person": "法人", "officer": "工作人员"}


def _password() -> str:
    return click.prompt("密码 / Password", hide_input=True, confirmation_prompt=True)


def _by_username(session, username: str) -> subjects.Subject:
    subject = subjects.find_subject(session, username)
    if subject is None:
        raise NotFound(f"no user named {username[:64]!r}", f"找不到用户 {username[:64]!r}")
    return subject


def _as_sysadmin(act: str, target: str, credential_path: str, work):
    """Run ``work(session, actor)`` as the system administrator whose credential is given."""
    return run_as(act, target, lambda session, _, acting: work(session, acting.officer.id),
                  credential_paths=(credential_path,), keystore=False)


def _describe(subject: subjects.Subject) -> str:
    lines = [f"{subject.username}  {KIND_ZH[subject.kind]} / {subject.kind}  {subject.display_name}",
             f"  标识 / id:            {subject.id}",
             f"  证件号码 / identifier: {subject.identifier}",
             f"  实名等级 / assurance:  {subject.assurance_level}（{subject.assurance_source}）",
             f"  状态 / status:        {subject.status}",
             f"  动态口令 / TOTP:       {'已绑定 / enrolled' if subject.totp_enrolled else '未绑定 / none'}"]
    if subject.department:
        lines.append(f"  部门 / department:    {subject.department}")
    return "\n".join(lines)


level_option = click.option("--level", type=click.Choice(["L1", "L2", "L3"]), default="L1", show_default=True,
                            help="实名等级（核验来源确认时至少为 L2）/ Assurance level (at least L2 when the "
                                 "identity source confirms).")


@click.group(cls=exits.Group)
def identity() -> None:
    """统一身份认证：用户、凭据与令牌签名密钥 / Identity: users, credentials and token signing keys."""


@identity.command("add-person")
@click.option("--username", required=True)
@click.option("--name", required=True, help="姓名 / Full name.")
@click.option("--resident-id", required=True, help="公民身份号码 / Resident ID number (GB 11643).")
@level_option
@credential_option
def add_person(username: str, name: str, resident_id: str, level: str, credential_path: str) -> None:
    """新增自然人 / Add a natural person."""
    password = _password()
    subject = _as_sysadmin("identity.account.create", username, credential_path, lambda session, actor:
                           subjects.create_person(session, username=username, password=password, name=name,
                                                  resident_id=resident_id, assurance_level=level,
                                                  source=configured_source(), actor=actor))
    click.echo(_describe(subject))


@identity.command("add-enterprise")
@click.option("--username", required=True)
@click.option("--name", required=True, help="单位名称 / Organisation name.")
@click.option("--uscc", required=True, help="统一社会信用代码 / Unified social credit code (GB 32100).")
@level_option
@credential_option
def add_enterprise(username: str, name: str, uscc: str, level: str, credential_path: str) -> None:
    """新增法人 / Add a legal person."""
    password = _password()
    subject = _as_sysadmin("identity.account.create", username, credential_path, lambda session, actor:
                           subjects.create_legal_person(session, username=username, password=password, name=name,
                                                        uscc=uscc, assurance_level=level,
                                                        source=configured_source(), actor=actor))
    click.echo(_describe(subject))


@identity.command("add-officer")
@click.option("--username", required=True)
@click.option("--name", required=True, help="姓名 / Full name.")
@click.option("--staff-number", required=True, help="工号 / Staff number.")
@click.option("--department", required=True, help="所属部门 / Department.")
@click.option("--role", "roles", multiple=True, required=True,
              help="角色，可重复；管理员职责（sys-admin、security-admin、audit-admin）至多一项 / Role; repeat. "
                   "At most one administrator duty (sys-admin, security-admin, audit-admin).")
@credential_option
def add_officer(username: str, name: str, staff_number: str, department: str, roles: tuple[str, ...],
                credential_path: str) -> None:
    """新增工作人员（须绑定动态口令后方可登录）/ Add an officer (who logs in once TOTP is enrolled)."""
    password = _password()
    subject = run_as("identity.officer.create", username, lambda session, _, acting: subjects.create_officer(
        session, username=username, password=password, name=name, staff_number=staff_number,
        department=department, roles=list(roles), actor=acting.officer.id),
        credential_paths=(credential_path,), keystore=False)
    click.echo(_describe(subject))
    click.echo(f"请绑定动态口令 / Enrol TOTP next: trustctl identity enrol-totp {subject.username}")


@identity.command()
@click.option("--enterprise", required=True, help="法人用户名 / The legal person's username.")
@click.option("--person", required=True, help="经办人用户名 / The natural person's username.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="授权范围，可重复，如 licence:read / Scope; repeat (licence:read, seal:sign...).")
@click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="授权截止日期（当日结束，UTC）/ Last day of the authorisation (to its end, UTC).")
@credential_option
def authorise(enterprise: str, person: str, scopes: tuple[str, ...], until: datetime, credential_path: str) -> None:
    """授权自然人代表法人办事 / Authorise a person to act for a legal person."""
    end = datetime.combine(until.date(), time.max, tzinfo=UTC)

    def work(session, actor):
        return subjects.authorise_representative(
            session, legal_person_id=_by_username(session, enterprise).id,
            person_id=_by_username(session, person).id, scope=list(scopes), until=end, actor=actor)

    rep = _as_sysadmin("identity.account.authorise", f"{person} {enterprise}", credential_path, work)
    click.echo(f"已授权 / Authorised: {person} → {enterprise}  {' '.join(sorted(rep.scope))}  "
               f"至 / until {rep.until:%Y-%m-%d %H:%M:%S} UTC")


@identity.command("list")
@click.option("--kind", type=click.Choice(list(KIND_ZH)), help="只列出此类用户 / Only this kind.")
@json_option
def list_(kind: str | None, as_json: bool) -> None:
    """列出用户 / List users."""
    found = run(lambda session, _: subjects.list_subjects(session, kind), keystore=False)
    if as_json:
        print_json(found)
        return
    for s in found:
        click.echo(f"{s.username:<24} {s.kind:<13} {s.assurance_level} {s.status:<9} {s.identifier:<20} {s.display_name}")


@identity.command()
@click.argument("username")
@json_option
def show(username: str, as_json: bool) -> None:
    """显示用户详情 / Show a user."""
    def work(session, _):
        subject = _by_username(session, username)
        reps = subjects.representatives(session, subject.id) if subject.kind == "legal_person" else []
        names = {r.person_id: subjects.get_subject(session, r.person_id).username for r in reps}
        return subject, sorted(subjects.roles(session, subject.id)), reps, names

    subject, roles, reps, names = run(work, keystore=False)
    if as_json:
        print_json({"subject": subject, "roles": roles, "representatives": reps})
        return
    click.echo(_describe(subject))
    if roles:
        click.echo(f"  角色 / roles:         {', '.join(roles)}")
    for rep in reps:
        click.echo(f"  经办人 / representative: {names[rep.person_id]}  {' '.join(sorted(rep.scope))}  "
                   f"至 / until {rep.until:%Y-%m-%d}")


@identity.command("enrol-totp")
@click.argument("username")
@credential_option
def enrol_totp(username: str, credential_path: str) -> None:
    """绑定动态口令：用验证器应用扫码，再输入其显示的口令 / Enrol TOTP: scan the code with an
    authenticator app, then type the code it shows."""
    def work(session, keystore, acting):
        subject = _by_username(session, username)
        secret, uri = authn.enrol_totp(session, keystore, subject.id, actor=acting.officer.id)
        picture = io.StringIO()
        segno.make(uri, error="m").terminal(out=picture, compact=True)
        click.echo(picture.getvalue(), nl=False)
        click.echo(f"密钥 / Secret: {totp.base32(secret)}\n{uri}")
        code = click.prompt("应用显示的 6 位动态口令 / The 6-digit code the app shows").strip()
        authn.confirm_totp(session, keystore, subject.id, code)
        return subject

    subject = run_as("identity.account.totp", username, work, credential_paths=(credential_path,))
    click.echo(f"动态口令已绑定 / TOTP enrolled: {subject.username}")


@identity.command()
@click.argument("username", required=False)
@click.option("--address", help="解除此客户端地址的锁定 / Lift the lockout of this client address instead.")
@credential_option
def unlock(username: str | None, address: str | None, credential_path: str) -> None:
    """解除登录锁定 / Lift a login lockout (of an account, or of an address)."""
    if (username is None) == (address is None):
        raise click.UsageError("give a USERNAME or --address, one of them")

    def work(session, actor):
        if address is not None:
            authn.unlock_address(session, address, actor=actor)
        else:
            authn.unlock(session, _by_username(session, username).id, actor=actor)

    _as_sysadmin("identity.account.unlock", username or address or "", credential_path, work)
    click.echo(f"已解除锁定 / Unlocked: {username or address}")


@identity.command("set-level")
@click.argument("username")
@click.argument("level", type=click.Choice(["L1", "L2", "L3"]))
@click.option("--source", required=True,
              help="谁以何种方式核验，如 counter:某某区政务服务中心 / Who checked and how, e.g. counter:<office>.")
@credential_option
def set_level(username: str, level: str, source: str, credential_path: str) -> None:
    """记录实名核验结果（如现场核验后升为 L3）/ Record a real-name check (e.g. L3 after a face-to-face check)."""
    subject = _as_sysadmin("identity.account.level", username, credential_path, lambda session, actor:
                           subjects.set_assurance(session, _by_username(session, username).id, level,
                                                  source=source, actor=actor))
    click.echo(_describe(subject))


@identity.command()
@click.argument("username")
@credential_option
def disable(username: str, credential_path: str) -> None:
    """停用用户并结束其全部登录会话 / Disable a user and end all their login sessions."""
    def work(session, actor):
        subject = subjects.set_status(session, _by_username(session, username).id, "disabled", actor=actor)
        return sessions.end_sessions_of(session, subject.id)

    ended = _as_sysadmin("identity.account.disable", username, credential_path, work)
    click.echo(f"已停用 / Disabled: {username}（结束会话 / sessions ended: {ended}）")


@identity.command()
@click.argument("username")
@credential_option
def enable(username: str, credential_path: str) -> None:
    """重新启用用户 / Enable a user again."""
    _as_sysadmin("identity.account.enable", username, credential_path, lambda session, actor: subjects.set_status(
        session, _by_username(session, username).id, "active", actor=actor))
    click.echo(f"已启用 / Enabled: {username}")


@identity.command()
def purge() -> None:
    """删除已过期的令牌与登录会话记录（可由 cron 定期运行）/ Delete the records of expired tokens and
    ended login sessions (run it from cron)."""
    def work(session, _):
        counts = tokens.purge_expired(session, actor=ACTOR)
        counts["login_sessions"] = 0
        while ended := sessions.purge_expired(session):
            counts["login_sessions"] += ended
        return counts

    counts = run(work, keystore=False)
    click.echo("已删除 / Deleted: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


@identity.command("rotate-keys")
@click.option("--alg", "algs", multiple=True, type=click.Choice(list(signing_keys.SIGNING_ALGS)),
              help="只轮换此算法的密钥，可重复；默认全部 / Only this algorithm; repeat. Default: all.")
@credential_option
def rotate_keys(algs: tuple[str, ...], credential_path: str) -> None:
    """轮换令牌签名密钥（旧密钥在其令牌过期前仍在 JWKS 中发布）/ Rotate the token signing keys (old
    ones stay in the JWKS until their tokens expire)."""
    def work(session, keystore, acting):
        return [(alg, *signing_keys.rotate_signing_key(session, keystore, alg, actor=acting.officer.id))
                for alg in (algs or signing_keys.SIGNING_ALGS)]

    for alg, ref, kid in run_as("identity.signing-key.rotate", ",".join(algs) or "all", work,
                                credential_paths=(credential_path,)):
        click.echo(f"{alg}: 第 {ref.version} 版 / version {ref.version}  kid {kid}")


def _jwks_file(path: str | None) -> dict | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        data = f.read(256 * 1024 + 1)
    try:
        if len(data) > 256 * 1024:
            raise ValueError("larger than 256 KiB")
        return json.loads(data)
    except ValueError as error:
        raise InvalidInput(f"{path} is not a JWK set: {error}", f"{path} 不是 JWK 集") from None


@identity.group()
def client() -> None:
    """接入的部门应用（OAuth 客户端）/ Department applications (OAuth clients)."""


@client.command("register")
@click.option("--name", required=True, help="应用名称 / Application name.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="回调地址（精确匹配），可重复 / Redirect URI "
                                                                     "(exact match); repeat.")
@click.option("--grant", "grants", multiple=True, required=True, type=click.Choice(list(clients.GRANT_TYPES)),
              help="允许的授权类型，可重复 / Allowed grant; repeat.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(sorted(clients.SCOPES)),
              help="允许的权限范围，可重复 / Allowed scope; repeat.")
@click.option("--alg", default="RS256", show_default=True, type=click.Choice(list(clients.TOKEN_ALGS)),
              help="令牌签名算法 / Token signature algorithm.")
@click.option("--auth-method", default="client_secret_basic", show_default=True, type=click.Choice(list(AUTH_METHODS)),
              help="客户端认证方式 / How the client authenticates.")
@click.option("--jwks", "jwks_path", type=click.Path(exists=True, dir_okay=False),
              help="private_key_jwt 的公钥 JWK 集文件 / The client's public JWK set (private_key_jwt).")
@click.option("--department", help="所属部门 / Department.")
@credential_option
def register_client(name, redirect_uris, grants, scopes, alg, auth_method, jwks_path, department,
                    credential_path) -> None:
    """登记部门应用；密钥仅显示这一次 / Register an application; its secret is shown this once."""
    jwks = _jwks_file(jwks_path)
    registered, secret = run_as("identity.client.register", name, lambda session, _, acting: clients.register_client(
        session, name=name, redirect_uris=redirect_uris, grant_types=grants, scopes=scopes, token_alg=alg,
        auth_method=auth_method, jwks=jwks, department=department, actor=acting.officer.id),
        credential_paths=(credential_path,), keystore=False)
    click.echo(f"client_id: {registered.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}（仅显示这一次 / shown this once）")


@client.command("list")
@json_option
def list_clients(as_json: bool) -> None:
    """列出部门应用 / List applications."""
    found = run(lambda session, _: clients.list_clients(session), keystore=False)
    if as_json:
        print_json([{"client_id": c.client_id, "name": c.name, "status": c.status, "grant_types": sorted(c.grant_types),
                     "scopes": sorted(c.scopes), "token_alg": c.token_alg, "auth_method": c.auth_method,
                     "redirect_uris": list(c.redirect_uris), "department": c.department} for c in found])
        return
    for c in found:
        click.echo(f"{c.client_id}  {c.status:<8} {c.token_alg:<5} {c.name}  [{' '.join(sorted(c.scopes))}]")


@client.command("disable")
@click.argument("client_id")
@credential_option
def disable_client(client_id: str, credential_path: str) -> None:
    """停用部门应用 / Disable an application."""
    run_as("identity.client.disable", client_id, lambda session, _, acting: clients.disable_client(
        session, client_id, actor=acting.officer.id), credential_paths=(credential_path,), keystore=False)
    click.echo(f"已停用 / Disabled: {client_id}")


@identity.group("federation")
def federation_group() -> None:
    """身份互认：受信任的外部签发方 / Federation: trusted external issuers."""


@federation_group.command("add-issuer")
@click.argument("issuer")
@click.option("--name", required=True, help="签发方名称，如某省统一身份认证平台 / The issuer's name.")
@click.option("--jwks", "jwks_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="签发方公钥 JWK 集文件 / The issuer's public JWK set.")
@click.option("--audience", required=True, help="其 ID 令牌中的受众（本平台在对方的标识）/ The aud its ID tokens "
                                                 "carry for us.")
@click.option("--level", required=True, type=click.Choice(["L1", "L2", "L3"]),
              help="互认协议给予的实名等级 / The assurance level the agreement grants.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(sorted(clients.SCOPES)),
              help="换得的令牌可有的权限范围，可重复 / Scopes an exchanged token may carry; repeat.")
@click.option("--alg", "algs", multiple=True, type=click.Choice(list(clients.TOKEN_ALGS)),
              help="接受的签名算法，可重复；默认 ES256 / Accepted algorithms; repeat. Default ES256.")
@credential_option
def add_issuer(issuer, name, jwks_path, audience, level, scopes, algs, credential_path) -> None:
    """登记（或更新）受信任的外部签发方 / Add or replace a trusted external issuer."""
    jwks = _jwks_file(jwks_path)
    if jwks is None:  # --jwks is required
        raise click.UsageError("give --jwks / 请给出 --jwks")
    run_as("identity.federation.add-issuer", issuer, lambda session, _, acting: federation.add_issuer(
        session, issuer=issuer, name=name, jwks=jwks, audience=audience, assurance_level=level,
        scopes=list(scopes), algorithms=list(algs or ("ES256",)), actor=acting.officer.id),
        credential_paths=(credential_path,), keystore=False)
    click.echo(f"已登记 / Trusted: {issuer}  {level}")


@federation_group.command("link")
@click.argument("issuer")
@click.argument("external_subject")
@click.argument("username")
@credential_option
def link(issuer: str, external_subject: str, username: str, credential_path: str) -> None:
    """把外部身份（签发方与其 sub）关联到本地用户 / Map an external identity to a local user."""
    run_as("identity.federation.link", f"{issuer} {external_subject}", lambda session, _, acting:
           federation.link_identity(session, issuer=issuer, external_subject=external_subject,
                                    subject_id=_by_username(session, username).id, actor=acting.officer.id),
           credential_paths=(credential_path,), keystore=False)
    click.echo(f"已关联 / Linked: {issuer} {external_subject} → {username}")
