"""ofdrw-verify (../shared/tools/ofdrw-verify/: the reference Java OFD library, which nobody
here wrote) on every kind of sealed OFD our code produces, and on tampered copies of each,
which it must reject (issue #13). The licence types are checked where they are issued
(test_licence_issue.py), the demo sample where `init --demo` writes it (test_cli_serve.py).

ofdrw checks digests, Seal.esl against the embedded seal and the signed value; chains,
validity and time stamps are ours alone (its README says what it does not check)."""

from pathlib import Path

import pytest

from ofd.package import Package, write_package
from ofd.signature import Stamp, sign_ofd
from ofd.verify import verify_ofd
from seal.ses import build_signature_v4, parse_signature
from trust.hashes import sm3
from trust.report import CheckName as C, CheckStatus as S, Status

from tests.fixtures.ofd import make_seal, seal_callback
from tests.oracles import ofdrw_verify


def _flip_in(data: bytes, inside: bytes) -> bytes:
    """One bit of ``data`` changed in the middle of ``inside`` (which it contains)."""
    position = data.index(inside) + len(inside) // 2
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:]


def _tamper(sealed_ofd: bytes, how: str) -> bytes:
    parts = dict(Package.from_bytes(sealed_ofd).parts)
    if how == "content":
        page = "Doc_0/Pages/Page_0/Content.xml"
        parts[page] = parts[page].replace("营业".encode(), "营心".encode())
    elif how == "signature-xml":
        xml = "Doc_0/Signs/Sign_0/Signature.xml"
        parts[xml] = parts[xml].replace(b"<ofd:Provider ", b"<ofd:Provider  ", 1)
    elif how == "signed-value":
        value = "Doc_0/Signs/Sign_0/SignedValue.dat"
        parts[value] = _flip_in(parts[value], parse_signature(parts[value]).tbs_raw[-40:])
    elif how == "seal-esl":
        esl = "Doc_0/Signs/Sign_0/Seal.esl"
        parts[esl] = _flip_in(parts[esl], parts[esl][-200:])
    return write_package(parts)


@pytest.fixture(scope="module")
def produced(pki, unsigned, sealed, tsa, tmp_path_factory) -> dict[str, Path]:
    """Each kind of sealed OFD we make, written to a file, with tampered copies."""
    stamp, _tsa_cert = tsa
    _root, maker, signer, second = pki
    folder = tmp_path_factory.mktemp("ofdrw")
    seal = make_seal(maker, signer)

    def time_stamped(signature_xml: bytes, signature_loc: str) -> bytes:
        return build_signature_v4(seal=seal, data_hash=sm3(signature_xml), property_info=signature_loc,
                                  signer_cert=signer.cert_der, sign=signer.sign, time_stamp=stamp)

    second_seal = make_seal(maker, second, "第二枚章")
    documents = {
        "sealed": sealed,
        "countersigned": sign_ofd(sealed, seal_callback(second_seal, second), seal=second_seal,
                                  stamps=[Stamp(1, (100, 200, 40, 40))]),
        "time-stamped": sign_ofd(unsigned, time_stamped, seal=seal, stamps=[Stamp(0, (20, 200, 40, 40))]),
        "bare-sign": sign_ofd(unsigned, lambda xml, loc: signer.sign(xml), sign_type="Sign"),
    }
    for how in ("content", "signature-xml", "signed-value", "seal-esl"):
        documents[f"sealed-tampered-{how}"] = _tamper(sealed, how)
    documents["countersigned-tampered-first"] = _tamper(documents["countersigned"], "signed-value")
    documents["time-stamped-tampered-content"] = _tamper(documents["time-stamped"], "content")
    documents["bare-sign-tampered-content"] = _tamper(documents["bare-sign"], "content")
    paths = {}
    for name, data in documents.items():
        paths[name] = folder / f"{name}.ofd"
        paths[name].write_bytes(data)
    (folder / "signer.pem").write_text(signer.pem)
    paths["signer.pem"] = folder / "signer.pem"
    return paths


def _verdicts(produced, names) -> dict[str, list[dict]]:
    verdicts = ofdrw_verify(*(produced[n] for n in names), certs=(produced["signer.pem"],))
    by_file: dict[str, list[dict]] = {}
    for verdict in verdicts:
        by_file.setdefault(Path(verdict["file"]).stem, []).append(verdict)
    return by_file


def test_every_kind_of_sealed_ofd_we_produce_passes_ofdrw(pki, produced):
    names = ["sealed", "countersigned", "time-stamped", "bare-sign"]
    verdicts = _verdicts(produced, names)
    assert {n: len(v) for n, v in verdicts.items()} == {"sealed": 1, "countersigned": 2, "time-stamped": 1,
                                                         "bare-sign": 1}
    for name in names:
        assert all(v["ok"] for v in verdicts[name]), (name, verdicts[name])
        # and ours agrees: VALID with the test root (the TSA's root too, for the time stamp)
        report = verify_ofd(produced[name].read_bytes(), trusted_roots=(pki[0].cert_der,),
                            certificates=(pki[2].cert_der,))
        assert all(s.check_status(C.SIGNATURE) is S.PASSED for s in report.signatures), name
    stamped = verify_ofd(produced["time-stamped"].read_bytes(), trusted_roots=(pki[0].cert_der,))
    assert stamped.signatures[0].check_status(C.TIMESTAMP) is not S.NOT_APPLICABLE


def test_ofdrw_rejects_every_tampered_copy_and_so_do_we(pki, produced):
    names = [n for n in produced if "tampered" in n]
    verdicts = _verdicts(produced, names)
    for name in names:
        assert not all(v["ok"] for v in verdicts[name]), (name, verdicts[name])
        report = verify_ofd(produced[name].read_bytes(), trusted_roots=(pki[0].cert_der,),
                            certificates=(pki[2].cert_der,))
        assert report.status is Status.INVALID, name
