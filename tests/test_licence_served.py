"""The licence core end to end, as its users reach it: `trustctl init --demo`, then `trustctl
serve` with two gunicorn workers; a department issues a 营业执照 through the API with a
client-credentials token; `trustctl verify` says VALID (chain to the demo root, revocation
by our OCSP responder); easyofd reads every face field back; after revocation the same
file is INVALID and the page /v/<id>, opened in headless Chromium at 390×844, says 已吊销."""

import base64
import json
import re
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import insert

from bench.server import free_port
from identity.clients import DEMO_CLIENT_NAME
from identity.demo import ENTERPRISE
from licence.identifier import parse
from licence.layout import qr_code

from tests.licence_support import BUSINESS, business_request
from tests.oidc_support import basic, http_post
from tests.serving import clean_env, trustctl, trustctl_serve
from tests.test_oidc_flow import CHROMIUM, CHROMIUM_ARGS, require_chromium

VIEWPORT = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("licence-demo")
    port = free_port()
    env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}")
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    secret = re.search(r"client_id=(\S+)\s+client_secret=(\S+?)（", init.stdout)
    demo_licence = re.search(r"Demo business licence: (\S+)", init.stdout).group(1)
    citizen_password = re.search(r"demo-citizen  密码 / password: (\S+)", init.stdout).group(1)
    assert f"http://127.0.0.1:{port}/v/{demo_licence}" in init.stdout
    with trustctl_serve(env, port, tmp_path / "serve.log", workers=2):
        yield {"env": env, "base": f"http://127.0.0.1:{port}", "port": port, "client": secret.groups(),
               "demo_licence": demo_licence, "dir": tmp_path, "citizen_password": citizen_password}


def _token(served, scope="licence:issue") -> str:
    client_id, secret = served["client"]
    status, body = http_post(f"{served['base']}/oauth/token", {"grant_type": "client_credentials", "scope": scope},
                             headers={"Authorization": basic(client_id, secret)})
    assert status == 200, body
    return body["access_token"]


def _call(served, method, path, body=None, token=None, headers=None):
    request = urllib.request.Request(served["base"] + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {}),
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _verify(served, path):
    online = {**served["env"], "TRUST_REVOCATION_HOSTS": f"127.0.0.1:{served['port']}"}
    done = trustctl(online, "verify", str(path), "--json")
    return done.returncode, json.loads(done.stdout)


def _verify_over_http(served, data: bytes, name: str) -> dict:
    answer = requests.post(f"{served['base']}/api/v1/verify", files={"file": (name, data)}, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _page_text(served, licence_id, screenshot: Path) -> str:
    require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                             timeout=60_000)
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=2, is_mobile=True)
            answer = page.goto(f"{served['base']}/v/{licence_id}", timeout=20_000)
            assert answer.status == 200
            page.screenshot(path=str(screenshot), full_page=True)
            verdict = page.locator("#verdict")
            box = verdict.bounding_box()
            assert box["y"] + box["height"] <= VIEWPORT["height"]  # the verdict is seen without scrolling
            assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]  # no sideways scroll
            assert page.evaluate("document.querySelector('.seal img').naturalWidth") > 0
            assert page.locator(".downloads a").count() == 2  # OFD and PDF
            return page.inner_text("body")
        finally:
            browser.close()


def test_issue_verify_read_back_revoke_over_http(served):
    from easyofd.parser_ofd.ofd_parser import OFDParser  # independent parser; imports are slow and noisy
    demo_issuer = parse(served["demo_licence"]).issuer_code
    token = _token(served)
    body = business_request(issuer_code=demo_issuer)
    status, answer = _call(served, "POST", "/api/v1/licences", body, token, {"Idempotency-Key": "served-1"})
    assert status == 201, answer
    record = json.loads(answer)
    licence_id = record["licence_id"]
    assert parse(licence_id).type_code == BUSINESS

    status, data = _call(served, "GET", f"/api/v1/licences/{licence_id}/ofd", token=token)
    assert status == 200
    path = served["dir"] / "licence.ofd"
    path.write_bytes(data)
    code, report = _verify(served, path)
    assert code == 0 and report["status"] == "VALID", json.dumps(report, ensure_ascii=False)[:3000]
    checks = {c["check"]: c["status"] for c in report["signatures"][0]["checks"]}
    assert checks["chain"] == checks["revocation"] == checks["licence_status"] == "PASSED"

    (doc,) = OFDParser(base64.b64encode(data).decode())()
    face = "".join(t["text"] for t in doc["page_info"][0]["text_list"])
    for _key, _label, printed in record["record"]["printed"]:
        assert printed in face, printed

    status, pdf = _call(served, "GET", f"/api/v1/licences/{licence_id}/pdf", token=token)
    assert status == 200 and pdf.startswith(b"%PDF-")
    report = _verify_over_http(served, pdf, "licence.pdf")
    assert report["status"] == "VALID" and report["licence"]["licence_id"] == licence_id, report
    assert report["signatures"][0]["level"] == "B-LTA"
    for kind, data_ in (("ofd", data), ("pdf", pdf)):  # the page offers a company's files to anyone
        status, offered = _call(served, "GET", f"/v/{licence_id}/licence.{kind}")
        assert status == 200 and offered == data_, kind

    status, _ = _call(served, "POST", f"/api/v1/licences/{licence_id}/revoke", {"reason": "严重违法 serious violation"},
                      token)
    assert status == 200
    code, report = _verify(served, path)
    assert code == 1 and report["status"] == "INVALID"
    assert {c["check"]: c["status"] for c in report["signatures"][0]["checks"]}["licence_status"] == "FAILED"
    report = _verify_over_http(served, pdf, "licence.pdf")
    assert report["status"] == "INVALID" and report["licence"]["status"] == "07"
    pdf_checks = {c["check"]: c["status"] for c in report["signatures"][0]["checks"]}
    assert pdf_checks["integrity"] == pdf_checks["signature"] == "PASSED" and pdf_checks["licence_status"] == "FAILED"
    revoked = _page_text(served, licence_id, served["dir"] / "revoked-390x844.png")
    assert "已吊销" in revoked and "Revoked" in revoked and "营业执照" in revoked


def test_the_demo_licence_page_shows_it_valid_on_a_phone(served):
    text = _page_text(served, served["demo_licence"], served["dir"] / "valid-390x844.png")
    assert "有效" in text and "Valid" in text and "示例数字科技有限公司" in text and "核验时间" in text


def _qr_verdict(served, url: str) -> tuple[str, str]:
    """What the page opened at ``url`` (a QR's text) shows as the QR's verdict, in Chromium."""
    require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                             timeout=60_000)
        try:
            page = browser.new_page(viewport=VIEWPORT, is_mobile=True)
            refused = []
            page.on("console", lambda message: refused.append(message.text) if "Content Security" in message.text
                    else None)
            assert page.goto(url, timeout=20_000).status == 200
            page.wait_for_selector("#qr-verdict[data-status]", state="visible", timeout=20_000)
            assert not refused, refused
            return page.get_attribute("#qr-verdict", "data-status"), page.inner_text("#qr-verdict")
        finally:
            browser.close()


def test_the_page_opened_from_the_qr_checks_its_fragment_too(served):
    """The phone opens the URL the QR holds; the page shows the registry's verdict and, from
    the payload in the fragment (sent by the page's own script, under its CSP), the QR's."""
    status, body = _call(served, "GET", f"/api/v1/licences/{served['demo_licence']}", token=_token(served))
    assert status == 200
    text = json.loads(body)["qr_text"]
    assert text.startswith(f"HTTP://127.0.0.1:{served['port']}/V/{served['demo_licence']}#ZZ1:")
    verdict, shown = _qr_verdict(served, text)
    assert verdict == "VALID" and "与登记信息一致" in shown, shown
    address, _, payload = text.partition("#")
    altered = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    verdict, shown = _qr_verdict(served, f"{address}#{altered}")
    assert verdict == "INVALID" and "二维码无效" in shown, shown
    online = requests.post(f"{served['base']}/api/v1/verify", json={"qr": text}, timeout=60).json()
    assert online["format"] == "qr" and online["status"] == "VALID"
    assert [c["check"] for c in online["signatures"][0]["checks"]] == \
        ["format", "signature", "chain", "integrity", "licence_status"]


def test_twenty_concurrent_identical_requests_over_two_workers_yield_one_licence(served):
    token = _token(served)
    body = business_request(issuer_code=parse(served["demo_licence"]).issuer_code)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: _call(served, "POST", "/api/v1/licences", body, token,
                                                {"Idempotency-Key": "burst-20"}), range(20)))
    assert sorted(status for status, _ in answers) == [200] * 19 + [201], answers[:2]
    assert len({json.loads(answer)["licence_id"] for _, answer in answers}) == 1


def test_the_key_list_is_served_signed_and_holds_the_demo_issuers_qr_key(served):
    """GET /.well-known/licence-keys: a COSE_Sign1 a verifier checks with nothing but the demo
    SM2 root (itself fetched from /ca/sm2-root/cert), naming the demo department's SM2 key."""
    from licence import qr_keys
    status, root = _call(served, "GET", "/ca/sm2-root/cert")
    assert status == 200
    answer = requests.get(f"{served['base']}/.well-known/licence-keys", timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/cose"
    listed = qr_keys.read_key_list(answer.content, trusted_roots=(root,))
    demo_issuer = parse(served["demo_licence"]).issuer_code
    assert [k.key.algorithm for k in listed.keys if k.key.issuer_code == demo_issuer] == ["SM2-with-SM3"]


def test_the_status_list_is_served_signed(served):
    from licence import status_list
    _status, root = _call(served, "GET", "/ca/sm2-root/cert")
    answer = requests.get(f"{served['base']}/api/v1/status-lists/1", timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/statuslist+cwt"
    listed = status_list.read_token(answer.content, trusted_roots=(root,))
    assert listed.uri == f"{served['base']}/api/v1/status-lists/1" and listed.bits == 2
    for number in ("7", "0", "9" * 40):
        assert requests.get(f"{served['base']}/api/v1/status-lists/{number}", timeout=60).status_code == 404, number


def test_a_verifier_caches_the_lists_and_checks_the_qr_offline(served, tmp_path):
    """`trustctl licence cache`, then, on a machine with no service of its own (an empty
    TRUST_HOME) and only the demo root, `trustctl verify --qr` on the QR zbarimg reads from the
    demo licence's OFD rendered to PNG and from its PDF rendered at 150 dpi: the text is the
    page's URL with the signed payload in its fragment, VALID offline; the page it opens is
    the licence's; a wrong holder code is warned of."""
    cache = trustctl(served["env"], "licence", "cache", "--out", str(tmp_path / "cache"), "--url", served["base"])
    assert cache.returncode == 0, cache.stderr
    _status, root = _call(served, "GET", "/ca/sm2-root/cert")
    (tmp_path / "root.der").write_bytes(root)
    licence_id = served["demo_licence"]
    for kind in ("ofd", "pdf"):
        answer = requests.get(f"{served['base']}/v/{licence_id}/licence.{kind}", timeout=60)
        (tmp_path / f"licence.{kind}").write_bytes(answer.content)
    rendered = trustctl(served["env"], "ofd", "render", str(tmp_path / "licence.ofd"), "--out", str(tmp_path / "ofd.png"))
    assert rendered.returncode == 0, rendered.stderr
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-singlefile", str(tmp_path / "licence.pdf"),
                    str(tmp_path / "pdf")], check=True, timeout=60)
    texts = {subprocess.run(["zbarimg", "--quiet", "--raw", str(tmp_path / image)], capture_output=True, text=True,
                            timeout=60, check=True).stdout.strip() for image in ("ofd.png", "pdf.png")}
    [text] = texts  # both faces carry the same code
    address, _, payload = text.partition("#")
    assert address == f"HTTP://127.0.0.1:{served['port']}/V/{licence_id}" and payload.startswith("ZZ1:")
    assert qr_code(text).version <= 12
    page = requests.get(address, timeout=60)  # what the phone's camera opens (the fragment stays on the phone)
    assert page.status_code == 200 and licence_id in page.text
    offline = clean_env(TRUST_HOME=str(tmp_path / "verifier"))
    options = ["--keys", str(tmp_path / "cache" / "licence-keys.cose"),
               "--status-list", str(tmp_path / "cache" / "status-list-1.cwt"), "--trust-root", str(tmp_path / "root.der")]
    for value in (text, str(tmp_path / "ofd.png"), str(tmp_path / "pdf.png")):
        done = trustctl(offline, "verify", "--qr", value, *options, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["format"] == "qr" and report["status"] == "VALID" and report["licence"]["licence_id"] == licence_id
        assert [c["status"] for c in report["signatures"][0]["checks"]] == \
            ["PASSED", "PASSED", "PASSED", "NOT_APPLICABLE", "PASSED"], report
    for kind in ("ofd", "pdf"):  # the file the payload names: its face's SM3 is the payload's
        with_file = trustctl(offline, "verify", str(tmp_path / f"licence.{kind}"), "--qr", text, *options, "--json")
        assert json.loads(with_file.stdout)["signatures"][0]["checks"][3]["status"] == "PASSED", with_file.stdout
    wrong = trustctl(offline, "verify", "--qr", text, *options, "--holder-code", "91110108MA01234560", "--json")
    assert json.loads(wrong.stdout)["licence"]["holder"]["code_matches"] is False
    untrusted = trustctl(offline, "verify", "--qr", text, *options[:4], "--json")  # no root for the lists
    assert untrusted.returncode == 3, untrusted.stdout
    assert trustctl(offline, "verify").returncode == 4


def _wallet_token(served) -> str:
    """An access token with scope licence:wallet for the demo citizen, who represents the
    demo enterprise (identity/demo.py), as an app of ours would hold after their login."""
    from hsm.keystore import open_keystore
    from identity import subjects, tokens
    from identity.demo import CITIZEN
    from trust.config import load_settings
    from trust.db import make_engine, session_factory
    settings = load_settings(served["env"])
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            citizen = subjects.find_subject(session, CITIZEN["username"])
            token, _ = tokens.issue_access_token(session, open_keystore(settings), issuer=settings.public_url,
                                                 client_id="demo-department-app", subject=citizen.id,
                                                 scopes=["licence:wallet"])
            session.commit()
            return token
    finally:
        engine.dispose()


def test_the_demo_citizen_shows_the_enterprises_licence_and_a_verifier_accepts_it_once(served):
    wallet = {"Authorization": f"Bearer {_wallet_token(served)}"}
    listed = requests.get(f"{served['base']}/api/v1/wallet/licences", headers=wallet, timeout=60).json()["licences"]
    assert served["demo_licence"] in [licence["licence_id"] for licence in listed]  # through represents
    made = requests.post(f"{served['base']}/api/v1/wallet/presentations", headers=wallet, timeout=60,
                         json={"licence_id": served["demo_licence"], "disclose": []})
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(f"{served['base']}/v/p#ZZP:")
    check = {"presentation": url, "nonce": "bank-counter-7-0001"}
    first = requests.post(f"{served['base']}/api/v1/verify", json=check, timeout=60).json()
    assert first["status"] == "VALID" and first["licence"]["licence_id"] == served["demo_licence"], first
    again = requests.post(f"{served['base']}/api/v1/verify", json=check, timeout=60).json()
    assert again["status"] == "INVALID" and "replay" in again["signatures"][0]["checks"][0]["reason"]["en"]


def _consent_and_withdraw(holder) -> None:
    """In the wallet: consent that the demo department application read the enterprise's
    licences for 企业开办 for 30 days, see it listed, withdraw it, see it withdrawn."""
    assert "待颁证部门审批" in holder.inner_text("section.requests")
    holder.select_option("select[name=consumer]", label=f"{DEMO_CLIENT_NAME} · 企业开办")
    holder.select_option("select[name=holder]", index=1)  # the enterprise the citizen represents
    holder.select_option("select[name=days]", "30")
    holder.click("form.grant button")
    holder.wait_for_selector("li.consent form button", timeout=20_000)
    assert "企业开办" in holder.inner_text("li.consent") and ENTERPRISE["uscc"] in holder.inner_text("li.consent")
    holder.click("li.consent form button")
    holder.wait_for_selector("li.consent:not(:has(form))", timeout=20_000)
    assert "已撤回" in holder.inner_text("li.consent")


def _register_consumer(served) -> None:
    from licence import sharing
    from licence.models import licence_request
    from trust.config import load_settings
    from trust.db import make_engine, session_factory
    engine = make_engine(load_settings(served["env"]).database_url)
    try:
        with session_factory(engine)() as session:
            sharing.add_consumer(session, "demo-department-app", types=[BUSINESS], purposes=["企业开办"], actor="test")
            licence = parse(served["demo_licence"])  # a request as share_requests.submit stores one
            session.execute(insert(licence_request).values(
                id="7d0c9d8e-0000-4000-8000-000000000001", client_id="demo-department-app", purpose="企业开办",
                reason="核验", days=7, licence_id=served["demo_licence"], base=licence.base,
                holder_code=ENTERPRISE["uscc"], type_code=licence.type_code, issuer_code=licence.issuer_code,
                status="pending", requested_at=datetime.now(UTC)))
            session.commit()
    finally:
        engine.dispose()


def test_the_wallet_on_a_phone_shows_the_enterprises_licence_and_a_verifier_checks_it(served):
    """Log in as the demo citizen, see the demo enterprise's licence in /wallet through
    represents, consent that a department read it and withdraw the consent, show it (亮证):
    another phone opens the code's URL and its page says valid."""
    require_chromium()
    _register_consumer(served)
    from playwright.sync_api import sync_playwright
    licence_id = served["demo_licence"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                             timeout=60_000)
        try:
            holder = browser.new_context(viewport=VIEWPORT, is_mobile=True).new_page()
            holder.goto(f"{served['base']}/wallet", timeout=20_000)
            assert "/login" in holder.url
            holder.fill("#username", "demo-citizen")
            holder.fill("#password", served["citizen_password"])
            holder.click("#login")
            holder.wait_for_url(f"{served['base']}/wallet", timeout=20_000)
            card = holder.locator(f"[data-licence-id='{licence_id}']")
            assert card.count() == 1 and "示例数字科技有限公司" in card.inner_text()
            _consent_and_withdraw(holder)
            card = holder.locator(f"[data-licence-id='{licence_id}']")
            card.locator("button.show").click()
            holder.wait_for_selector(".presentation-qr svg", timeout=20_000)
            url = holder.get_attribute("#present-url", "href")
            assert url.startswith(f"{served['base']}/v/p#ZZP:")
            verifier = browser.new_context(viewport=VIEWPORT, is_mobile=True).new_page()
            refused = []
            verifier.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
            assert verifier.goto(url, timeout=20_000).status == 200
            verifier.wait_for_selector("#presentation-verdict[data-status]", timeout=20_000)
            assert verifier.get_attribute("#presentation-verdict", "data-status") == "VALID", \
                verifier.inner_text("body")
            assert "示例数字科技有限公司" in verifier.inner_text("#presentation-facts") and not refused, refused
        finally:
            browser.close()
