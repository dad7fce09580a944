"""licence/presentation.py (issue #17, 亮证): a shown licence is accepted while fresh and once per
verifier nonce; a replay, the same code a minute and a second later, a changed byte and a
field the holder did not choose fail by name; the verifier sees the registry's standing now."""

from datetime import timedelta

import pytest

from ca import authority
from licence import presentation, registry
from licence.presentation import PREFIX
from trust import base45
from trust.clock import utc_now
from trust.db import session_factory
from trust.errors import InvalidInput
from trust.report import CheckName as C, CheckStatus as S, Status

from tests.fixtures.licence import issue_demo_licence

NONCE = "verifier-nonce-0001"


@pytest.fixture(scope="module")
def shown(ca):
    record, _pdf = issue_demo_licence(ca)
    with session_factory(ca[0])() as session:
        root = authority.get_authority(session, "sm2-root").certificate
        text, expires = presentation.present(session, ca[1], record, [], actor="person:test")
        session.commit()
    return {"record": record, "root": root, "text": text, "expires": expires}


def _verify(ca, shown, text=None, nonce=NONCE, clock=utc_now):
    with session_factory(ca[0])() as session:
        report = presentation.verify(session, text or shown["text"], nonce, trusted_roots=(shown["root"],),
                                     clock=clock)
        session.commit()
    return report


def test_a_fresh_presentation_verifies_once_per_nonce(ca, shown):
    first = _verify(ca, shown)
    assert first.status is Status.VALID, first.to_dict()
    assert first.format == "presentation" and first.licence["licence_id"] == shown["record"].licence_id
    assert first.licence["fields"]["name"]["value"] == "演示科技有限公司" and first.licence["disclosed"] == []
    replay = _verify(ca, shown)
    assert replay.status is Status.INVALID and "replay" in replay.signatures[0].checks[0].reason.en
    assert _verify(ca, shown, nonce="another-verifier-nonce").status is Status.VALID
    assert (shown["expires"] - utc_now()) <= presentation.TTL


def test_the_same_code_a_minute_and_a_second_later_fails_clearly(ca, shown):
    later = _verify(ca, shown, nonce="late-verifier-nonce-1", clock=lambda: utc_now() + timedelta(seconds=61))
    assert later.status is Status.INVALID
    [failed] = later.signatures[0].checks
    assert failed.check is C.TIMESTAMP and failed.status is S.FAILED and "expired" in failed.reason.en
    assert "请持证人重新出示" in failed.reason.zh


def test_a_changed_byte_a_foreign_code_and_a_bad_nonce(ca, shown):
    message = bytearray(base45.decode(shown["text"][len(PREFIX):]))
    message[len(message) // 2] ^= 1
    changed = _verify(ca, shown, text=PREFIX + base45.encode(bytes(message)), nonce="changed-byte-nonce-1")
    assert changed.status is Status.INVALID and changed.signatures[0].checks[0].check is C.FORMAT
    assert _verify(ca, shown, text="ZZ1:ABC", nonce="foreign-code-nonce-1").status is Status.INVALID
    with pytest.raises(InvalidInput, match="nonce"):
        _verify(ca, shown, nonce="short")


def test_only_conditional_fields_are_disclosed_and_a_revoked_licence_shows_revoked(ca, shown):
    record = shown["record"]
    with session_factory(ca[0])() as session:
        with pytest.raises(InvalidInput, match="有条件"):
            presentation.present(session, ca[1], record, ["name"], actor="person:test")
        registry.transition(session, record.licence_id, "revoke", actor="test", reason="测试吊销")
        session.commit()
    revoked = _verify(ca, shown, nonce="after-revocation-nonce")
    assert revoked.status is Status.INVALID
    assert revoked.signatures[0].check_status(C.LICENCE_STATUS) is S.FAILED


def test_a_code_holding_percent_20_verifies_bare_and_in_the_url_form(ca, shown):
    """"%20" is Base45 too: read bare, it must not become a space (a clean-clone run caught a
    presentation failing as 'a group of one character' when its code held one)."""
    with session_factory(ca[0])() as session:
        for _ in range(3000):  # each is signed afresh: about one in three hundred holds "%20"
            text, _ = presentation.present(session, ca[1], shown["record"], [], actor="person:test")
            if "%20" in text:
                break
        session.commit()
    assert "%20" in text
    browser = text.replace(" ", "%20")  # as the page sends location.hash: every space written %20
    for given, nonce in ((text, "percent-twenty-bare-1"), (f"https://trust.test/p#{text}", "percent-twenty-url-1"),
                         (browser, "percent-twenty-browser-1")):
        checked = _verify(ca, shown, text=given, nonce=nonce).signatures[0]  # (the licence is revoked by now)
        assert checked.check_status(C.FORMAT) is checked.check_status(C.SIGNATURE) is S.PASSED, checked
