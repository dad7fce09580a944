"""GB/T 36904 licence identifiers and GB/T 36903 metadata: the spec's real vectors, a
made-up one refused, round trips by hypothesis, and hostile text failing with our error."""

from datetime import date

import pytest
from hypothesis import given, strategies as st

from licence import identifier, metadata
from licence.identifier import InvalidLicenceId
from licence.metadata import HolderCodeType, LicenceMetadata, MetadataError

VECTORS = [  # elicence-gbt369xx.md §2: real identifiers, check characters recomputed
    ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
     ("11100000000013338W011", "11430000006122244L", "20230000403", 1)),
    ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
     ("11100000000013338W009", "11330105002500287C", "2025052201", 2)),
    ("1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9",
     ("11100000MB03271699022", "340100", "000000016", 1)),
]


@pytest.mark.parametrize("text, parts", VECTORS)
def test_real_identifiers_parse_and_rebuild(text, parts):
    parsed = identifier.parse(text)
    assert (parsed.type_code, parsed.issuer_code, parsed.serial, parsed.version) == parts
    assert str(identifier.build(*parts)) == text


def test_the_swagger_example_is_refused_for_its_check_character():
    made_up = ("1.2.156.3005.2.11100000000013661B006.113700000045046442.209FA4E88F9E4C878F3E9BED2CE7EA49"
               ".001.M")
    with pytest.raises(InvalidLicenceId) as caught:
        identifier.parse(made_up)
    assert "expected D" in caught.value.en and "应为 D" in caught.value.zh


@pytest.mark.parametrize("text, words", [
    ("", "ASCII"), ("2.2.156.3005.2.A.B.C.001.X", "starts with"), ("1.2.156.3005.2.A.B.C.01.X", "root.type"),
    ("1.2.156.3005.2.a.B.C.001.X", "root.type"), ("1.2.156.3005.2.A.B.C.000.0", "version"),
    ("1.2.156.3005.2." + "A" * 200, "ASCII characters"), ("1.2.156.3005.2.证.B.C.001.X", "ASCII"),
])
def test_malformed_identifiers_name_the_problem(text, words):
    with pytest.raises(InvalidLicenceId) as caught:
        identifier.parse(text)
    assert words in caught.value.en and caught.value.zh


def test_a_new_version_keeps_the_base_and_gets_its_own_check_character():
    first = identifier.parse(VECTORS[0][0])
    second = first.with_version(2)
    assert second.base == first.base and str(second).endswith(".002." + second.check_char)
    assert identifier.parse(str(second)) == second


_part = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=30)


@given(_part, _part, _part, st.integers(1, 999))
def test_every_built_identifier_parses_back(type_code, issuer, serial, version):
    built = identifier.build(type_code, issuer, serial, version)
    assert identifier.parse(str(built)) == built


@given(_part, _part, _part, st.integers(1, 999), st.data())
def test_any_single_substitution_is_caught(type_code, issuer, serial, version, data):
    text = str(identifier.build(type_code, issuer, serial, version))
    body_start = len(identifier.ROOT) + 1
    index = data.draw(st.integers(body_start, len(text) - 1))
    if text[index] == ".":
        return
    alphabet = "0123456789" if text.rfind(".", 0, index) == len(text) - 6 else "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != text[index]]))
    with pytest.raises(InvalidLicenceId):
        identifier.parse(text[:index] + replacement + text[index + 1:])


@given(st.text(max_size=300))
def test_arbitrary_text_fails_only_with_our_error(text):
    try:
        identifier.parse(text)
    except InvalidLicenceId:
        pass


# ---------------------------------------------------------------- metadata (GB/T 36903)

META = LicenceMetadata(
    licence_id=VECTORS[0][0], type_name="营业执照", type_code="11100000MB0143028R001", licence_no="91350100M000100Y43",
    issuer_name="福州市市场监督管理局", issuer_code="11430000006122244L", issue_date=date(2026, 12, 1),
    holder_name="福州测试科技有限公司", holder_code="91350100M000100Y43", holder_code_type=HolderCodeType.CREDIT_CODE,
    valid_from=date(2026, 12, 1), valid_to=None, area_code="350100",
    face=(("name", "名称", "福州测试科技有限公司"),))


def test_metadata_items_use_the_standards_chinese_names_and_long_term():
    items = dict(META.items())
    assert items["证照标识"] == META.licence_id and items["持证主体代码类型代码"] == "001"
    assert items["持证主体代码类型"] == "统一社会信用代码" and items["有效期截止日期"] == "长期"
    assert items["证照颁发日期"] == "2026-12-01"


def test_metadata_xml_round_trips():
    assert metadata.from_xml(META.to_xml()) == META


def test_metadata_is_read_by_code_or_by_other_names_in_any_order():
    items = [("ZZYXQJZRQ", "9999-12-31"), ("颁证单位", "某局"), *[(n, t) for n, t in META.items()
                                                             if n not in ("有效期截止日期", "证照颁发机构")]]
    read = metadata.from_items(reversed(items))
    assert read.valid_to is None and read.issuer_name == "某局" and read.licence_id == META.licence_id


@pytest.mark.parametrize("data, words", [
    (b"<a>", "not readable XML"), (b"<LicenceMetadata/>", "lacks"),
    (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><LicenceMetadata>&e;</LicenceMetadata>', "XML"),
    (b"x" * (metadata.MAX_METADATA_BYTES + 1), "too large"),
])
def test_bad_metadata_fails_with_our_error(data, words):
    with pytest.raises(MetadataError) as caught:
        metadata.from_xml(data)
    assert words in caught.value.en


@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_metadata_fail_only_with_our_error(data):
    try:
        metadata.from_xml(data)
    except MetadataError:
        pass
