"""The seal registry: esIDs, lifecycle and history, bulk revocation, use authorisation,
and the registry status in verification reports."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select, update

from seal import registry, signing
from seal.making import SealRejected, import_seal
from seal.models import seal_registry
from seal.registry import TRANSITIONS, SealStatus
from seal.verify import verify_seal, verify_ses_signature
from trust.audit import audit_log, verify_chain
from trust.errors import InvalidInput, NotFound, PermissionDenied
from trust.hashes import sm3
from trust.ids import generate_uscc
from trust.report import CheckName, CheckStatus, Status

from tests.fixtures.seal import HOLDER, USCC, new_seal

NOW = datetime.now(UTC)


def _apply(world, **options):
    values = dict(holder_name=HOLDER, holder_uscc=USCC, seal_type="official", name="深圳市测试局",
                  picture=world.picture, holder_certificate=world.holder_cert, holder_key_id=world.holder_key.id,
                  valid_from=NOW, valid_to=NOW + timedelta(days=30), actor="clerk-1")
    values.update(options)
    return registry.apply(world.session, **values)


def test_es_id_scheme(world):
    record = _apply(world, seal_type="finance")
    es_id = record.es_id
    assert len(es_id) == 19 and es_id.isdigit() and registry.es_id_ok(es_id)
    assert es_id[:6] == USCC[2:8] and es_id[6:8] == "03" and es_id[8:12] == str(NOW.year)
    assert not registry.es_id_ok(es_id[:-1] + str((int(es_id[-1]) + 1) % 10))  # the check digit catches a typo
    assert record.status == SealStatus.APPLIED and record.origin == "made" and record.seal is None


@pytest.mark.parametrize("field, value", [
    ("holder_uscc", "91350100M000100Y40"), ("holder_uscc", "not a code"), ("seal_type", "royal"),
    ("name", ""), ("name", "名" * 101), ("holder_name", " "), ("valid_to", NOW - timedelta(days=1)),
    ("valid_from", datetime(2026, 1, 1)), ("holder_certificate", b"")])
def test_bad_applications_are_refused(world, field, value):
    with pytest.raises(InvalidInput) as raised:
        _apply(world, **{field: value})
    assert raised.value.zh and raised.value.en
    assert registry.list_seals(world.session) == []


def _force(world, es_id, status):
    world.session.execute(update(seal_registry).where(seal_registry.c.es_id == es_id).values(status=status))


def test_every_illegal_transition_is_refused(world):
    record = _apply(world)
    for current in SealStatus:
        for target in SealStatus:
            _force(world, record.es_id, current.value)
            if target in TRANSITIONS[current]:
                assert registry.transition(world.session, record.es_id, target, actor="o").status == target
            else:
                with pytest.raises(registry.IllegalTransition) as raised:
                    registry.transition(world.session, record.es_id, target, actor="o")
                assert current.value in raised.value.en and "不能" in raised.value.zh


def test_lifecycle_history_and_audit(world):
    record = new_seal(world)
    registry.transition(world.session, record.es_id, "suspended", actor="officer-2", reason="调查 investigation")
    registry.transition(world.session, record.es_id, "active", actor="officer-2", reason="resolved")
    registry.transition(world.session, record.es_id, "revoked", actor="officer-3", reason="机构撤并 merged")
    registry.transition(world.session, record.es_id, "destroyed", actor="officer-3", reason="destroyed")
    world.session.commit()
    changes = registry.history(world.session, record.es_id)
    assert [(c.from_status, c.to_status) for c in changes] == [
        (None, "applied"), ("applied", "approved"), ("approved", "made"), ("made", "active"),
        ("active", "suspended"), ("suspended", "active"), ("active", "revoked"), ("revoked", "destroyed")]
    assert changes[4].actor == "officer-2" and changes[4].reason == "调查 investigation"
    actions = [r.action for r in world.session.execute(select(audit_log).where(audit_log.c.target == record.es_id))]
    assert actions.count("seal.status") == 7 and "seal.register" in actions
    assert verify_chain(world.session).ok


def test_seals_past_their_period_are_marked_expired(world):
    current, suspended, ended = new_seal(world), new_seal(world), new_seal(world)
    registry.transition(world.session, suspended.es_id, "suspended", actor="o")
    def later():
        return datetime.now(UTC) + timedelta(days=400)  # past every seal's period
    assert registry.expire_due(world.session, actor="cron", clock=lambda: datetime.now(UTC)) == []
    registry.transition(world.session, ended.es_id, "revoked", actor="o")
    expired = registry.expire_due(world.session, actor="cron", clock=later)
    assert sorted(expired) == sorted([current.es_id, suspended.es_id])  # a revoked seal stays revoked
    assert registry.get_seal(world.session, current.es_id).status == SealStatus.EXPIRED
    assert registry.history(world.session, suspended.es_id)[-1].reason == "validity period ended"
    assert registry.expire_due(world.session, actor="cron", clock=later) == []


def test_unknown_seal(world):
    with pytest.raises(NotFound):
        registry.get_seal(world.session, "44030001202600000")
    with pytest.raises(InvalidInput):
        registry.get_seal(world.session, "x" * 33)
    assert registry.find_seal(world.session, "nope") is None


def test_bulk_revocation_of_a_holder(world):
    seals = [new_seal(world, seal_type=t) for t in ("official", "contract", "approval")]
    registry.transition(world.session, seals[2].es_id, "revoked", actor="o", reason="earlier")
    other_uscc = generate_uscc(random.Random(9))
    other = registry.apply(world.session, holder_name="另一局", holder_uscc=other_uscc, seal_type="official",
                           name="另一局", picture=world.picture, holder_certificate=world.holder_cert,
                           holder_key_id=None, valid_from=NOW, valid_to=NOW + timedelta(days=3), actor="clerk")
    revoked = registry.revoke_many(world.session, holder_uscc=USCC, actor="officer-1", reason="并入审批局 merged")
    assert sorted(revoked) == sorted([seals[0].es_id, seals[1].es_id])
    assert {s.status for s in registry.list_seals(world.session, holder_uscc=USCC)} == {SealStatus.REVOKED}
    assert registry.get_seal(world.session, other.es_id).status == SealStatus.APPLIED


def test_bulk_revocation_of_a_list_is_all_or_nothing(world):
    a, b = new_seal(world), new_seal(world)
    with pytest.raises(NotFound):
        registry.revoke_many(world.session, es_ids=[a.es_id, "44030001202600000"], actor="o", reason="r")
    assert registry.get_seal(world.session, a.es_id).status == SealStatus.ACTIVE
    revoked = registry.revoke_many(world.session, es_ids=[a.es_id, b.es_id, a.es_id], actor="o", reason="r")
    assert revoked == sorted([a.es_id, b.es_id])
    assert {registry.get_seal(world.session, e).status for e in (a.es_id, b.es_id)} == {SealStatus.REVOKED}
    with pytest.raises(InvalidInput):
        registry.revoke_many(world.session, actor="o", reason="r")


def test_listing(world):
    seals = [new_seal(world, seal_type=t) for t in ("official", "contract")]
    registry.transition(world.session, seals[1].es_id, "suspended", actor="o")
    assert [s.es_id for s in registry.list_seals(world.session, status="suspended")] == [seals[1].es_id]
    assert [s.es_id for s in registry.list_seals(world.session, seal_type="official")] == [seals[0].es_id]
    assert len(registry.list_seals(world.session, limit=1)) == 1
    summary = registry.list_seals(world.session, holder_uscc=USCC)[0].summary()
    assert summary["type_zh"] == "公章" and summary["clients"] == ["app-1"] and "picture" not in summary
    for bad in (dict(limit=0), dict(limit=1001), dict(offset=-1), dict(status="lost")):
        with pytest.raises(InvalidInput):
            registry.list_seals(world.session, **bad)


def test_authorisation_replaces_each_list_given(world):
    record = new_seal(world, clients=["app-1", "app-2"], operators=[])
    assert record.client_ids == ("app-1", "app-2") and record.operators == ()
    record = registry.authorise(world.session, record.es_id, operators=["op-1"], actor="officer")
    assert record.client_ids == ("app-1", "app-2") and record.operators == ("op-1",)
    record = registry.authorise(world.session, record.es_id, client_ids=["app-3"])
    assert record.client_ids == ("app-3",)
    registry.check_use(world.session, record.es_id, client_id="app-3", operator="op-1")
    with pytest.raises(PermissionDenied):
        registry.check_use(world.session, record.es_id, client_id="app-1", operator="op-1")
    registry.authorise(world.session, record.es_id, operators=[])  # any operator of an authorised client
    registry.check_use(world.session, record.es_id, client_id="app-3", operator=None)
    with pytest.raises(InvalidInput):
        registry.authorise(world.session, record.es_id, client_ids=["x" * 256])


# ---------------------------------------------------------------- status in verification

def test_registry_status_in_verification(world):
    record = new_seal(world)
    lookup = registry.status_lookup(world.session)
    roots = [world.root.cert_der]
    signature = signing.sign(world.session, world.keystore, record.es_id, digest=sm3(b"x"), client_id="app-1",
                             purpose="p")
    report = verify_ses_signature(signature, data=b"x", trusted_roots=roots, seal_status=lookup)
    assert report.status == Status.VALID
    assert [c.status for c in report.checks if c.check == CheckName.SEAL_VALIDITY] == ["PASSED", "PASSED"]

    later = datetime.now(UTC) + timedelta(seconds=5)
    registry.transition(world.session, record.es_id, "revoked", actor="o", reason="r", clock=lambda: later)
    # signed before the revocation, by the signer's own clock: cannot be confirmed
    report = verify_ses_signature(signature, data=b"x", trusted_roots=roots, seal_status=lookup)
    assert report.check_status(CheckName.SEAL_VALIDITY) == CheckStatus.INDETERMINATE
    # a trusted time before the revocation: valid
    at = later - timedelta(seconds=2)
    assert verify_ses_signature(signature, data=b"x", trusted_roots=roots, seal_status=lookup, at=at).status == "VALID"
    # after it: invalid; the seal alone too
    report = verify_ses_signature(signature, data=b"x", trusted_roots=roots, seal_status=lookup,
                                  at=later + timedelta(seconds=1))
    assert report.status == Status.INVALID and "revoked" in str(report.to_dict())
    assert verify_seal(record.seal, trusted_roots=roots, seal_status=lookup,
                       at=later + timedelta(seconds=1)).status == Status.INVALID
    # without the registry (no database), the same signature verifies as before
    assert verify_ses_signature(signature, data=b"x", trusted_roots=roots).status == Status.VALID


def test_a_seal_not_ours_gets_no_registry_check(world):
    record = new_seal(world)
    other = bytearray(record.seal)  # same esID, other bytes: not our seal
    other[-1] ^= 1
    assert registry.status_lookup(world.session)(record.es_id, bytes(other)) is None
    assert registry.status_lookup(world.session)("unknown", record.seal) is None


# ---------------------------------------------------------------- bad input, fuzzed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(es_id=st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(), st.none()))
def test_any_es_id_is_found_or_refused_cleanly(world, es_id):
    try:
        registry.get_seal(world.session, es_id)
    except (NotFound, InvalidInput) as error:
        assert error.zh and error.en
    assert registry.status_lookup(world.session)(es_id, b"") is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(der=st.one_of(st.binary(max_size=300), st.binary(max_size=60).map(lambda b: b"\x30\x82\x01\x00" + b)))
def test_garbage_offered_for_import_is_rejected_with_a_report(world, der):
    with pytest.raises(SealRejected) as raised:
        import_seal(world.session, der, trusted_roots=[world.root.cert_der])
    assert raised.value.report.status != Status.VALID and raised.value.zh


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(digests=st.lists(st.binary(max_size=40), min_size=1, max_size=5))
def test_batches_of_odd_digests_are_refused_before_any_signature(world, digests):
    if all(len(d) == 32 for d in digests):
        return
    with pytest.raises(InvalidInput):
        signing.sign_batch(world.session, world.keystore, "44030001202600000", digests, client_id="a", purpose="p")
