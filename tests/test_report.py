"""The report's derived statuses follow the rules of ARCHITECTURE.md."""

import json

from trust.report import CheckName as C, CheckStatus as S, Report, SignatureReport, Status, check


def _sig(*statuses: S) -> SignatureReport:
    return SignatureReport("s001", "Seal", tuple(check(C.INTEGRITY, s, "理由", "reason") for s in statuses))


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
    assert sig["checks"][0] == {"check": "integrity", "status": "PASSED", "reason": {"zh": "理由", "en": "reason"}}
