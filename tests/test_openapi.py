"""The OpenAPI document (#20 item 5): valid OpenAPI 3.1 by a validator nobody here wrote,
true to the app's routes both ways, and true to the answers: schemathesis generates
requests for every operation against a demo authority, with the token each operation's
callers hold, and checks that nothing answers 5xx or with a stack trace, and that every
answer has a documented status, media type and schema."""

import re
import secrets

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.openapi import PATH, document
from identity import subjects, tokens
from identity.clients import DEMO_CLIENT_ID, SCOPES, USER_SCOPES
from identity.demo import CITIZEN
from trust.config import load_settings

from tests.serving import clean_env, trustctl

# Pages for people (HTML), and /metrics (Prometheus text, loopback only): not JSON endpoints.
PAGES = {"/login", "/login/totp", "/login/done", "/consent", "/oauth/authorize", "/oauth/logout", "/v/{licence_id}",
         "/V/{licence_id}", "/v/{licence_id}/licence.ofd", "/v/{licence_id}/licence.pdf", "/v/{licence_id}/seal",
         "/v/p", "/wallet", "/wallet/consents", "/wallet/show/{licence_id}", "/metrics"}
EXAMPLES_PER_OPERATION = 25


def _documented_forms(rule) -> list[str]:
    """The OpenAPI paths of a Flask rule: ``<x>`` as ``{x}``, each ``any(…)`` value as a path."""
    forms = [rule.rule]
    for match in re.finditer(r"<any\(([^)]*)\):(\w+)>", rule.rule):
        values = [v.strip() for v in match.group(1).split(",")]
        forms = [form.replace(match.group(0), value) for form in forms for value in values]
    return [re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", form) for form in forms]


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for path in _documented_forms(rule):
            found |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    home = tmp_path_factory.mktemp("openapi") / "home"
    env = clean_env(TRUST_HOME=str(home))
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    app = create_app(load_settings(env))
    yield app
    app.extensions["trust.engine"].dispose()


def test_the_document_is_valid_openapi_3_1():
    described = document("https://trust.example.gov.cn")
    validate(described)  # openapi-spec-validator, against the OpenAPI 3.1 schema
    assert described["openapi"] == "3.1.0"


def test_the_document_and_the_routes_agree(demo_app):
    routes = _routes(demo_app)
    pages = {(path, method) for path, method in routes if path in PAGES}
    assert {path for path, _ in pages} == PAGES, "a page listed here is no longer a route"
    described = {(path, method) for path, item in document("https://x")["paths"].items() for method in item}
    assert sorted(routes - pages - described) == [], "routes the document does not describe"
    assert sorted(described - routes) == [], "operations the app does not have"


def test_the_document_is_served_as_json(demo_app):
    response = demo_app.test_client().get(PATH)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json()["servers"] == [{"url": demo_app.extensions["trust.settings"].public_url}]


# ---------------------------------------------------------------- schemathesis

@pytest.fixture(scope="module")
def callers(demo_app) -> dict[str, dict]:
    """The bearer token of each kind of caller, by name."""
    with demo_app.extensions["trust.sessions"]() as session:
        def officer(role: str) -> str:
            number = secrets.token_hex(4)
            return subjects.create_officer(session, username=f"oas-{number}", password="Correct-Horse-42!",
                                           name="测试员", staff_number=f"OAS-{number}", department="测试处",
                                           roles=[role]).id

        def token(client_id: str, subject: str | None, scopes) -> dict:
            value, _ = tokens.issue_access_token(session, demo_app.extensions["trust.keystore"],
                                                 issuer=demo_app.extensions["trust.settings"].public_url,
                                                 client_id=client_id, subject=subject, scopes=sorted(scopes))
            return {"Authorization": f"Bearer {value}"}

        citizen = subjects.find_subject(session, CITIZEN["username"]).id
        found = {"department": token(DEMO_CLIENT_ID, None, set(SCOPES) - USER_SCOPES),
                 "citizen": token("oas-wallet", citizen, USER_SCOPES | {"licence:wallet"}),
                 "seal officer": token("oas-console", officer("seal-admin"), {"seal:manage"}),
                 "licence officer": token("oas-console", officer("licence-admin"), {"licence:manage"}),
                 "ca officer": token("oas-console", officer("ca-officer"), {"ca:issue"}),
                 "auditor": token("oas-console", officer("audit-admin"), {"audit:read"})}
        session.commit()
    return found


def caller_of(method: str, path: str) -> str:
    """Who calls the operation in real life: the token its scope and role need."""
    if path.startswith(("/api/v1/wallet", "/oauth/userinfo")):
        return "citizen"
    if path.startswith("/api/v1/audit"):
        return "auditor"
    if path.startswith("/api/ca"):
        return "ca officer"
    if path.startswith("/api/v1/seals") and not path.endswith(("/sign", "/sign-batch")):
        return "seal officer"
    if (method, path) == ("GET", "/api/v1/licences") or path.endswith(("/approve", "/refuse")):
        return "licence officer"
    return "department"


@pytest.fixture(scope="module")
def served_schema(demo_app):
    return schemathesis.openapi.from_wsgi(PATH, demo_app)


@schemathesis.serializer("application/ocsp-request", "application/timestamp-query")
def _der_body(ctx, value) -> bytes:
    """The OCSP and time-stamp requests as the bytes generated (DER is expected, garbage is fine)."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def no_stack_trace(ctx, response, case):
    assert b"Traceback (most recent call last)" not in response.content, "a stack trace in the answer"


OPERATIONS = sorted((method.upper(), path) for path, item in document("https://x")["paths"].items() for method in item)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_schemathesis_finds_no_500_and_no_answer_off_the_document(served_schema, callers, method, path):
    """Schemathesis's own pytest plugin does not run under pytest 9 (it sets a node id
    pytest no longer has), so each operation's strategies are drawn by hypothesis here."""
    operation = served_schema[path][method]
    headers = callers[caller_of(method, path)] if operation.definition.raw.get("security", [{}]) else {}
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
              database=None, derandomize=True)  # the same requests in every run: CI is reproducible
    def call(case):
        case.call_and_validate(headers=headers, checks=[not_a_server_error, status_code_conformance,
                                                        content_type_conformance, response_schema_conformance,
                                                        response_headers_conformance, ignored_auth, no_stack_trace])
    call()
