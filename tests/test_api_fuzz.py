"""Every route of the app, found by walking its URL map (a new route is covered without
editing this test), fed hostile input: deep JSON, non-ASCII digits, lone surrogates and NUL
in every string, integers of 10^12 and 10^400, wrong JSON types, missing and repeated
fields, as an anonymous caller and with a token holding every scope of an officer with
every role. Nothing may answer 5xx, and a refusal of the JSON API is problem+json."""

import json
import secrets

import pytest

from identity import subjects
from identity.clients import SCOPES

from tests.fixtures.api import bearer

# Every field name the JSON bodies and query strings of the API read, so that hostile
# values reach the code that reads each one.
FIELDS = ("reason", "purpose", "digest", "digests", "data", "timestamp", "holder_uscc", "es_ids", "clients",
          "operators", "csr", "at", "profile", "subject", "dns_names", "validity_days", "licence_id", "type_code",
          "issuer_code", "holder", "face", "validity", "limit", "offset", "issuer", "status", "type", "holder",
          "format", "next", "grant_type", "token", "scope", "client_id", "redirect_uri", "code", "max_age")
BAD_VALUES = {
    "nul": "a\x00b", "surrogate": "\ud800", "unicode_digit": "²", "huge": 10 ** 12, "vast": 10 ** 400,
    "negative": -1, "float": 1e308, "list": ["\ud800", 1], "object": {"x": {"y": "\x00"}}, "null": None,
    "bool": True, "long": "字" * 5000,
}
PATH_VALUES = ("x", "²", "9" * 400, "1.2.156.3005.2.A.B.C.001.X", "%00", "%ED%A0%80", "a%2Fb")
PAGES = ("/login", "/login/totp", "/consent", "/oauth/authorize", "/oauth/logout", "/v/")


def _bodies(one_field_at_a_time: bool):
    deep = "[" * 3000 + "]" * 3000
    yield "deep array", deep
    yield "deep object", '{"a":' * 3000 + "1" + "}" * 3000
    yield "repeated", '{"reason": "a", "reason": "b", "purpose": "x", "purpose": "y"}'
    yield "not json", "{\"reason\": "
    yield "escaped surrogate", '{"reason": "\\ud800", "purpose": "\\udfff", "licence_id": "\\ud800"}'
    yield "wrong top", "[1, 2, 3]"
    for name, value in BAD_VALUES.items():
        yield name, json.dumps({field: value for field in FIELDS})
    yield "missing", "{}"
    for field in FIELDS if one_field_at_a_time else ():  # one hostile value alone, so that no other field's refusal masks it
        for name in ("huge", "vast", "negative", "list", "object"):
            yield f"{field}={name}", json.dumps({field: BAD_VALUES[name]})


def _paths(rule) -> list[str]:
    if not rule.arguments:
        return [rule.rule]
    out = []
    for value in PATH_VALUES:
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", value)
            for converter in ("int", "path", "string"):
                path = path.replace(f"<{converter}:{argument}>", value)
        out.append(path)
    return out


def _queries() -> list[str]:
    return ["", "?limit=²&offset=%C2%B2", f"?limit={10 ** 400}&offset=-1", "?issuer=%00&holder=%ED%A0%80&format=%00",
            "?limit=1&limit=2", "?next=%00&max_age=²"]


def _check(response, method, path, what):
    where = f"{method} {path} ({what})"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.get_data(as_text=True)[:500]}"
    if response.status_code >= 400 and path.startswith("/api/") and response.status_code != 405:
        assert response.mimetype == "application/problem+json", f"{where}: {response.mimetype}"
        body = response.get_json(force=True)
        assert body["detail"] and body["detail_zh"] and body["code"], where


@pytest.fixture
def officer_token(app):
    with app.extensions["trust.sessions"]() as session:
        number = secrets.token_hex(4)
        person = subjects.create_officer(session, username=f"fuzz-{number}", password="Correct-Horse-42!",
                                         name="测试员", staff_number=f"F-{number}", department="测试处",
                                         roles=["seal-admin", "licence-admin", "ca-officer"])
        session.commit()
    return bearer(app, client_id="fuzz-app", subject=person.id, scopes=tuple(SCOPES))


def test_no_route_answers_5xx_to_hostile_input(app, officer_token):
    client = app.test_client()
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static" and not r.endpoint.endswith(".static")]
    assert len(rules) > 30
    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for path in _paths(rule):
                for headers in ({}, officer_token):
                    for query in _queries():
                        _check(client.open(path + query, method=method, headers=headers), method, path + query,
                               "query")
                    if method in ("GET", "DELETE"):
                        continue
                    for what, body in _bodies(one_field_at_a_time=bool(headers)):
                        response = client.open(path, method=method, data=body.encode("utf-8", "surrogatepass"),
                                               headers={**headers, "Content-Type": "application/json"})
                        _check(response, method, path, what)
                    form = {field: "a\x00\ud800²" for field in FIELDS}
                    response = client.open(path, method=method, headers=headers,
                                           data={k: v.encode("utf-8", "surrogatepass") for k, v in form.items()})
                    _check(response, method, path, "form")
