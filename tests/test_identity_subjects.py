"""Subjects: persons, legal persons and officers, their identifiers (checked by trust.ids),
assurance levels from an identity source, roles, and representatives."""

import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import select

from identity import passwords, subjects
from identity.models import identity_subject
from identity.sources import LocalRegistrySource, configured_source
from trust import audit
from trust.db import make_engine, session_factory, upgrade
from trust.errors import InvalidInput, NotFound, StorageError
from trust.ids import generate_resident_id, generate_uscc

PASSWORD = "正确的口令 correct horse 1"
RID = generate_resident_id(random.Random(1), birth=date(1990, 5, 17))
USCC = generate_uscc(random.Random(2))


@pytest.fixture
def lite(tmp_path):
    """A session on SQLite only, for tests where the database makes no difference."""
    engine = make_engine(f"sqlite:///{tmp_path / 'lite.db'}")
    upgrade(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"persons": [{"name": "张三", "resident_id": RID}],
                                "legal_persons": [{"name": "示例科技有限公司", "uscc": USCC}]},
                               ensure_ascii=False), encoding="utf-8")
    return LocalRegistrySource(path)


def test_person_l1_self_asserted(session):
    person = subjects.create_person(session, username="Zhang.San", password=PASSWORD, name=" 张三 ",
                                    resident_id=RID.lower())
    session.commit()
    assert person.kind == "person" and person.username == "zhang.san" and person.display_name == "张三"
    assert person.identifier == RID and person.assurance_level == "L1"
    assert person.assurance_source == subjects.SELF_ASSERTED and person.status == "active"
    assert not person.totp_enrolled and person.department is None and len(person.id) == 32
    assert subjects.get_subject(session, person.id) == person
    assert subjects.find_subject(session, "ZHANG.SAN") == person
    assert subjects.find_subject(session, "nobody") is None and subjects.find_subject(session, "x") is None
    stored = session.execute(select(identity_subject.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored and passwords.verify_secret(stored, PASSWORD)
    assert audit.verify_chain(session).ok


def test_a_face_to_face_check_raises_the_level_to_l3(session):
    from identity.oidc import user_claims
    person = subjects.create_person(session, username="lisi", password=PASSWORD, name="李四", resident_id=RID)
    raised = subjects.set_assurance(session, person.id, "L3", source="counter:某某区政务服务中心", actor="officer-7")
    assert (raised.assurance_level, raised.assurance_source) == ("L3", "counter:某某区政务服务中心")
    claims = user_claims(session, raised, frozenset({"realname"}))
    assert claims["assurance_level"] == "L3" and claims["assurance_source"] == "counter:某某区政务服务中心"
    record = session.execute(select(audit.audit_log.c.actor, audit.audit_log.c.detail).where(
        audit.audit_log.c.action == "identity.assurance")).one()
    assert record.actor == "officer-7" and json.loads(record.detail) == {
        "from": "L1", "to": "L3", "source": "counter:某某区政务服务中心"}
    for level, source in (("L4", "counter:x"), ("L3", ""), ("L3", "x" * 201)):
        with pytest.raises(InvalidInput):
            subjects.set_assurance(session, person.id, level, source=source, actor="officer-7")
    with pytest.raises(NotFound):
        subjects.set_assurance(session, "0" * 32, "L3", source="counter:x", actor="officer-7")


def test_registry_confirms_l2(lite, registry):
    person = subjects.create_person(lite, username="zhangsan", password=PASSWORD, name="张三",
                                    resident_id=RID, source=registry)
    assert person.assurance_level == "L2" and person.assurance_source == "local-registry:registry.json"
    company = subjects.create_legal_person(lite, username="company", password=PASSWORD,
                                           name="示例科技有限公司", uscc=USCC.lower(), source=registry)
    assert company.assurance_level == "L2" and company.identifier == USCC
    # A name that does not match the registry stays self-asserted.
    other = subjects.create_person(lite, username="lisi", password=PASSWORD, name="李四",
                                   resident_id=generate_resident_id(random.Random(3)), source=registry)
    assert other.assurance_level == "L1"


def test_registry_file_problems(tmp_path):
    missing = LocalRegistrySource(tmp_path / "none.json")
    with pytest.raises(StorageError):
        missing.check_person("张三", RID)
    bad = tmp_path / "bad.json"
    for content in (b"\xff\xfe", b"[1, 2]", b'{"persons": {}}', b'{"persons": [1]}', b"[" * 100_000):
        bad.write_bytes(content)
        with pytest.raises(InvalidInput):
            LocalRegistrySource(bad).check_person("张三", RID)
    bad.write_bytes(b" " * (4 * 1024 * 1024 + 1))
    with pytest.raises(InvalidInput):
        LocalRegistrySource(bad).check_person("张三", RID)


def test_configured_source(tmp_path):
    assert configured_source({"TRUST_HOME": str(tmp_path)}) is None
    (tmp_path / "identity-registry.json").write_text("{}")
    assert configured_source({"TRUST_HOME": str(tmp_path)}).path == tmp_path / "identity-registry.json"
    assert configured_source({"TRUST_IDENTITY_REGISTRY": "/x/r.json"}).path.name == "r.json"


def test_identifiers_are_validated(lite):
    bad_rid = RID[:17] + ("0" if RID[17] != "0" else "1")
    with pytest.raises(InvalidInput) as raised:
        subjects.create_person(lite, username="zhangsan", password=PASSWORD, name="张三", resident_id=bad_rid)
    assert "校验码" in raised.value.zh
    with pytest.raises(InvalidInput):
        subjects.create_legal_person(lite, username="company", password=PASSWORD, name="公司", uscc=USCC[:-1] + "I")


def test_duplicates_refused(session):
    subjects.create_person(session, username="zhangsan", password=PASSWORD, name="张三", resident_id=RID)
    with pytest.raises(InvalidInput):
        subjects.create_person(session, username="ZhangSan", password=PASSWORD, name="张三",
                               resident_id=generate_resident_id(random.Random(9)))
    with pytest.raises(InvalidInput):
        subjects.create_person(session, username="other", password=PASSWORD, name="张三", resident_id=RID)
    session.commit()  # the first one stays
    assert [s.username for s in subjects.list_subjects(session)] == ["zhangsan"]


@pytest.mark.parametrize("kwargs", [
    {"username": "ab"}, {"username": "-abc"}, {"username": "a" * 65}, {"username": "名字"},
    {"password": "short"}, {"password": "zhangsan"}, {"password": "x" * 257}, {"name": ""},
    {"name": "a\x00b"}, {"name": "x" * 101}, {"assurance_level": "L9"}])
def test_bad_input_refused(lite, kwargs):
    values = {"username": "zhangsan", "password": PASSWORD, "name": "张三", "resident_id": RID} | kwargs
    with pytest.raises(InvalidInput):
        subjects.create_person(lite, **values)


def test_officer_roles(lite):
    officer = subjects.create_officer(lite, username="officer.li", password=PASSWORD, name="李四",
                                      staff_number="GA-0001", department="省市场监督管理局",
                                      roles=["seal-admin", "ca-officer", "seal-admin"])
    assert officer.kind == "officer" and officer.assurance_level == "L3"
    assert officer.department == "省市场监督管理局" and officer.identifier == "GA-0001"
    assert subjects.roles(lite, officer.id) == frozenset({"seal-admin", "ca-officer"})
    subjects.set_status(lite, officer.id, "disabled", actor="test")
    assert subjects.roles(lite, officer.id) == frozenset() and subjects.roles(lite, "nobody") == frozenset()
    assert subjects.set_status(lite, officer.id, "active", actor="test").status == "active"
    for roles in (["Seal Admin"], "seal-admin", [f"r{i:02d}" for i in range(21)]):
        with pytest.raises(InvalidInput):
            subjects.create_officer(lite, username="officer.wang", password=PASSWORD, name="王五",
                                    staff_number="GA-0002", department="省市场监督管理局", roles=roles)


def test_representatives(session):
    now = datetime.now(UTC)
    person = subjects.create_person(session, username="zhangsan", password=PASSWORD, name="张三", resident_id=RID)
    company = subjects.create_legal_person(session, username="company", password=PASSWORD, name="公司", uscc=USCC)
    rep = subjects.authorise_representative(session, legal_person_id=company.id, person_id=person.id,
                                            scope=["licence:read", "seal:sign"], until=now + timedelta(days=30))
    session.commit()
    assert subjects.representatives(session, company.id) == [rep]
    assert rep.scope == frozenset({"licence:read", "seal:sign"})
    # Authorising again replaces; an ended authorisation is not listed.
    subjects.authorise_representative(session, legal_person_id=company.id, person_id=person.id,
                                      scope=["licence:read"], until=now + timedelta(days=1))
    assert [r.scope for r in subjects.representatives(session, company.id)] == [frozenset({"licence:read"})]
    assert subjects.representatives(session, company.id, clock=lambda: now + timedelta(days=2)) == []
    with pytest.raises(InvalidInput):  # the wrong way round
        subjects.authorise_representative(session, legal_person_id=person.id, person_id=company.id,
                                          scope=["licence:read"], until=now + timedelta(days=1))
    with pytest.raises(InvalidInput):
        subjects.authorise_representative(session, legal_person_id=company.id, person_id=person.id,
                                          scope=["licence:read"], until=now - timedelta(days=1))
    with pytest.raises(InvalidInput):
        subjects.authorise_representative(session, legal_person_id=company.id, person_id=person.id,
                                          scope=[], until=now + timedelta(days=1))
    with pytest.raises(NotFound):
        subjects.authorise_representative(session, legal_person_id=company.id, person_id="0" * 32,
                                          scope=["licence:read"], until=now + timedelta(days=1))


def test_a_person_represents_a_bounded_number_of_legal_persons(session):
    """Every current authorisation goes into the person's ID token, so their number is bounded."""
    now = datetime.now(UTC)
    person = subjects.create_person(session, username="agent", password=PASSWORD, name="代理人", resident_id=RID)
    companies = [subjects.create_legal_person(session, username=f"company-{i}", password=PASSWORD, name=f"公司{i}",
                                              uscc=generate_uscc(random.Random(100 + i)))
                 for i in range(subjects.MAX_REPRESENTED + 1)]
    for company in companies[:-1]:
        subjects.authorise_representative(session, legal_person_id=company.id, person_id=person.id,
                                          scope=["licence:read"], until=now + timedelta(days=1))
    with pytest.raises(InvalidInput) as raised:
        subjects.authorise_representative(session, legal_person_id=companies[-1].id, person_id=person.id,
                                          scope=["licence:read"], until=now + timedelta(days=1))
    assert str(subjects.MAX_REPRESENTED) in raised.value.en
    # renewing one already held is not a new one
    subjects.authorise_representative(session, legal_person_id=companies[0].id, person_id=person.id,
                                      scope=["seal:sign"], until=now + timedelta(days=2))
    assert len(subjects.represented(session, person.id)) == subjects.MAX_REPRESENTED


def test_get_subject_unknown(lite):
    for value in ("0" * 32, "nope", None, 5):
        with pytest.raises(NotFound):
            subjects.get_subject(lite, value)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=80))
def test_usernames_either_normalise_or_are_refused(text):
    try:
        name = subjects.normalise_username(text)
    except InvalidInput:
        return
    assert name == name.lower() and 3 <= len(name) <= 64 and subjects.normalise_username(name) == name


@settings(max_examples=60, deadline=None)
@given(content=st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["persons", "legal_persons", "name", "resident_id", "uscc", "x"]), inner, max_size=4),
    max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_registry_parser_answers_or_refuses(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("reg") / "r.json"
    path.write_bytes(content)
    source = LocalRegistrySource(path)
    for check in (lambda: source.check_person("张三", RID), lambda: source.check_legal_person("公司", USCC)):
        try:
            assert check() is None
        except InvalidInput:
            pass
