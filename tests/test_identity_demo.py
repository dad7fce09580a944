"""The demo identities of `trustctl init --demo`: made once, usable at once, no secret twice."""

from datetime import UTC, datetime

import pyotp

from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyStore
from hsm.soft import SoftBackend
from identity import authn, demo, subjects
from trust import audit


def test_demo_identities(session, tmp_path):
    create_master_key_file(tmp_path / "master.key")
    keystore = KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft")
    made = demo.create_demo_identities(session, keystore, tmp_path)
    session.commit()
    citizen, enterprise, officer = made["citizen"], made["enterprise"], made["officer"]
    assert citizen["assurance_level"] == "L2" and citizen["assurance_source"].startswith("local-registry:")
    assert enterprise["assurance_level"] == "L2" and enterprise["representatives"] == [citizen["id"]]
    assert officer["totp_enrolled"] and officer["roles"] == ["ca-officer", "licence-officer", "seal-admin"]
    # One of each separated administrator duty (三员), each with TOTP.
    assert [made[k]["roles"] for k in ("sysadmin", "auditor")] == [["sys-admin"], ["audit-admin"]]
    assert made["sysadmin"]["totp_enrolled"] and made["auditor"]["totp_enrolled"]
    for who in (citizen, enterprise, officer):
        assert authn.authenticate_password(session, who["username"], who["password"], address="127.0.0.1").id == who["id"]
    # The officer's app, from the URI shown: the current code works at once.
    app = pyotp.parse_uri(officer["totp_uri"])
    authn.verify_totp(session, keystore, officer["id"], app.at(datetime.now(UTC)))
    session.commit()
    text = demo.notice(made)
    assert citizen["password"] in text and officer["totp_secret"] in text

    again = demo.create_demo_identities(session, keystore, tmp_path)
    session.commit()
    people = ("citizen", "enterprise", "officer", "sysadmin", "auditor")
    assert [again[k]["id"] for k in people] == [made[k]["id"] for k in people]
    assert all(again[k]["password"] is None for k in people)
    assert again["officer"]["totp_secret"] is None and "exists, unchanged" in demo.notice(again)
    assert len(subjects.list_subjects(session)) == 5
    assert audit.verify_chain(session).ok
