"""`trustctl verify` and `trustctl ofd text`: output and exit codes."""

import json

import pytest
from asn1crypto import pem
from click.testing import CliRunner

from api.cli.ofd import ofd
from api.cli.verify import verify
from ofd.package import Package, write_package
from ofd.signature import Stamp, sign_ofd
from ofd.verify import verify_ofd
from ofd.writer import write_ofd
from trust.report import EXIT_CODES, EXIT_UNREADABLE, Status

from tests.certs import make_leaf, make_root
from tests.fixtures.ofd import DOCUMENT, make_seal, seal_callback
from tests.oracles import shared_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    root = make_root("CLI Root")
    maker, signer = make_leaf(root, "Maker"), make_leaf(root, "Signer")
    seal = make_seal(maker, signer)
    sealed = sign_ofd(write_ofd(DOCUMENT), seal_callback(seal, signer), seal=seal, stamps=[Stamp(0, (10, 10, 40, 40))])
    (path / "sealed.ofd").write_bytes(sealed)
    (path / "root.pem").write_text(root.pem)
    parts = dict(Package.from_bytes(sealed).parts)
    parts["Doc_0/Pages/Page_0/Content.xml"] = parts["Doc_0/Pages/Page_0/Content.xml"].replace("营业".encode(), "营心".encode())
    (path / "tampered.ofd").write_bytes(write_package(parts))
    (path / "signed_value.dat").write_bytes(parts["Doc_0/Signs/Sign_0/SignedValue.dat"])
    (path / "signature.xml").write_bytes(parts["Doc_0/Signs/Sign_0/Signature.xml"])
    (path / "garbage.bin").write_bytes(b"this is not a document at all\x00\x01")
    (path / "truncated.ofd").write_bytes(sealed[:300])
    return path


def _run(*args):
    return CliRunner().invoke(verify, [str(a) for a in args])


def test_valid(files):
    result = _run(files / "sealed.ofd", "--trust-root", files / "root.pem")
    root = pem.unarmor((files / "root.pem").read_bytes())[2]
    report = verify_ofd((files / "sealed.ofd").read_bytes(), trusted_roots=(root,))
    assert result.exit_code == EXIT_CODES[report.status]
    assert "s001" in result.output and "完整性 integrity" in result.output
    assert report.status is Status.VALID and result.exit_code == 0


def test_invalid_names_the_file(files):
    result = _run(files / "tampered.ofd", "--trust-root", files / "root.pem")
    assert result.exit_code == 1
    assert "/Doc_0/Pages/Page_0/Content.xml" in result.output and "无效 INVALID" in result.output


def test_indeterminate_without_a_trusted_root_and_json(files):
    result = _run(files / "sealed.ofd", "--json")
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["status"] == "INDETERMINATE" and data["format"] == "ofd"
    checks = {c["check"]: c["status"] for c in data["signatures"][0]["checks"]}
    assert checks["integrity"] == "PASSED" and checks["chain"] == "INDETERMINATE"


@pytest.mark.parametrize("name", ["garbage.bin", "truncated.ofd"])
def test_unreadable_input(files, name):
    result = _run(files / name)
    assert result.exit_code == EXIT_UNREADABLE
    result = _run(files / name, "--json")
    assert result.exit_code == EXIT_UNREADABLE and json.loads(result.output)["status"] == "UNREADABLE"


def test_seal_and_ses_signature(files):
    expired = _run(shared_file("spec", "fixtures", "UserV4.esl"))
    assert expired.exit_code == 1 and "seal_validity" in expired.output
    good = _run(files / "signed_value.dat", "--data", files / "signature.xml", "--json")
    assert json.loads(good.output)["format"] == "ses" and good.exit_code == 2     # no trusted root given
    bad = _run(files / "signed_value.dat", "--data", files / "garbage.bin")
    assert bad.exit_code == 1


def test_ofd_text(files):
    result = CliRunner().invoke(ofd, ["text", str(files / "sealed.ofd")])
    assert result.exit_code == 0
    assert result.output.splitlines()[:3] == ["--- 第 1 页 / page 1 ---", "营业执照", "名称：福州某某科技有限公司"]
    assert CliRunner().invoke(ofd, ["text", str(files / "garbage.bin")]).exit_code == EXIT_UNREADABLE


def _columns(text: str) -> int:
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@pytest.mark.parametrize("name", ["sealed.ofd", "tampered.ofd"])
def test_the_report_fits_100_columns_and_names_each_certificate_once(files, name):
    """Issue #14: lines of ~600 characters repeating each subject DN up to four times."""
    signer = "CN=Signer,O=Trust Service Tests,C=CN"
    for verbose in ([], ["--verbose"]):
        result = _run(files / name, "--trust-root", files / "root.pem", *verbose)
        assert max(_columns(line) for line in result.output.splitlines()) <= 100, result.output
        assert not any(line.startswith(("）", "，", "。")) for line in (raw.strip() for raw in result.output.splitlines()))
        assert result.output.count(signer) == (1 if verbose else 0), result.output
        assert "签名者 signer: Signer" in result.output


def test_third_party_reports_fit_too():
    for path in (shared_file("spec", "fixtures", "SESV4SignDoc.ofd"),
                 shared_file("corpus", "ofd", "signed", "ofdrw__zsbk_two_seals_tampered.ofd")):
        output = _run(path).output
        assert max(_columns(line) for line in output.splitlines()) <= 100, output


def test_ofd_render_draws_the_page_with_its_seal(files, tmp_path):
    """`trustctl ofd render`: a person can look at what they verify (issue #14)."""
    import io

    import numpy as np
    from PIL import Image
    result = CliRunner().invoke(ofd, ["render", str(files / "sealed.ofd"), "--dpi", "96", "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0 and "page 1 of 2" in result.output, result.output
    image = Image.open(io.BytesIO((tmp_path / "p.png").read_bytes())).convert("RGB")
    assert image.size == (round(210 / 25.4 * 96), round(297 / 25.4 * 96))
    px = 96 / 25.4
    stamp = image.crop((int(10 * px), int(10 * px), int(50 * px), int(50 * px)))  # the Stamp(0, (10, 10, 40, 40))
    pixels = np.asarray(stamp).reshape(-1, 3)
    red = ((pixels[:, 0] > 150) & (pixels[:, 1] < 100) & (pixels[:, 2] < 100)).sum()
    assert red > 100, "the seal is drawn at its stamp"
    assert CliRunner().invoke(ofd, ["render", str(files / "sealed.ofd"), "--page", "3", "--out",
                                    str(tmp_path / "q.png")]).exit_code == 4  # usage: no such page
    assert CliRunner().invoke(ofd, ["render", str(files / "garbage.bin"), "--out", str(tmp_path / "r.png")]).exit_code \
        == EXIT_UNREADABLE
