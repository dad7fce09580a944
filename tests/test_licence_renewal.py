"""licence/renewal.py and `trustctl licence lta-renew` (issue #15): a licence PDF's archival
time stamp is renewed before its TSA's certificate expires, only when that extends its life,
once; and pyHanko's own PAdES LTA validation, run at a time after the signing and the first
TSA's certificates have expired, still finds the signature valid from the evidence in the
file."""

import asyncio
from datetime import timedelta
from io import BytesIO

import pytest
from asn1crypto import x509 as asn1_x509

from ca import authority, revocation, tsa
from licence import registry, renewal
from licence.pdf_verify import newest_stamp_expiry, signed_revision, verify_pdf
from licence.renewal import Outcome
from trust.db import session_factory
from trust.report import Status

from tests.fixtures.licence import issue_demo_licence


def _new_tsa(session, keystore, label: str, days: int):
    return authority.issue_with_new_key(session, keystore, "ecdsa-issuing", "tsa",
                                        subject={"C": "CN", "O": authority.DEFAULT_ORGANIZATION, "CN": f"TSA {label}"},
                                        label=f"tsa/{label}", validity=timedelta(days=days), actor="test")


@pytest.fixture(scope="module")
def short_lived(ca):
    """A licence PDF whose time stamps come from a TSA certificate that lasts 30 days."""
    engine, keystore = ca[0], ca[1]
    with session_factory(engine)() as session:
        demo_tsa = tsa.find_signer(session, keystore, "ecdsa").certificate
        revocation.revoke(session, "ecdsa-issuing", demo_tsa.serial_number, "superseded", actor="test")
        short = _new_tsa(session, keystore, "short", 30)
        session.commit()
    record, pdf = issue_demo_licence(ca)
    return record, pdf, short


def _renew(ca, within_days: int):
    with session_factory(ca[0])() as session:
        return list(renewal.renew_all(session, ca[1], within=timedelta(days=within_days), actor="test"))


def _stored(ca, licence_id):
    with session_factory(ca[0])() as session:
        return registry.pdf_file(session, licence_id)


def test_renewal_only_when_due_and_only_when_it_extends_the_life(ca, short_lived):
    record, pdf, short = short_lived
    assert newest_stamp_expiry(pdf) == short.not_after
    assert {r.outcome for r in _renew(ca, 7)} == {Outcome.NOT_DUE}  # 30 days left
    # due within 60 days, but our TSA's certificate is the same short one: nothing to gain
    assert {r.outcome for r in _renew(ca, 60)} == {Outcome.TSA_EXPIRES_TOO}
    assert _stored(ca, record.licence_id) == pdf

    with session_factory(ca[0])() as session:
        _new_tsa(session, ca[1], "long", 5 * 365)
        session.commit()
    [done] = _renew(ca, 60)
    assert done.outcome is Outcome.RENEWED and done.licence_id == record.licence_id
    renewed = _stored(ca, record.licence_id)
    assert renewed.startswith(pdf) and signed_revision(renewed) == signed_revision(pdf)
    assert newest_stamp_expiry(renewed) - newest_stamp_expiry(pdf) > timedelta(days=4 * 365)
    report = verify_pdf(renewed, trusted_roots=(ca[4],))
    assert report.status is Status.VALID, report.to_dict()
    assert [s.type for s in report.signatures] == ["PAdES", "DocTimeStamp", "DocTimeStamp"]
    # a second run renews nothing: the newest stamp's TSA is the one we would use
    assert {r.outcome for r in _renew(ca, 60)} == {Outcome.NOT_DUE}
    assert _stored(ca, record.licence_id) == renewed


def _lta_spec(ca):
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
    from pyhanko_certvalidator.registry import SimpleTrustManager
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[asn1_x509.Certificate.load(ca[4])]),
        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO))
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=policy,
        revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def test_pyhanko_ades_lta_validation_passes_now_and_after_the_certificates_expired(ca, short_lived):
    """ETSI EN 319 102-1 §5.6.3 (signatures with long-term availability) as pyHanko implements
    it, with our root as the only anchor and nothing fetched. Now, the renewed file passes.
    A day after both the signer's certificate (2 years) and the first TSA's (30 days) have
    expired, it still passes from the evidence in the file: pyHanko's simulation of a future
    validation, which takes the chain of document time stamps as kept up until then (what
    lta-renew does) and needs the file to hold the revocation data of the time they were made.
    (It needed OCSP answers for the signer and the TSAs in the DSS: with the issuing CA's CRL
    alone, pyHanko finds no path for the CRL's issuer in the past and answers
    REVOCATION_OUT_OF_BOUNDS_NO_POE.)"""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.ades.report import AdESPassed
    from pyhanko.sign.validation.ades import ades_lta_validation, simulate_future_ades_lta_validation

    record, issued, _short = short_lived
    renewed = PdfFileReader(BytesIO(_stored(ca, record.licence_id)))
    assert len(renewed.embedded_timestamp_signatures) == 2  # renewed by the test above
    signature = renewed.embedded_regular_signatures[0]
    now = asyncio.run(ades_lta_validation(signature, _lta_spec(ca)))
    assert now.ades_subindic is AdESPassed.OK and now.api_status.bottom_line, now
    assert now.oldest_evidence_record_timestamp is not None

    signer_expiry = signature.signer_cert["tbs_certificate"]["validity"]["not_after"].native
    later = max(signer_expiry, newest_stamp_expiry(issued)) + timedelta(days=1)
    future = asyncio.run(simulate_future_ades_lta_validation(signature, _lta_spec(ca), future_validation_time=later))
    assert future.ades_subindic is AdESPassed.OK, future
