"""The web console in a real browser (Chromium through Playwright) against a sandbox.

Login and logout, a forged form refused, a role refused a page, an auditor
finding an exchange and seeing the chain verified, a resident seeing who used
their data and revoking a consent after which the next exchange is filtered,
in English and Japanese. Screenshots go to the test's temporary directory, and
to ``$RENKEI_CONSOLE_SCREENSHOTS`` when set (docs/console/ is made that way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.sandbox_helpers import client_headers, node, sandbox_process

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed and CI is set (.ci/run installs it)")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One SQLite sandbox for the module (the storage paths have their own tests)."""
    chromium_path()
    directory = tmp_path_factory.mktemp("console") / "sandbox"
    with sandbox_process(directory) as document:
        yield document


@pytest.fixture(scope="module")
def browser(federation: dict[str, Any]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    wanted = os.environ.get("RENKEI_CONSOLE_SCREENSHOTS")

    def shoot(page: Any, name: str) -> None:
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        if wanted:
            Path(wanted).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(wanted) / f"{name}.png"), full_page=True)

    return shoot


def base(federation: dict[str, Any]) -> str:
    return str(node(federation, HOSP_B)["management_url"])


def new_page(browser: Any, federation: dict[str, Any], locale: str) -> Any:
    context = browser.new_context(
        locale=locale, base_url=base(federation), viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def log_in(page: Any, federation: dict[str, Any], role: str) -> None:
    page.goto("/console/login")
    page.fill("#token", node(federation, HOSP_B)["tokens"][role])
    page.click("form[action='/console/login'] button")


def api(federation: dict[str, Any], method: str, path: str, body: Any = None,
        role: str = "consent") -> Any:  # fmt: skip
    request = urllib.request.Request(
        base(federation) + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {node(federation, HOSP_B)['tokens'][role]}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def exchange(
    federation: dict[str, Any], patient: str
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Hospital A reads a patient from Hospital B: the message id, body and headers."""
    message_id = str(uuid.uuid4())
    request = urllib.request.Request(
        f"{node(federation, HOSP_A)['client_url']}/r1/{PATIENTS}/Patient/{patient}",
        headers={**client_headers(federation, CONSUMER), "X-Road-Id": message_id,
                 "Renkei-Purpose": "treatment"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return message_id, json.loads(response.read()), dict(response.headers)


def test_login_and_logout(browser: Any, federation: dict[str, Any], shots: Any) -> None:
    page = new_page(browser, federation, "en-US")
    page.goto("/console/")
    assert page.url.endswith("/console/login")
    shots(page, "login-en")
    page.fill("#token", "not-a-token")
    page.click("form[action='/console/login'] button")
    assert "The token was not accepted." in page.inner_text("main")
    log_in(page, federation, "admin")
    assert page.url.endswith("/console/overview")
    assert page.inner_text("#readiness") == "Ready"
    shots(page, "overview-en")
    page.click("form[action='/console/logout'] button")
    assert page.url.endswith("/console/login")
    page.goto("/console/overview")
    assert "Please log in first." in page.inner_text("main")
    page.context.close()


def test_a_forged_form_is_refused(browser: Any, federation: dict[str, Any]) -> None:
    page = new_page(browser, federation, "en-US")
    log_in(page, federation, "admin")
    # The browser's own cookie, but no CSRF token: what a forged form would send.
    response = page.request.post("/console/maintenance", form={"enabled": "true"})
    assert response.status == 403
    assert "console.csrf" in response.text()
    page.goto("/console/overview")
    assert page.inner_text("#maintenance-state") == "Serving normally."
    page.context.close()


def test_an_auditor_is_forbidden_the_overview(browser: Any, federation: dict[str, Any]) -> None:
    page = new_page(browser, federation, "ja-JP")
    log_in(page, federation, "auditor")
    assert page.url.endswith("/console/audit")
    response = page.goto("/console/overview")
    assert response.status == 403
    assert "あなたのロールではこのページを開けません。" in page.inner_text("main")
    page.context.close()


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_an_auditor_finds_an_exchange_and_sees_the_chain_verified(
    browser: Any, federation: dict[str, Any], shots: Any, locale: str
) -> None:
    message_id, _, _ = exchange(federation, "example")
    page = new_page(browser, federation, locale)
    log_in(page, federation, "auditor")
    page.fill("input[name='message_id']", message_id)
    page.click("form.search button")
    rows = page.locator("tbody tr")
    assert rows.count() == 1
    assert message_id in rows.first.inner_text()
    shots(page, f"audit-search-{locale[:2]}")
    rows.first.locator("a").click()
    main = page.inner_text("main")
    assert message_id in main
    assert page.inner_text("pre.signature >> nth=0").strip() not in ("", "none", "なし")
    assert "Patient.name" in main  # released under the consent
    if locale == "en-US":
        shots(page, "audit-detail-en")
    page.goto("/console/audit/chain")
    verdict = page.inner_text("#chain-verdict")
    intact = "The chain is intact" if locale == "en-US" else "チェーンは正常です"
    assert intact in verdict
    shots(page, f"audit-chain-{locale[:2]}")
    page.context.close()


@pytest.mark.parametrize(("locale", "subject"), [("en-US", "pat1"), ("ja-JP", "pat2")])
def test_a_citizen_sees_their_accesses_and_revokes_a_consent(
    browser: Any, federation: dict[str, Any], shots: Any, locale: str, subject: str
) -> None:
    api(federation, "POST", "/api/consents", {
        "subject": subject, "consumer": CONSUMER, "service": PATIENTS, "purpose": "treatment",
        "fields": ["Patient.name", "Patient.birthDate"],
    })  # fmt: skip
    other = api(federation, "POST", "/api/consents", {
        "subject": "pat4", "consumer": CONSUMER, "service": PATIENTS,
        "purpose": "treatment", "fields": ["Patient.name"],
    })["consent"]  # fmt: skip
    _, patient, _ = exchange(federation, subject)
    assert "name" in patient  # released under the consent
    link = api(federation, "POST", "/api/citizen-links", {"subject": subject})

    page = new_page(browser, federation, locale)
    page.goto(link["path"])
    assert page.url.endswith("/console/citizen")
    accesses = page.inner_text("#accesses")
    assert "Hospital A" in accesses
    assert "Patient.name" in accesses
    consents = page.inner_text("#consents")
    assert "Treatment of the patient by Hospital A's clinicians" in consents
    assert "pat4" not in page.content()
    assert other["id"] not in page.content()
    shots(page, f"citizen-{locale[:2]}")

    page.click("#consents form button")
    assert page.url.endswith("/console/citizen")
    revoked = page.inner_text("#consents")
    assert ("Revoked" if locale == "en-US" else "撤回済み") in revoked
    assert page.locator("#consents form").count() == 0
    # The next exchange is filtered: the name is withheld now.
    _, patient, headers = exchange(federation, subject)
    assert "name" not in patient
    assert "Patient.name" in headers.get("Renkei-Withheld", "")
    # Another subject's consent cannot be revoked from this session, even with its id.
    csrf = page.locator("input[name='csrf']").first.get_attribute("value")
    refused = page.request.post(f"/console/citizen/consents/{other['id']}/revoke",
                                form={"csrf": csrf or ""})  # fmt: skip
    assert refused.status == 404
    assert api(federation, "GET", f"/api/consents/{other['id']}")["revoked_at"] is None
    page.context.close()


def test_the_main_pages_have_no_serious_accessibility_violations(
    browser: Any, federation: dict[str, Any], shots: Any
) -> None:
    """axe-core (from the axe-playwright-python package) on each main page, in Japanese."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    axe = axe_module.Axe()
    message_id, _, _ = exchange(federation, "example")
    page = new_page(browser, federation, "ja-JP")
    found: dict[str, list[str]] = {}

    def check(path: str) -> None:
        page.goto(path)
        results = axe.run(page).response
        serious = [v["id"] for v in results["violations"]
                   if v.get("impact") in ("serious", "critical")]  # fmt: skip
        if serious:
            found[path] = serious

    check("/console/login")
    log_in(page, federation, "admin")
    seq = api(federation, "GET", f"/api/audit/rows?message_id={message_id}", role="auditor")
    for path in ("/console/overview", "/console/trail", "/console/audit",
                 f"/console/audit/rows/{seq['rows'][0]['seq']}", "/console/audit/chain",
                 "/console/consents?subject=example"):  # fmt: skip
        check(path)
    shots(page, "consent-desk-ja")
    link = api(federation, "POST", "/api/citizen-links", {"subject": "example"})
    check(link["path"])
    page.context.close()
    assert not found, found


def test_the_consent_desk_cli_prints_a_link_that_opens_the_citizen_page(
    browser: Any, federation: dict[str, Any], tmp_path: Path
) -> None:
    token_file = tmp_path / "consent.token"
    token_file.write_text(node(federation, HOSP_B)["tokens"]["consent"], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "consent", "link", "--subject", "example",
         "--url", base(federation), "--token-file", str(token_file), "--ttl-s", "600"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    url = result.stdout.splitlines()[0]
    assert url.startswith(base(federation) + "/console/citizen/enter?t=")
    page = new_page(browser, federation, "en-US")
    page.goto(url)
    assert page.url.endswith("/console/citizen")
    assert "Who used my data" in page.inner_text("h1")
    page.context.close()
