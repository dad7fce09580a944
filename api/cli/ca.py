"""`trustctl ca`: certificate authorities, issuance and dual certificates.

`ca init` creates a hierarchy (root + issuing CA). Every signature by a root key runs
under dual control, so it takes as many officer credentials as the approval policy asks
for (two by default), all given at once: ``--credential A --credential B``. The first
opens each ``key.use-root`` request, the others approve it; each signs what the root will
sign: `ca init`, and `ca crl` re-signing a root's CRL (after revoking an issuing CA).
Issuing, revoking, dual certificates and opening a key recovery take one officer's credential.

Exit codes: 0 done, 1 refused or failed, 2 usage error.
"""

from datetime import timedelta
from pathlib import Path

import click
from asn1crypto import pem

from api.cli import exits
from api.cli.approvals import credential_option, credentials_option, describe, json_option, print_json, run, run_as
from ca import authority, csr, escrow, profiles, revocation
from trust.errors import InvalidInput, TrustError
from trust.x509 import parse_certificate

MAX_INPUT_BYTES = 64 * 1024


def _read(path: str) -> bytes:
    data = Path(path).read_bytes()[:MAX_INPUT_BYTES + 1]
    if len(data) > MAX_INPUT_BYTES:
        raise click.UsageError(f"{path}: larger than {MAX_INPUT_BYTES} bytes")
    return data


def _pem(der: bytes) -> str:
    return pem.armor("CERTIFICATE", der).decode()


def _describe(ca: authority.Authority) -> str:
    cert = parse_certificate(ca.certificate)
    return "\n".join([
        f"证书机构 / CA {ca.name}（{'根 / root' if ca.is_root else f'下级，上级 {ca.parent} / issuing, under {ca.parent}'}）",
        f"  算法体系 / family: {ca.family}",
        f"  主体 / subject:    {cert.subject}",
        f"  有效期 / validity: {cert.not_before:%Y-%m-%d} — {cert.not_after:%Y-%m-%d}",
        f"  密钥 / key:        {ca.key_id}",
        f"  CRL 编号 / CRL number: {ca.crl_number}",
    ])


@click.group(cls=exits.Group)
def ca() -> None:
    """证书机构 / Certificate authority."""


@ca.command()
@click.argument("name")
@click.option("--family", type=click.Choice(sorted(authority.FAMILIES)), default="sm2", show_default=True,
              help="算法体系 / Algorithm family.")
@click.option("--organization", default=authority.DEFAULT_ORGANIZATION, show_default=True,
              help="CA 证书中的单位名称 / O= in the CA certificates.")
@credentials_option
def init(name: str, family: str, organization: str, credential_paths: tuple[str, ...]) -> None:
    """创建根 CA 与下级 CA / Create a root CA and an issuing CA under it (NAME-root, NAME-issuing)."""
    def work(session, keystore, acting):
        return authority.create_hierarchy(session, keystore, name, family, approval=acting.credentials,
                                          organization=organization, actor=acting.officer.id)

    if profiles.policy_arc() == profiles.DEFAULT_POLICY_ARC:
        click.echo(f"警告：证书策略使用示例 OID 弧 {profiles.DEFAULT_POLICY_ARC}，请将 TRUST_POLICY_OID 设为本省注册的弧 / "
                   f"Warning: certificate policies use the example arc {profiles.DEFAULT_POLICY_ARC}; "
                   "set TRUST_POLICY_OID to the arc your province registered.", err=True)
    root, issuing = run_as("ca.create", name, work, credential_paths=credential_paths, keep_refusals=True)
    click.echo("已创建 / Created.")
    click.echo(_describe(root))
    click.echo(_describe(issuing))


@ca.command("list")
@json_option
def list_(as_json: bool) -> None:
    """列出证书机构 / List the CAs."""
    found = run(lambda session, keystore: authority.list_authorities(session), keystore=False)
    if as_json:
        print_json([{**vars(a), "certificate": _pem(a.certificate)} for a in found])
    elif not found:
        click.echo("没有证书机构 / No CAs.")
    else:
        for a in found:
            click.echo(f"{a.name}  {a.family}  {'root' if a.is_root else f'issuing under {a.parent}'}")


@ca.command()
@click.argument("name")
@click.option("--pem", "as_pem", is_flag=True, help="只输出证书 PEM / Only the certificate, PEM.")
@json_option
def show(name: str, as_pem: bool, as_json: bool) -> None:
    """显示证书机构 / Show a CA and its certificate."""
    found = run(lambda session, keystore: authority.get_authority(session, name), keystore=False)
    if as_json:
        print_json({**vars(found), "certificate": _pem(found.certificate)})
    elif as_pem:
        click.echo(_pem(found.certificate).rstrip())
    else:
        click.echo(_describe(found))
        click.echo(_pem(found.certificate).rstrip())


@ca.command()
@click.argument("authority_name")
@click.option("--profile", "profile_name", required=True, type=click.Choice(sorted(profiles.PROFILES)))
@click.option("--csr", "csr_path", type=click.Path(dir_okay=False, exists=True), help="PKCS#10 请求 / CSR file.")
@click.option("--public-key", "public_key_path", type=click.Path(dir_okay=False, exists=True),
              help="公钥（PEM/DER）/ Public key file.")
@click.option("--generate-key", "label", help="在密钥库中生成密钥，给出标签 / Generate the key in the key store with this label.")
@click.option("--subject", help="/C=CN/O=…/CN=…（有 CSR 时覆盖其主体 / overrides the CSR's）")
@click.option("--dns", "dns_names", multiple=True, help="服务器证书的域名 / DNS name (server profile).")
@click.option("--days", type=click.IntRange(1, 20 * 366), help="有效天数（不超过模板）/ Validity in days.")
@click.option("--out", type=click.Path(dir_okay=False), help="写入 PEM 文件 / Write the PEM here.")
@credential_option
def issue(authority_name, profile_name, csr_path, public_key_path, label, subject, dns_names, days, out,
          credential_path) -> None:
    """签发证书 / Issue a certificate (from a CSR, a public key, or a key generated here)."""
    if sum(x is not None for x in (csr_path, public_key_path, label)) != 1:
        raise click.UsageError("give exactly one of --csr, --public-key, --generate-key")
    options = dict(subject=subject, dns_names=dns_names, validity=timedelta(days=days) if days else None)

    def work(session, keystore, acting):
        if label is not None:
            return authority.issue_with_new_key(session, keystore, authority_name, profile_name, label=label,
                                                actor=acting.officer.id, **options)
        source = {"csr_der": _read(csr_path)} if csr_path else {"public_key": _read(public_key_path)}
        return authority.issue(session, keystore, authority_name, profile_name, actor=acting.officer.id, **source,
                               **options)

    issued = run_as("ca.issue", authority_name, work, credential_paths=(credential_path,), keep_refusals=True)
    if out:
        Path(out).write_text(_pem(issued.der))
    click.echo(f"已签发 / Issued: {issued.issuer} serial {issued.serial} ({issued.serial:#x})", err=bool(not out))
    click.echo(f"  主体 / subject: {issued.subject}", err=bool(not out))
    if not out:
        click.echo(_pem(issued.der).rstrip())


@ca.command()
@click.argument("authority_name")
@click.argument("serial")
@click.option("--reason", type=click.Choice(list(revocation.REASONS)), default="unspecified", show_default=True,
              help="RFC 5280 吊销原因 / Revocation reason.")
@credential_option
def revoke(authority_name, serial, reason, credential_path) -> None:
    """吊销证书 / Revoke a certificate SERIAL (decimal or 0x…) that the CA issued."""
    def work(session, keystore, acting):
        return (revocation.revoke(session, authority_name, serial, reason, actor=acting.officer.id),
                authority.get_authority(session, authority_name))

    entry, issuer = run_as("ca.revoke", authority_name, work, credential_paths=(credential_path,),
                           keep_refusals=True)
    click.echo(f"已吊销 / Revoked: {authority_name} serial {entry.serial} ({entry.serial:#x}), {entry.reason}, "
               f"{entry.revoked_at.isoformat()}")
    if issuer.is_root:
        click.echo(f"请重新签发根 CA 的 CRL / Re-sign the root's CRL: trustctl ca crl {authority_name} "
                   "--credential A --credential B")


@ca.command("crl")
@click.argument("authority_name")
@credentials_option
def crl_(authority_name: str, credential_paths: tuple[str, ...]) -> None:
    """重新签发根 CA 的 CRL（双人控制）/ Re-sign and publish a root CA's CRL (dual control)."""
    def work(session, keystore, acting):
        found = authority.get_authority(session, authority_name)
        authority.sign_root_crl(session, keystore, found, approval=acting.credentials, actor=acting.officer.id)
        return authority.get_authority(session, authority_name)

    signed = run_as("ca.crl", authority_name, work, credential_paths=credential_paths, keep_refusals=True)
    click.echo(f"已签发并发布 / Signed and published: CRL {signed.crl_number} of {signed.name}")


@ca.command("csr")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
def csr_(path: str) -> None:
    """检查证书签名请求 / Check a CSR: parse it and verify its self-signature."""
    try:
        request = csr.parse_csr(_read(path))
    except TrustError as e:
        click.echo(f"拒绝或失败 / Refused or failed: {e.zh} / {e.en}", err=True)
        raise SystemExit(exits.UNREADABLE if isinstance(e, InvalidInput) else exits.FAILED) from None
    click.echo("签名有效 / Self-signature valid.")
    click.echo(f"  主体 / subject: {request.subject.human_friendly}")
    click.echo(f"  算法 / algorithm: {request.signature_algorithm}")
    if request.dns_names:
        click.echo(f"  域名 / DNS: {', '.join(request.dns_names)}")


@ca.command()
@click.argument("authority_name")
@click.option("--signing-cert", required=True, type=click.Path(dir_okay=False, exists=True),
              help="申请人的签名证书 / The applicant's signing certificate.")
@click.option("--out-cert", required=True, type=click.Path(dir_okay=False), help="加密证书 PEM / Encryption certificate.")
@click.option("--out-envelope", required=True, type=click.Path(dir_okay=False),
              help="加密私钥的 SM2 数字信封（DER）/ The SM2 envelope of the encryption key (DER).")
@credential_option
def dual(authority_name, signing_cert, out_cert, out_envelope, credential_path) -> None:
    """签发加密证书并托管其私钥（双证书）/ Issue the encryption certificate of a dual pair, escrow its key."""
    def work(session, keystore, acting):
        der = parse_certificate(_read(signing_cert)).der
        return escrow.issue_dual_certificate(session, keystore, authority_name, der, actor=acting.officer.id)

    made = run_as("ca.dual", authority_name, work, credential_paths=(credential_path,), keep_refusals=True)
    Path(out_cert).write_text(_pem(made.certificate.der))
    Path(out_envelope).write_bytes(made.envelope)
    click.echo(f"已签发并托管 / Issued and escrowed: {made.certificate.issuer} serial {made.certificate.serial}")


@ca.command()
@click.argument("authority_name")
@click.argument("serial", type=int)
@click.option("--recipient", required=True, type=click.Path(dir_okay=False, exists=True),
              help="接收恢复密钥的 SM2 公钥 / SM2 public key to envelope the recovered key to.")
@click.option("--reason", required=True, help="法律依据 / The lawful request.")
@credential_option
def recover(authority_name, serial, recipient, reason, credential_path) -> None:
    """申请恢复托管的加密密钥（双人控制）/ Ask to recover an escrowed key (dual control)."""
    recipient_pem = _read(recipient).decode("ascii", "replace")
    req = run(lambda session, keystore, credential: escrow.request_recovery(
        session, keystore, authority_name, serial, recipient_pem, reason=reason, credential=credential),
        credential_path=credential_path)
    click.echo(describe(req))
