"""trust.ids: GB 32100 credit code, GB 11643 ID number, ISO 7064 MOD 37,36 (spec §2, §5, §6)."""

import random
from datetime import date

import pytest
from hypothesis import assume, given, settings, strategies as st

from trust.errors import InvalidInput
from trust.ids import (
    MOD37_36_ALPHABET,
    USCC_CHARSET,
    USCC_DEPARTMENTS,
    ResidentId,
    generate_resident_id,
    generate_uscc,
    mod37_36_check_char,
    mod37_36_valid,
    resident_id_check_char,
    uscc_check_char,
    uscc_org_code_ok,
    validate_resident_id,
    validate_uscc,
)

USCC_VECTOR = "91350100M000100Y43"  # spec §5
ID_VECTOR = "11010519491231002X"  # spec §6, the standard's own example
TODAY = date(2025, 6, 1)

# spec §2: real licence identifiers without the root arc and the dots, with their check chars
LICENCE_BODIES = [
    ("11100000000013338W011" "11430000006122244L" "20230000403" "001", "U"),
    ("11100000000013338W009" "11330105002500287C" "2025052201" "002", "0"),
    ("11100000MB03271699022" "340100" "000000016" "001", "9"),
]
# spec §2: a Swagger "example" that claims check M; the real check character is D.
MADE_UP_BODY = ("11100000000013661B006" "113700000045046442"
                "209FA4E88F9E4C878F3E9BED2CE7EA49" "001")


def raises_invalid(fn, *args, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        fn(*args, **kwargs)
    assert info.value.en and info.value.zh
    return info.value


def with_id_check(body17: str) -> str:
    return body17 + resident_id_check_char(body17)


# --- GB 32100 ---------------------------------------------------------------------------

def test_uscc_vector():
    assert uscc_check_char(USCC_VECTOR[:17]) == "3"
    assert validate_uscc(USCC_VECTOR) == USCC_VECTOR
    assert uscc_org_code_ok(USCC_VECTOR)


@pytest.mark.parametrize("code", ["11430000006122244L", "11330105002500287C",
                                  "11100000000013338W", "11100000MB03271699"])
def test_uscc_codes_inside_the_real_licence_identifiers(code):
    assert validate_uscc(code) == code
    assert uscc_org_code_ok(code)


def test_uscc_is_stripped_and_upper_cased():
    assert validate_uscc(" 91350100m000100y43\n") == USCC_VECTOR


@pytest.mark.parametrize("value", [None, 91350100, b"91350100M000100Y43", ["9"]])
def test_uscc_not_a_string(value):
    err = raises_invalid(validate_uscc, value)
    assert "must be a string" in err.en and "必须是文本" in err.zh


@pytest.mark.parametrize("code,length", [("", 0), (USCC_VECTOR[:17], 17), (USCC_VECTOR + "0", 19)])
def test_uscc_length(code, length):
    err = raises_invalid(validate_uscc, code)
    assert f"must have 18 characters, got {length}" in err.en
    assert f"应为18位，实际为{length}位" in err.zh


def test_uscc_character_outside_the_set_is_named_with_its_position():
    err = raises_invalid(validate_uscc, "91350100MOOO100Y43")
    assert "character 'O' at position 10" in err.en
    assert "第10位的字符'O'" in err.zh


def test_uscc_invisible_character_is_shown_as_code_point():
    err = raises_invalid(validate_uscc, "91350100M0\u200b0100Y43")
    assert "U+200B at position 11" in err.en


def test_uscc_unknown_department():
    body = "0" + USCC_VECTOR[1:17]
    err = raises_invalid(validate_uscc, body + uscc_check_char(body))
    assert "department code '0' (position 1) is unknown" in err.en
    assert "登记管理部门代码'0'未知" in err.zh


@pytest.mark.parametrize("department", sorted(USCC_DEPARTMENTS))
def test_uscc_every_known_department_including_secondary_ones(department):
    assert validate_uscc(generate_uscc(random.Random(1), department=department))


def test_uscc_category_is_not_checked():
    assert validate_uscc(generate_uscc(random.Random(2), department="9", category="Y"))


def test_uscc_region_must_be_digits():
    body = "9135A100M000100Y4"
    err = raises_invalid(validate_uscc, body + uscc_check_char(body))
    assert "(positions 3-8) must be digits, got '35A100'" in err.en
    assert "第3-8位" in err.zh and "'35A100'" in err.zh


def test_uscc_wrong_check_character_says_the_right_one():
    err = raises_invalid(validate_uscc, USCC_VECTOR[:17] + "4")
    assert "is '4', it should be '3'" in err.en
    assert "第18位为'4'，应为'3'" in err.zh


def test_uscc_check_char_input_errors():
    assert "got 16" in raises_invalid(uscc_check_char, USCC_VECTOR[:16]).en
    assert "character 'I' at position 1" in raises_invalid(uscc_check_char, "I" * 17).en
    assert "must be a string" in raises_invalid(uscc_check_char, 1).en


def test_org_code_check_is_separate_from_validation():
    body = USCC_VECTOR[:16] + "5"  # embedded organisation code check should be 4
    code = body + uscc_check_char(body)
    assert validate_uscc(code) == code
    assert not uscc_org_code_ok(code)
    assert "should be" in raises_invalid(uscc_org_code_ok, USCC_VECTOR[:17] + "4").en


def test_uscc_every_single_substitution_of_the_vector_is_detected():
    for pos, original in enumerate(USCC_VECTOR):
        for ch in USCC_CHARSET.replace(original, ""):
            raises_invalid(validate_uscc, USCC_VECTOR[:pos] + ch + USCC_VECTOR[pos + 1:])


@given(st.randoms(use_true_random=False), st.sampled_from(sorted(USCC_DEPARTMENTS)),
       st.sampled_from(USCC_CHARSET), st.text("0123456789", min_size=6, max_size=6))
def test_generated_uscc_validates(rng, department, category, region):
    code = generate_uscc(rng, department, category, region)
    assert validate_uscc(code) == code
    assert code[:8] == department + category + region
    assert uscc_org_code_ok(code)


@given(st.randoms(use_true_random=False), st.integers(0, 17), st.sampled_from(USCC_CHARSET))
def test_uscc_single_substitution_is_detected(rng, pos, ch):
    code = generate_uscc(rng)
    assume(code[pos] != ch)
    raises_invalid(validate_uscc, code[:pos] + ch + code[pos + 1:])


# --- GB 11643 ---------------------------------------------------------------------------

def test_resident_id_vector():
    assert resident_id_check_char(ID_VECTOR[:17]) == "X"
    assert validate_resident_id(ID_VECTOR, today=TODAY) == ResidentId(
        number=ID_VECTOR, region_code="110105", birth_date=date(1949, 12, 31),
        sex="F", sequence="002")


def test_resident_id_lowercase_x_is_stored_upper_case():
    assert validate_resident_id(" 11010519491231002x ", today=TODAY).number == ID_VECTOR


def test_resident_id_odd_sequence_is_male():
    number = with_id_check("11010519491231001")
    assert validate_resident_id(number, today=TODAY).sex == "M"


@pytest.mark.parametrize("value", [None, 11010519491231002, b"11010519491231002X"])
def test_resident_id_not_a_string(value):
    assert "must be a string" in raises_invalid(validate_resident_id, value).en


def test_resident_id_length_old_15_digit_number_is_refused():
    err = raises_invalid(validate_resident_id, "110105491231002")
    assert "must have 18 characters, got 15" in err.en
    assert "应为18位，实际为15位" in err.zh


def test_resident_id_non_digit_is_named_with_its_position():
    err = raises_invalid(validate_resident_id, "1101051949123X002X")
    assert "character 'X' at position 14" in err.en and "only digits" in err.en
    assert "第14位的字符'X'" in err.zh


def test_resident_id_bad_last_character():
    err = raises_invalid(validate_resident_id, "11010519491231002Y")
    assert "character 'Y' at position 18" in err.en and "a digit or X" in err.en
    assert "第18位的字符'Y'" in err.zh


@pytest.mark.parametrize("yyyymmdd", ["20230230", "20230229", "19491301", "00000101", "19490100"])
def test_resident_id_impossible_birth_date(yyyymmdd):
    err = raises_invalid(validate_resident_id, with_id_check("110105" + yyyymmdd + "002"),
                         today=TODAY)
    assert f"birth date {yyyymmdd} is not a real calendar date" in err.en
    assert f"出生日期{yyyymmdd}不是有效日期" in err.zh


def test_resident_id_leap_day_is_a_real_date():
    number = with_id_check("11010520240229002")
    assert validate_resident_id(number, today=TODAY).birth_date == date(2024, 2, 29)


def test_resident_id_birth_before_1850():
    err = raises_invalid(validate_resident_id, with_id_check("11010518491231002"), today=TODAY)
    assert "18491231 is before 1850" in err.en and "早于1850年" in err.zh


def test_resident_id_birth_in_the_future():
    number = with_id_check("11010520250602002")
    err = raises_invalid(validate_resident_id, number, today=TODAY)
    assert "20250602 is in the future (today is 2025-06-01)" in err.en
    assert "晚于今天（2025-06-01）" in err.zh
    assert validate_resident_id(number, today=date(2025, 6, 2)).birth_date == date(2025, 6, 2)


def test_resident_id_wrong_check_character_says_the_right_one():
    err = raises_invalid(validate_resident_id, ID_VECTOR[:17] + "1", today=TODAY)
    assert "is '1', it should be 'X'" in err.en
    assert "第18位为'1'，应为'X'" in err.zh


def test_resident_id_check_char_input_errors():
    assert "got 18" in raises_invalid(resident_id_check_char, ID_VECTOR).en
    assert "position 17" in raises_invalid(resident_id_check_char, ID_VECTOR[:16] + "X").en


def test_generate_resident_id_arguments():
    rng = random.Random(3)
    number = generate_resident_id(rng, region="330106", birth=date(2001, 2, 3), sex="F")
    parsed = validate_resident_id(number)
    assert (parsed.region_code, parsed.birth_date, parsed.sex) == ("330106", date(2001, 2, 3), "F")
    assert "'M' or 'F'" in raises_invalid(generate_resident_id, rng, sex="x").en
    assert "not allowed" in raises_invalid(generate_resident_id, rng, region="11010A").en
    assert "future" in raises_invalid(generate_resident_id, rng, birth=date(9999, 1, 1)).en


def test_resident_id_every_single_substitution_of_the_vector_is_detected():
    for pos, original in enumerate(ID_VECTOR):
        allowed = "0123456789X" if pos == 17 else "0123456789"
        for ch in allowed.replace(original, ""):
            raises_invalid(validate_resident_id, ID_VECTOR[:pos] + ch + ID_VECTOR[pos + 1:],
                           today=TODAY)


@given(st.randoms(use_true_random=False))
def test_generated_resident_id_validates(rng):
    number = generate_resident_id(rng)
    assert validate_resident_id(number).number == number


@given(st.randoms(use_true_random=False), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_resident_id_single_substitution_is_detected(rng, pos, ch):
    number = generate_resident_id(rng)
    assume(number[pos] != ch and (pos == 17 or ch != "X"))
    raises_invalid(validate_resident_id, number[:pos] + ch + number[pos + 1:])


# --- ISO 7064 MOD 37,36 -----------------------------------------------------------------

@pytest.mark.parametrize("body,check", LICENCE_BODIES)
def test_mod37_36_vectors(body, check):
    assert mod37_36_check_char(body) == check
    assert mod37_36_valid(body + check)


def test_mod37_36_made_up_identifier_is_not_valid():
    assert mod37_36_check_char(MADE_UP_BODY) == "D"
    assert not mod37_36_valid(MADE_UP_BODY + "M")


def test_mod37_36_input_errors():
    assert "empty" in raises_invalid(mod37_36_check_char, "").en
    err = raises_invalid(mod37_36_check_char, "1.2")
    assert "character '.' at position 2" in err.en and "第2位的字符'.'" in err.zh
    assert "position 1" in raises_invalid(mod37_36_check_char, "a").en
    assert "must be a string" in raises_invalid(mod37_36_check_char, 12).en
    assert "must be a string" in raises_invalid(mod37_36_valid, None).en


@pytest.mark.parametrize("s", ["", "U", "1.2.156.3005.2.U", LICENCE_BODIES[0][0].lower() + "u"])
def test_mod37_36_valid_is_false_for_malformed_strings(s):
    assert mod37_36_valid(s) is False


def test_mod37_36_every_single_substitution_of_the_vectors_is_detected():
    for body, check in LICENCE_BODIES:
        s = body + check
        for pos, original in enumerate(s):
            for ch in MOD37_36_ALPHABET.replace(original, ""):
                assert not mod37_36_valid(s[:pos] + ch + s[pos + 1:])


@given(st.text(MOD37_36_ALPHABET, min_size=1, max_size=80), st.data())
def test_mod37_36_single_substitution_is_detected(body, data):
    s = body + mod37_36_check_char(body)
    assert mod37_36_valid(s)
    pos = data.draw(st.integers(0, len(s) - 1))
    ch = data.draw(st.sampled_from(MOD37_36_ALPHABET.replace(s[pos], "")))
    assert not mod37_36_valid(s[:pos] + ch + s[pos + 1:])


# --- arbitrary input --------------------------------------------------------------------

ARBITRARY = st.one_of(st.text(), st.text("0123456789Xx ", min_size=17, max_size=19),
                      st.text(USCC_CHARSET + "ioxy", min_size=17, max_size=19))


@settings(max_examples=300)
@given(ARBITRARY)
def test_arbitrary_text_only_ever_raises_invalid_input(text):
    for fn in (validate_uscc, uscc_check_char, uscc_org_code_ok, validate_resident_id,
               resident_id_check_char, mod37_36_check_char):
        try:
            fn(text)
        except InvalidInput as err:
            assert err.en and err.zh
    assert mod37_36_valid(text) in (True, False)
