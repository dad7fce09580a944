"""The catalogue of licence types as data, and the checking and printing of face fields."""

import copy
import json
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from licence import catalogue, face
from licence.catalogue import CatalogueError, FieldKind, Source
from licence.face import FaceInvalid
from licence.metadata import HolderCodeType

from tests.licence_support import BUSINESS_FACE, ENTERPRISE_USCC, FOOD_FACE, PERSON_ID, PHYSICIAN_FACE

TYPES = catalogue.shipped()
BUSINESS = TYPES["11100000MB0143028R001"]
FOOD = TYPES["11100000MB0143028R002"]
PHYSICIAN = TYPES["11100000MB0015237P001"]
USCC = ENTERPRISE_USCC
ID_NUMBER = PERSON_ID   # GB 11643's own example: born 1949-12-31, female


def test_three_types_ship_with_their_real_faces():
    assert {t.name for t in TYPES.values()} == {"营业执照", "食品经营许可证", "医师执业证书"}
    assert BUSINESS.holder_code_types == (HolderCodeType.CREDIT_CODE,) and BUSINESS.validity == "long_term"
    assert BUSINESS.field("business_scope").kind == FieldKind.LONG_TEXT
    assert BUSINESS.field("uscc").source == Source.HOLDER_CODE and BUSINESS.licence_no == "uscc"
    assert FOOD.validity_years == 5 and set(FOOD.holder_code_types) == {HolderCodeType.CREDIT_CODE,
                                                                        HolderCodeType.ID_NUMBER}
    assert FOOD.field("supervisors").sharing == "有条件"
    assert PHYSICIAN.holder_kind == "natural_person" and PHYSICIAN.field("id_number").sharing == "有条件"
    for licence_type in TYPES.values():
        assert licence_type.type_code.startswith(licence_type.defining_authority_code)
        assert catalogue.load(json.dumps(licence_type.definition)).fingerprint() == licence_type.fingerprint()


def _broken(change):
    definition = copy.deepcopy(BUSINESS.definition)
    change(definition)
    return definition


@pytest.mark.parametrize("change, path", [
    (lambda d: d.pop("name"), "$.name"),
    (lambda d: d.update(type_code="11100000MB0143028R01"), "$.type_code"),
    (lambda d: d.update(defining_authority_code="11100000MB0143028A"), "$.defining_authority_code"),
    (lambda d: d.update(type_code="91350100M000100Y43001"), "$.type_code"),
    (lambda d: d["fields"][2].update(options=[]), "$.fields[2].options"),
    (lambda d: d["fields"][0].update(kind="colour"), "$.fields[0].kind"),
    (lambda d: d["fields"][0].update(sharing="sometimes"), "$.fields[0].sharing"),
    (lambda d: d["fields"][1].update(key="Name"), "$.fields[1].key"),
    (lambda d: d["fields"].append(dict(d["fields"][1])), "$.fields"),
    (lambda d: d["fields"][3].update(pattern="(("), "$.fields[3].pattern"),
    (lambda d: d["fields"][3].update(colour="red"), "$.fields[3].colour"),
    (lambda d: d.update(licence_no="nothing"), "$.licence_no"),
    (lambda d: d["layout"]["boxes"][0].update(field="nothing"), "$.layout.boxes[0]"),
    (lambda d: d["layout"]["boxes"][0].update(x=250), "$.layout.boxes[0]"),
    (lambda d: d["layout"]["boxes"][5].pop("h"), "$.layout.boxes[5]"),
    (lambda d: d["layout"]["boxes"][0].update(size=True), "$.layout.boxes[0].size"),
    (lambda d: d.update(validity={"rule": "years"}), "$.validity.years"),
    (lambda d: d.update(seal_type="invisible"), "$.seal_type"),
    (lambda d: d.update(holder_code_types=["999"]), "$.holder_code_types"),
])
def test_a_broken_definition_is_refused_naming_where(change, path):
    with pytest.raises(CatalogueError) as caught:
        catalogue.load(_broken(change))
    assert path in caught.value.en and path in caught.value.zh


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b"[" * 5000, b"x" * (catalogue.MAX_DEFINITION_BYTES + 1)])
def test_junk_is_refused_with_our_error(data):
    with pytest.raises(CatalogueError):
        catalogue.load(data)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_arbitrary_json_fails_only_with_our_error(value):
    try:
        catalogue.load(json.dumps(value))
    except CatalogueError:
        pass


# ---------------------------------------------------------------- face fields

def test_a_good_business_face_is_canonical():
    values = face.validate(BUSINESS, BUSINESS_FACE, holder_code=USCC, holder_code_type=HolderCodeType.CREDIT_CODE)
    assert values["registered_capital"] == "10000000.00" and values["term_to"] == "长期"
    assert "uscc" not in values and "name" not in values  # taken from the record


def test_every_bad_field_is_named_at_once_in_both_languages():
    bad = {**BUSINESS_FACE, "entity_type": "黑帮", "established_on": "2019-02-30", "registered_capital": "-1",
           "legal_representative": "张\x00三", "colour": "red", "name": "私自填写"}
    del bad["domicile"]
    with pytest.raises(FaceInvalid) as caught:
        face.validate(BUSINESS, bad, holder_code=USCC, holder_code_type=HolderCodeType.CREDIT_CODE)
    named = {e.key for e in caught.value.errors}
    assert named == {"entity_type", "established_on", "registered_capital", "legal_representative", "colour",
                     "name", "domicile"}
    for error in caught.value.errors:
        assert error.zh and error.en and error.key in caught.value.en


def test_lengths_patterns_and_check_characters_are_enforced():
    food = dict(FOOD_FACE)
    assert face.validate(FOOD, food, holder_code=USCC, holder_code_type=HolderCodeType.CREDIT_CODE)
    for key, value in (("licence_no", "JY1350102000012"), ("complaint_phone", "call us"), ("items", "长" * 1001)):
        with pytest.raises(FaceInvalid) as caught:
            face.validate(FOOD, {**food, key: value}, holder_code=USCC, holder_code_type=HolderCodeType.CREDIT_CODE)
        assert [e.key for e in caught.value.errors] == [key]


def test_a_physician_face_must_agree_with_the_id_number():
    good = dict(PHYSICIAN_FACE)
    assert face.validate(PHYSICIAN, good, holder_code=ID_NUMBER, holder_code_type=HolderCodeType.ID_NUMBER)
    with pytest.raises(FaceInvalid) as caught:
        face.validate(PHYSICIAN, {**good, "sex": "男", "born_on": "1950-01-01"}, holder_code=ID_NUMBER,
                      holder_code_type=HolderCodeType.ID_NUMBER)
    assert {e.key for e in caught.value.errors} == {"sex", "born_on"}


@pytest.mark.parametrize("amount, text", [
    ("10000000", "壹仟万元整"), ("100010000", "壹亿零壹万元整"), ("100005", "壹拾万零伍元整"), ("1000100", "壹佰万零壹佰元整"),
    ("1005.5", "壹仟零伍元伍角"), ("1050.05", "壹仟零伍拾元零伍分"), ("0", "零元整"), ("0.3", "叁角"),
    ("1000000000000", "壹万亿元整"), ("20000300000", "贰佰亿零叁拾万元整"),
])
def test_money_prints_in_capital_numerals(amount, text):
    assert face.yuan_in_capitals(Decimal(amount)) == text


def test_printed_values_take_sourced_fields_from_the_record():
    values = face.validate(BUSINESS, BUSINESS_FACE, holder_code=USCC, holder_code_type=HolderCodeType.CREDIT_CODE)
    record = {Source.HOLDER_NAME: "福州测试科技有限公司", Source.HOLDER_CODE: USCC, Source.ISSUER_NAME: "福州市市场监督管理局",
              Source.ISSUE_DATE: "2026-12-07", Source.VALID_FROM: "2026-12-07", Source.VALID_TO: None}
    printed = face.printed(BUSINESS, values, record)
    assert printed["uscc"] == USCC and printed["registration_date"] == "2026年12月07日"
    assert printed["registered_capital"] == "壹仟万元整" and printed["term_to"] == "长期"
    assert printed["established_on"] == "2019年03月01日"
