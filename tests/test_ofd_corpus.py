"""Every OFD of ../shared/corpus/ofd is read without error, and every signed one gets the
verdict MANIFEST.tsv records (an independent check) for integrity, signature and seal."""

import csv
import re

import pytest
from asn1crypto import pem

from ofd.package import Package, write_package
from ofd.reader import read_ofd
from ofd.render import render_page
from ofd.text import document_text
from ofd.verify import verify_ofd
from trust.report import CheckName as C, CheckStatus as S, Code, Status

from tests.oracles import shared_file

CRYPTO_CHECKS = (C.INTEGRITY, C.SIGNATURE, C.SEAL)


def _rows() -> list[dict]:
    with open(shared_file("corpus", "MANIFEST.tsv"), encoding="utf-8", newline="") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if row["path"].startswith("ofd/")]


ROWS = _rows()
SIGNED = [row for row in ROWS if re.search(r"EXPECT\(my independent check\): \w+ \[", row["what_it_is"])]


def _data(row) -> bytes:
    return shared_file("corpus", *row["path"].split("/")).read_bytes()


@pytest.mark.parametrize("row", ROWS, ids=[r["path"].rsplit("/", 1)[1] for r in ROWS])
def test_every_file_is_read(row):
    data = _data(row)
    document = read_ofd(data)
    pages = re.search(r"pages=(\d+)", row["what_it_is"])
    assert pages and len(document.pages) == int(pages.group(1))
    document_text(data)
    assert render_page(data, 0, dpi=36).startswith(b"\x89PNG")


def _expected(row) -> list[dict]:
    """Per signature, in order: the verdict, the files whose reference digest mismatched, and
    what the independent check found for each cryptographic step."""
    verdicts = re.search(r"EXPECT\(my independent check\): \w+ \[([^\]]*)\]", row["what_it_is"]).group(1)
    blocks = row["what_it_is"].split(" | [S")[1:]
    out = []
    for verdict, block in zip(re.findall(r"'(\w+)'", verdicts), blocks, strict=True):
        mismatch = re.search(r"reference digest mismatch: ([^|;]+)", block)
        out.append({
            "verdict": verdict,
            "mismatched": mismatch.group(1).strip().split(",") if mismatch else [],
            "sm2_ok": "SM2 sig OK" in block,
            "maker_ok": "seal-maker sig OK" in block,
        })
    return out


def _certificates(row) -> tuple[bytes, ...]:
    """The signer certificate the manifest names for a signed value that carries none."""
    named = re.findall(r"public key of (certs/\S+\.pem)", row["what_it_is"])
    return tuple(pem.unarmor(shared_file("corpus", *path.split("/")).read_bytes())[2] for path in named)


@pytest.mark.parametrize("row", SIGNED, ids=[r["path"].rsplit("/", 1)[1] for r in SIGNED])
def test_signed_files_get_the_manifest_verdict(row):
    report = verify_ofd(_data(row), certificates=_certificates(row))
    expected = _expected(row)
    assert len(report.signatures) == len(expected)
    for signature, want in zip(report.signatures, expected, strict=True):
        statuses = {name: signature.check_status(name) for name in CRYPTO_CHECKS}
        if want["verdict"] == "VALID":
            want_seal = S.NOT_APPLICABLE if signature.type == "Sign" else S.PASSED
            assert statuses == {C.INTEGRITY: S.PASSED, C.SIGNATURE: S.PASSED, C.SEAL: want_seal}, signature.to_dict()
            assert signature.check_status(C.CHAIN) is not S.PASSED    # the real roots are absent
        else:
            assert S.FAILED in statuses.values(), signature.to_dict()
            assert signature.status is Status.INVALID
            reason = " ".join(c.reason.en for c in signature.checks if c.check is C.INTEGRITY)
            assert all(name in reason for name in want["mismatched"]), reason
            if want["mismatched"]:
                assert statuses[C.INTEGRITY] is S.FAILED
        for item in signature.checks:  # a code on every check that did not pass, from the vocabulary
            assert (item.code in set(Code)) == (item.status in (S.FAILED, S.INDETERMINATE)), item
        if statuses[C.INTEGRITY] is S.FAILED:
            assert next(c.code for c in signature.checks if c.check is C.INTEGRITY) is Code.HASH_FAILURE
        if statuses[C.SIGNATURE] is S.FAILED:
            assert next(c.code for c in signature.checks if c.check is C.SIGNATURE) is Code.SIG_CRYPTO_FAILURE
        # each step the independent check saw succeed succeeds here too
        if want["sm2_ok"]:
            assert statuses[C.SIGNATURE] is S.PASSED, signature.to_dict()
        if want["maker_ok"]:
            assert statuses[C.SEAL] is S.PASSED, signature.to_dict()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_gmt_0099_integrity_protection(version):
    """ofdrw-crypto's OFDEntries.xml + signedvalue.dat: the manifest says VALID."""
    (row,) = [r for r in ROWS if f"hello-integrity_{version}" in r["path"]]
    (signature,) = verify_ofd(_data(row)).signatures
    assert signature.type == "Integrity" and signature.check_status(C.SCOPE) is S.PASSED
    if signature.check_status(C.FORMAT) is S.FAILED:
        pytest.xfail("seal/ does not yet read ofdrw-crypto 1.x's bare SignedData (no ContentInfo): "
                     + signature.checks[0].reason.en)
    for name in CRYPTO_CHECKS[:2]:
        assert signature.check_status(name) is S.PASSED, signature.to_dict()
    assert signature.check_status(C.CERTIFICATE) is S.PASSED
    smuggled = Package.from_bytes(_data(row)).parts | {"Doc_0/extra.xml": b"<x/>"}
    (signature,) = verify_ofd(write_package(smuggled)).signatures
    assert signature.check_status(C.SCOPE) is S.FAILED and "/Doc_0/extra.xml" in signature.checks[-1].reason.en


def test_declared_but_missing_signatures_are_invalid_not_a_crash():
    (row,) = [r for r in ROWS if "dangling_signatures" in r["path"]]
    report = verify_ofd(_data(row))
    assert report.status is Status.INVALID
    (signature,) = report.signatures
    assert signature.check_status(C.FORMAT) is S.FAILED
    assert "/Doc_0/Signs/Signatures.xml" in signature.checks[0].reason.en


def test_unsigned_files_are_indeterminate():
    for row in ROWS:
        if row["path"].startswith("ofd/unsigned/"):
            report = verify_ofd(_data(row))
            assert report.signatures == () and report.status is Status.INDETERMINATE
