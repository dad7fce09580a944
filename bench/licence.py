"""Licences issued and verified per second, and how much of that is SM2.

A temporary TRUST_HOME is initialised with `trustctl init --demo` (the demo department
issues 营业执照 with its official seal through ``demo-department-app``), both demo SM2 CAs
are trusted for licences, and a ``licence:issue`` token is issued to the demo client.

"Issue" is the whole of POST /api/v1/licences: checking the request, the serial, the face
laid out with a CJK font subset and a QR code, the seal applied through the KeyStore (one
SM2 signature), the record, the file and the audit entries committed. "Verify" is POST
/api/v1/verify with the sealed file: the OFD's digests, two SM2 verifications (signer and
seal maker), the chain, and the registry's status. Both run in this process (one core)
and through `trustctl serve` with two workers (clients in this process's threads). No
revocation answers are fetched (revocation stays INDETERMINATE); every other check passes.

Since the demo department has a PDF key, each issue also makes the licence's PDF, signed
PAdES B-LTA. The ``licence_pdf_*`` figures take that PDF alone: signing it again (one ECDSA
P-256 signature through the KeyStore, a signature time stamp and a document time stamp from
our ECDSA TSA, the CRLs into the DSS), with the share of the time spent in the signature and
in the two time stamps; and verifying it as a licence (pyHanko's validation from the DSS,
and the registry).

The SM2 share is the time the SM2 operations alone would take, from `openssl speed sm2`
in the same run (one core; two for the HTTP figures), over the time the whole takes: one
signature per issue, two verifications per verify.
"""

import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from bench.server import TRUSTCTL, environment, free_port, posts_per_second, served
from bench.timing import openssl_sm2, rate
from ca import authority
from hsm.keystore import open_keystore
from identity import tokens
from licence import issuance, pades, registry
from licence.models import licences
from licence.verify import registry_lookup, verify_licence
from seal.demo import DEMO_CLIENT_ID
from trust import db, truststore
from trust.config import load_settings

SECONDS = 5
WORKERS = 2
CLIENTS = 4
FACE = {"entity_type": "有限责任公司（自然人投资或控股）", "legal_representative": "张三", "registered_capital": "10000000",
        "established_on": "2019-03-01", "term_from": "2019-03-01", "term_to": "长期", "domicile": "福州市鼓楼区测试路1号",
        "business_scope": "软件开发；信息技术咨询服务；数据处理和存储支持服务；信息系统集成服务。（依法须经批准的项目，"
                          "经相关部门批准后方可开展经营活动）"}


def _request(issuer: str) -> dict:
    return {"type_code": "11100000MB0143028R001", "issuer_code": issuer,
            "holder": {"name": "福州测试科技有限公司", "code": "91350100M000100Y43", "code_type": "001"}, "face": FACE}


def run() -> dict[str, float]:
    sm2_sign, sm2_verify = openssl_sm2(SECONDS)
    with tempfile.TemporaryDirectory(prefix="bench-licence-") as home:
        port = free_port()
        env = environment(Path(home), port)
        subprocess.run([TRUSTCTL, "init", "--demo"], env=env, check=True, capture_output=True, timeout=300)
        issuer, token, sample, local, pdf = _in_process(env)
        with served(env, port, WORKERS, Path(home) / "serve.log"):
            issue_http = posts_per_second(port, "/api/v1/licences", json.dumps(_request(issuer)).encode(),
                                          {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                          seconds=SECONDS, clients=CLIENTS, expected=201)
            boundary = uuid.uuid4().hex
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.ofd\"\r\n"
                    f"Content-Type: application/ofd\r\n\r\n").encode() + sample + f"\r\n--{boundary}--\r\n".encode()
            verify_http = posts_per_second(port, "/api/v1/verify", body,
                                           {"Content-Type": f"multipart/form-data; boundary={boundary}"},
                                           seconds=SECONDS, clients=CLIENTS)
    issue_local, verify_local = local
    return {
        "licence_issue_per_s": round(issue_local, 1),
        "licence_issue_sm2_share": round(issue_local / sm2_sign, 3),
        "licence_verify_per_s": round(verify_local, 1),
        "licence_verify_sm2_share": round(verify_local / (sm2_verify / 2), 3),
        "licence_issue_http_per_s": round(issue_http, 1),
        "licence_issue_http_sm2_share": round(issue_http / (WORKERS * sm2_sign), 3),
        "licence_verify_http_per_s": round(verify_http, 1),
        "licence_verify_http_sm2_share": round(verify_http / (WORKERS * sm2_verify / 2), 3),
        **pdf,
    }


def _in_process(env: dict[str, str]) -> tuple[str, str, bytes, tuple[float, float], dict[str, float]]:
    """The demo issuer, a licence:issue token, a sealed sample, the in-process rates and the PDF's."""
    settings = load_settings(env)
    engine = db.make_engine(settings.database_url)
    try:
        sessions = db.session_factory(engine)
        keystore = open_keystore(settings, sessions)
        with sessions() as session:
            for ca in authority.list_authorities(session):
                if ca.family == "sm2":
                    truststore.import_roots(session, "licence", ca.certificate, actor="bench")
            demo = session.execute(select(licences.c.licence_id).limit(1)).scalar()
            if demo is None:
                raise SystemExit("the demo home holds no licence")
            issuer = registry.get(session, demo).record["issuer"]["code"]
            token, _ = tokens.issue_access_token(session, keystore, issuer=settings.public_url,
                                                 client_id=DEMO_CLIENT_ID, subject=None, scopes=["licence:issue"],
                                                 lifetime=3600)
            session.commit()
            roots = tuple(c.der for c in truststore.trusted_roots(session, "licence"))
            sample = registry.ofd_file(session, demo)
            report = verify_licence(sample, lookup=registry_lookup(session), trusted_roots=roots)
            failed = [c.check.value for c in report.signatures[0].checks
                      if c.status.value != "PASSED" and c.check.value not in ("revocation", "timestamp")]
            if failed:  # revocation is not fetched here: INDETERMINATE, like the seal bench's
                raise SystemExit(f"bench: the demo licence does not verify: {failed}")

        def issue_one() -> None:
            with sessions() as session:
                issuance.issue(session, keystore, _request(issuer), client_id=DEMO_CLIENT_ID,
                               verify_url=settings.public_url)
                session.commit()

        def verify_one() -> None:
            with sessions() as session:
                verify_licence(sample, lookup=registry_lookup(session), trusted_roots=roots)

        return issuer, token, sample, (rate(issue_one, SECONDS), rate(verify_one, SECONDS)), \
            {**_pdf_rates(sessions, keystore, demo, roots), **_qr_rates(sessions, keystore, demo),
             **_conversion_rate(sessions, keystore, issuer, settings.public_url)}
    finally:
        engine.dispose()


class _TimedSigner(pades.KeyStoreSigner):
    spent = 0.0

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        start = time.perf_counter()
        try:
            return await super().async_sign_raw(data, digest_algorithm, dry_run)
        finally:
            _TimedSigner.spent += time.perf_counter() - start


class _TimedStamper(pades.KeyStoreTimeStamper):
    spent = 0.0

    async def async_request_tsa_response(self, req):
        start = time.perf_counter()
        try:
            return await super().async_request_tsa_response(req)
        finally:
            _TimedStamper.spent += time.perf_counter() - start


def _pdf_rates(sessions, keystore, demo: str, roots: tuple[bytes, ...]) -> dict[str, float]:
    """The demo licence's PDF signed PAdES B-LTA again and again (its first revision, as the
    writer made it), with the time in the ECDSA signature and in the two time stamps, and
    the signed PDF verified as a licence."""
    with sessions() as session:
        signed = registry.pdf_file(session, demo)
        record = registry.get(session, demo)
        issuer = registry.get_issuer(session, record.record["type_code"], record.record["issuer"]["code"])
        if issuer.pdf_key_id is None:
            raise SystemExit("the demo issuer has no PDF key")
        certificate, ca_name = registry.pdf_signing_certificate(session, issuer.pdf_key_id, issuer.issuer_code)
    unsigned = signed[:signed.index(b"%%EOF") + len(b"%%EOF\n")]

    def sign_one() -> None:
        with sessions() as session:
            long_term = pades.our_revocation_data(session, keystore, ca_name.removesuffix("-issuing"))
            signer = _TimedSigner(session, keystore, keystore.get(session, issuer.pdf_key_id), certificate,
                                  long_term.intermediates)
            pades.sign_pdf(unsigned, signer, reason="bench", location=issuer.issuer_name,
                           timestamper=_TimedStamper(session, keystore), long_term=long_term)
            session.commit()

    def verify_one() -> None:
        with sessions() as session:
            report = verify_licence(signed, lookup=registry_lookup(session), trusted_roots=roots)
        if report.status.value != "VALID":
            raise SystemExit(f"bench: the demo licence PDF does not verify: {report.to_dict()}")

    _TimedSigner.spent = _TimedStamper.spent = 0.0
    start = time.perf_counter()
    signing = rate(sign_one, SECONDS)
    elapsed = time.perf_counter() - start
    return {"licence_pdf_sign_per_s": round(signing, 1),
            "licence_pdf_sign_signature_share": round(_TimedSigner.spent / elapsed, 3),
            "licence_pdf_sign_timestamp_share": round(_TimedStamper.spent / elapsed, 3),
            "licence_pdf_verify_per_s": round(rate(verify_one, SECONDS), 1)}



def _conversion_rate(sessions, keystore, issuer: str, public_url: str) -> dict[str, float]:
    """Rows of a 食品经营许可证 table converted per second (licence/conversion.py: each row
    checked, laid out, sealed as an OFD, recorded with its source, committed alone; its PDF
    comes later, from `trustctl licence make-pdfs`),
    for SECONDS, and the minutes 10,000 rows would take at that rate (#17's target: 10)."""
    import csv
    import io

    from licence import conversion, types
    food = "11100000MB0143028R002"
    face = {"legal_representative": "李四", "domicile": "福州市鼓楼区测试路2号", "premises": "福州市鼓楼区测试路2号一层",
            "business_form": "餐饮服务经营者", "items": "热食类食品制售；冷食类食品制售", "supervising_body": "鼓楼区市场监督管理局",
            "supervisors": "王五", "complaint_phone": "12315", "signed_by": "赵六"}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["经营者名称", "持证主体代码", "许可证编号", *face])
    writer.writerows(["福州测试餐饮有限公司", "91350100M000100Y43", f"JY2350102{n:06d}1", *face.values()]
                     for n in range(5000))
    data = out.getvalue().encode()
    with sessions() as session:
        rows = conversion.read_rows(data, "bench.csv", types.get(session, food).licence_type)
        origin = conversion.provenance("bench", "bench.csv", data, "bench")
        start, done = time.perf_counter(), 0
        for result in conversion.convert(session, keystore, rows, type_code=food, issuer_code=issuer,
                                         client_id=DEMO_CLIENT_ID, origin=origin, verify_url=public_url):
            if result.outcome is not conversion.Outcome.CONVERTED:
                raise SystemExit(f"bench: row {result.row} was not converted: {result.errors}")
            done += 1
            if time.perf_counter() - start >= SECONDS:
                break
        per_s = done / (time.perf_counter() - start)
    return {"licence_convert_rows_per_s": round(per_s, 1),
            "licence_convert_10000_rows_minutes": round(10_000 / per_s / 60, 1)}


def _qr_rates(sessions, keystore, demo: str) -> dict[str, float]:
    """QR payloads (licence/qr_payload.py) signed through the KeyStore with the demo
    department's SM2 QR key and verified, per second, and the QR version at level M each
    shipped type's code takes in the form its template draws (the URL form: the page's URL
    with the payload in its fragment), with a public URL of a province's length and a holder's
    name as the payload carries it (a company's whole, a person's masked; everything else is of
    fixed length)."""
    from licence import catalogue, identifier, qr_keys, qr_payload
    from licence.layout import qr_code
    from licence.verify import mask_name
    with sessions() as session:
        record = registry.get(session, demo)
        meta = record.metadata()
        key = qr_keys.current(session, keystore, meta.issuer_code)
        listed = [k.key for k in qr_keys.listed(session)]

    def claims(type_code: str, holder: str):
        licence_id = identifier.build(type_code, meta.issuer_code, identifier.parse(record.licence_id).serial, 1)
        return qr_payload.new_claims(licence_id=str(licence_id), issuer_code=meta.issuer_code, version=1,
                                     issued_at=record.created_at, valid_from=meta.valid_from, valid_to=meta.valid_to,
                                     face=meta.face, holder_name=holder, holder_code=meta.holder_code,
                                     status=(1, 123_456))

    def sign_one() -> str:
        with sessions() as session:
            text = qr_payload.sign(session, keystore, key, claims(meta.type_code, meta.holder_name))
            session.commit()
        return text

    sample = sign_one()
    figures: dict[str, float] = {"licence_qr_sign_per_s": round(rate(sign_one, SECONDS), 1),
               "licence_qr_verify_per_s": round(rate(lambda: qr_payload.verify(sample, listed), SECONDS), 1)}
    for type_code, licence_type in sorted(catalogue.shipped().items()):
        holder = mask_name("王小明") if licence_type.holder_kind == catalogue.HolderKind.NATURAL_PERSON \
            else meta.holder_name
        url_form = licence_type.template.qr_form == catalogue.QrForm.URL
        with sessions() as session:
            text = qr_payload.sign(session, keystore, key, claims(type_code, holder),
                                   page_url="https://zwfw.example.gov.cn" if url_form else None)
            session.commit()
        figures[f"licence_qr_version_{type_code}"] = int(qr_code(text).version)  # never a Micro QR here
    return figures


if __name__ == "__main__":
    print(json.dumps(run()))
