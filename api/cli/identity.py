"""`trustctl identity`: people and their credentials — citizens, enterprises, officers,
representatives, TOTP enrolment, lockouts — and the rotation of token signing keys.

Passwords are asked for at a prompt (hidden, twice; piped in, as two lines): they never
appear on the command line. Acts are audited with actor ``trustctl``.

Exit codes: 0 done, 1 refused or failed, 2 usage error (bad input, unknown user).
"""

import io
from datetime import datetime, time, timezone

import click
import segno

from api.cli.approvals import json_option, print_json, run
from identity import authn, sessions, signing_keys, subjects, totp
from identity.sources import configured_source
from trust.errors import NotFound

ACTOR = "trustctl"
KIND_ZH = {"person": "自然人", "legal_person": "法人", "officer": "工作人员"}


def _password() -> str:
    return click.prompt("密码 / Password", hide_input=True, confirmation_prompt=True)


def _by_username(session, username: str) -> subjects.Subject:
    subject = subjects.find_subject(session, username)
    if subject is None:
        raise NotFound(f"no user named {username[:64]!r}", f"找不到用户 {username[:64]!r}")
    return subject


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


@click.group()
def identity() -> None:
    """统一身份认证：用户、凭据与令牌签名密钥 / Identity: users, credentials and token signing keys."""


@identity.command("add-person")
@click.option("--username", required=True)
@click.option("--name", required=True, help="姓名 / Full name.")
@click.option("--resident-id", required=True, help="公民身份号码 / Resident ID number (GB 11643).")
@level_option
def add_person(username: str, name: str, resident_id: str, level: str) -> None:
    """新增自然人 / Add a natural person."""
    password = _password()
    subject = run(lambda session, _: subjects.create_person(
        session, username=username, password=password, name=name, resident_id=resident_id,
        assurance_level=level, source=configured_source(), actor=ACTOR), keystore=False)
    click.echo(_describe(subject))


@identity.command("add-enterprise")
@click.option("--username", required=True)
@click.option("--name", required=True, help="单位名称 / Organisation name.")
@click.option("--uscc", required=True, help="统一社会信用代码 / Unified social credit code (GB 32100).")
@level_option
def add_enterprise(username: str, name: str, uscc: str, level: str) -> None:
    """新增法人 / Add a legal person."""
    password = _password()
    subject = run(lambda session, _: subjects.create_legal_person(
        session, username=username, password=password, name=name, uscc=uscc, assurance_level=level,
        source=configured_source(), actor=ACTOR), keystore=False)
    click.echo(_describe(subject))


@identity.command("add-officer")
@click.option("--username", required=True)
@click.option("--name", required=True, help="姓名 / Full name.")
@click.option("--staff-number", required=True, help="工号 / Staff number.")
@click.option("--department", required=True, help="所属部门 / Department.")
@click.option("--role", "roles", multiple=True, required=True,
              help="角色，可重复，如 seal-admin、ca-officer / Role; repeat (seal-admin, ca-officer...).")
def add_officer(username: str, name: str, staff_number: str, department: str, roles: tuple[str, ...]) -> None:
    """新增工作人员（须绑定动态口令后方可登录）/ Add an officer (who logs in once TOTP is enrolled)."""
    password = _password()
    subject = run(lambda session, _: subjects.create_officer(
        session, username=username, password=password, name=name, staff_number=staff_number,
        department=department, roles=list(roles), actor=ACTOR), keystore=False)
    click.echo(_describe(subject))
    click.echo(f"请绑定动态口令 / Enrol TOTP next: trustctl identity enrol-totp {subject.username}")


@identity.command()
@click.option("--enterprise", required=True, help="法人用户名 / The legal person's username.")
@click.option("--person", required=True, help="经办人用户名 / The natural person's username.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="授权范围，可重复，如 licence:read / Scope; repeat (licence:read, seal:sign...).")
@click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="授权截止日期（当日结束，UTC）/ Last day of the authorisation (to its end, UTC).")
def authorise(enterprise: str, person: str, scopes: tuple[str, ...], until: datetime) -> None:
    """授权自然人代表法人办事 / Authorise a person to act for a legal person."""
    end = datetime.combine(until.date(), time.max, tzinfo=timezone.utc)

    def work(session, _):
        return subjects.authorise_representative(
            session, legal_person_id=_by_username(session, enterprise).id,
            person_id=_by_username(session, person).id, scope=list(scopes), until=end, actor=ACTOR)

    rep = run(work, keystore=False)
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
def enrol_totp(username: str) -> None:
    """绑定动态口令：用验证器应用扫码，再输入其显示的口令 / Enrol TOTP: scan the code with an
    authenticator app, then type the code it shows."""
    def work(session, keystore):
        subject = _by_username(session, username)
        secret, uri = authn.enrol_totp(session, keystore, subject.id, actor=ACTOR)
        picture = io.StringIO()
        segno.make(uri, error="m").terminal(out=picture, compact=True)
        click.echo(picture.getvalue(), nl=False)
        click.echo(f"密钥 / Secret: {totp.base32(secret)}\n{uri}")
        code = click.prompt("应用显示的 6 位动态口令 / The 6-digit code the app shows").strip()
        authn.confirm_totp(session, keystore, subject.id, code)
        return subject

    subject = run(work)
    click.echo(f"动态口令已绑定 / TOTP enrolled: {subject.username}")


@identity.command()
@click.argument("username", required=False)
@click.option("--address", help="解除此客户端地址的锁定 / Lift the lockout of this client address instead.")
def unlock(username: str | None, address: str | None) -> None:
    """解除登录锁定 / Lift a login lockout (of an account, or of an address)."""
    if (username is None) == (address is None):
        raise click.UsageError("give a USERNAME or --address, one of them")

    def work(session, _):
        if address is not None:
            authn.unlock_address(session, address, actor=ACTOR)
        else:
            authn.unlock(session, _by_username(session, username).id, actor=ACTOR)

    run(work, keystore=False)
    click.echo(f"已解除锁定 / Unlocked: {username or address}")


@identity.command()
@click.argument("username")
def disable(username: str) -> None:
    """停用用户并结束其全部登录会话 / Disable a user and end all their login sessions."""
    def work(session, _):
        subject = subjects.set_status(session, _by_username(session, username).id, "disabled", actor=ACTOR)
        return sessions.end_sessions_of(session, subject.id)

    ended = run(work, keystore=False)
    click.echo(f"已停用 / Disabled: {username}（结束会话 / sessions ended: {ended}）")


@identity.command()
@click.argument("username")
def enable(username: str) -> None:
    """重新启用用户 / Enable a user again."""
    run(lambda session, _: subjects.set_status(session, _by_username(session, username).id, "active",
                                               actor=ACTOR), keystore=False)
    click.echo(f"已启用 / Enabled: {username}")


@identity.command("rotate-keys")
@click.option("--alg", "algs", multiple=True, type=click.Choice(list(signing_keys.SIGNING_ALGS)),
              help="只轮换此算法的密钥，可重复；默认全部 / Only this algorithm; repeat. Default: all.")
def rotate_keys(algs: tuple[str, ...]) -> None:
    """轮换令牌签名密钥（旧密钥在其令牌过期前仍在 JWKS 中发布）/ Rotate the token signing keys (old
    ones stay in the JWKS until their tokens expire)."""
    def work(session, keystore):
        return [(alg, *signing_keys.rotate_signing_key(session, keystore, alg, actor=ACTOR))
                for alg in (algs or signing_keys.SIGNING_ALGS)]

    for alg, ref, kid in run(work):
        click.echo(f"{alg}: 第 {ref.version} 版 / version {ref.version}  kid {kid}")
