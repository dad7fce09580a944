"""The report's derived statuses follow the rules of ARCHITECTURE.md; a check that did not
pass carries a code from one vocabulary."""

import json

import pytest

from trust.report import CheckName, CheckName as C, CheckStatus as S, Code, Report, SignatureReport, Status, check


def _sig(*statuses: S) -> SignatureReport:
    return SignatureReport("s001", "Seal", tuple(check(C.INTEGRITY, s, zh="理由", en="reason") for s in statuses))


def test_signature_status_rules():
    assert _sig(S.PASSED, S.NOT_APPLICABLE).status is Status.VALID
    assert _sig(S.PASSED, S.FAILED, S.INDETERMINATE).status is Status.INVALID
    assert _sig(S.PASSED, S.INDETERMINATE).status is Status.INDETERMINATE
    assert _sig(S.PASSED, S.WARNING).status is Status.INDETERMINATE
    assert _sig(S.NOT_APPLICABLE).status is Status.INDETERMINATE  # nothing was actually shown
    assert _sig(S.PASSED, S.FAILED).check_status(C.INTEGRITY) is S.FAILED


def test_document_takes_the_worst_and_no_signature_is_indeterminate():
    assert Report("ofd", (_sig(S.PASSED), _sig(S.INDETERMINATE))).status is Status.INDETERMINATE
    assert Report("ofd", (_sig(S.PASSED), _sig(S.FAILED), _sig(S.INDETERMINATE))).status is Status.INVALID
    empty = Report("ofd", ()).to_dict()
    assert empty["status"] == "INDETERMINATE" and empty["warnings"][0]["en"]


def test_json_shape():
    data = json.loads(json.dumps(Report("ses", (_sig(S.PASSED),)).to_dict(), ensure_ascii=False))
    assert set(data) == {"status", "format", "signatures", "warnings"}
    sig = data["signatures"][0]
    assert set(sig) == {"id", "type", "status", "signer", "seal", "signing_time", "checks"}
    assert sig["checks"][0] == {"check": "integrity", "status": "PASSED", "code": None,
                                "reason": {"zh": "理由", "en": "reason"}}


def test_a_check_that_did_not_pass_says_why_for_machines():
    for name in CheckName:  # each check's failure means something without the place saying more
        failed = check(name, S.FAILED, zh="理由", en="reason")
        assert failed.code in set(Code) and failed.code is not Code.GENERIC, name
        assert check(name, S.INDETERMINATE, zh="理由", en="reason").code in set(Code)
    assert check(CheckName.REVOCATION, S.FAILED, zh="理由", en="reason").to_dict()["code"] == "REVOKED"
    assert check(CheckName.REVOCATION, S.INDETERMINATE, zh="理由", en="reason").code is Code.TRY_LATER
    assert check(CheckName.CERTIFICATE, S.FAILED, zh="理由", en="reason", code=Code.EXPIRED).code is Code.EXPIRED
    for status in (S.PASSED, S.WARNING, S.NOT_APPLICABLE):
        assert check(CheckName.CHAIN, status, zh="理由", en="reason").code is None
        with pytest.raises(ValueError):
            check(CheckName.CHAIN, status, zh="理由", en="reason", code=Code.GENERIC)
