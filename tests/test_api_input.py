"""The one body reader and integer parser (api/json_body.py): the causes of the 500s a
hostile client found are each a clear 400 naming what is wrong."""

import json

import pytest

from identity import subjects

from tests.fixtures.api import bearer, officer, problem


@pytest.mark.parametrize("body, words", [
    ("[" * 1000 + "]" * 1000, "nests deeper than 32"),
    ('{"csr": "a", "csr": "b"}', "'csr' appears twice"),
    ('{"csr": "\\ud800"}', "'csr' contains an unpaired surrogate"),
    ('{"csr": "a\\u0000b"}', "'csr' contains a NUL"),
    ('{"csr": NaN}', "NaN is not a number JSON allows"),
    ('{"csr": ', "not valid JSON (line 1, column"),
    ("[1]", "must be a JSON object"),
])
def test_bad_json_is_a_400_naming_the_problem(client, body, words):
    found = problem(client.post("/api/ca/csr/check", data=body, content_type="application/json"), 400,
                    "invalid_input")
    assert words in found["detail"] and found["detail_zh"]


def test_bytes_that_are_not_utf8_and_bodies_that_are_not_json(client):
    found = problem(client.post("/api/ca/csr/check", data=b'{"csr": "\xff"}', content_type="application/json"),
                    400, "invalid_input")
    assert "not UTF-8" in found["detail"]
    found = problem(client.post("/api/ca/csr/check", data="csr=x", content_type="text/plain"), 400, "invalid_input")
    assert "Content-Type: application/json" in found["detail"]


@pytest.mark.parametrize("query, words", [
    ("limit=²", "'limit' is a whole number from 1 to 1000"), ("limit=٣", "'limit' is a whole number"),
    (f"offset={10 ** 400}", "'offset' is a whole number"), ("limit=0", "from 1 to 1000"),
    ("limit=1&limit=2", "'limit' is given more than once"), ("holder=%00", "'holder' contains a NUL"),
])
def test_query_parameters_are_ascii_integers_in_range_and_clean_text(app, client, query, words):
    found = problem(client.get(f"/api/v1/seals?{query}", headers=officer(app)), 400, "invalid_input")
    assert words in found["detail"]


def test_a_certificate_validity_of_a_trillion_days_is_refused_not_an_overflow(app, client):
    with app.extensions["trust.sessions"]() as session:
        person = subjects.create_officer(session, username="ca-1", password="Correct-Horse-42!", name="王",
                                         staff_number="C-1", department="CA", roles=["ca-officer"])
        session.commit()
    headers = bearer(app, client_id="officer-console", subject=person.id, scopes=("ca:issue",))
    found = problem(client.post("/api/ca/sm2-issuing/certificates", headers=headers,
                                data=json.dumps({"validity_days": 10 ** 12, "profile": "server", "csr": "x"}),
                                content_type="application/json"), 400, "invalid_input")
    assert "'validity_days' is a whole number from 1 to 36525" in found["detail"]
