"""The fal panel's Keys section in a real ComfyUI and its real frontend: a fal key pasted there runs an
edit after ComfyUI restarts, and is never in a route's answer, the log, the workflow or the panel;
requests that did not come from a browser on this machine are refused. Needs what
tests/test_frontend.py needs (``COMFYUI_FRONT_END_ROOT`` for another frontend package)."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request

import pytest

from frontend_harness import KEY, WORKFLOWS, Frontend, comfyui_with_fake_fal, unavailable

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"frontend tests skipped: {REASON}")
KEYS = "/fal_qwen_edit/keys"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("keys")
    with comfyui_with_fake_fal(workdir, key_in_env=False) as comfy, Frontend(comfy) as frontend:
        frontend.page.evaluate("app.extensionManager.focusMode = false")
        frontend.saved = workdir / "config" / "saved_keys.ini"
        yield frontend


def call(page, path: str, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    request = urllib.request.Request(page.comfy.url + path, method=method, headers=headers or {},
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def open_keys(page) -> None:
    page.dismiss()  # a failed run's error dialog would cover the panel
    if not page.page.locator(".fal-qwen-panel").count():
        page.page.locator("[class*='pi-images']").first.click()
    page.page.wait_for_selector(".fal-qwen-keys", timeout=10_000)
    if not page.page.evaluate("document.querySelector('.fal-qwen-keys').open"):
        page.page.click(".fal-qwen-keys summary")
    page.page.wait_for_selector(".fal-qwen-key-row[data-kind='fal']", timeout=10_000)


def fal_status(page) -> str:
    return page.page.inner_text(".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-status")


def test_without_a_key_the_panel_says_so_and_a_run_fails_saying_where_to_put_one(page):
    open_keys(page)
    assert fal_status(page) == "not set"
    assert page.load(WORKFLOWS / "qwen_edit_single.json") == []
    problems = page.run()
    assert problems and "fal panel" in " ".join(problems)


def test_a_key_pasted_in_the_panel_runs_an_edit_after_a_restart_and_is_never_shown(page):
    open_keys(page)
    page.page.fill(".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-input", KEY)
    page.page.click(".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-save")
    page.page.wait_for_function("document.querySelector(\".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-status\")"
                                "?.textContent.includes('saved from ComfyUI')", timeout=10_000)
    assert page.page.input_value(".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-input") == ""
    assert KEY not in page.page.content()
    assert KEY not in page.page.evaluate("JSON.stringify(app.graph.serialize())")
    assert stat.S_IMODE(page.saved.stat().st_mode) == 0o600 and KEY in page.saved.read_text()

    page.comfy.stop()  # a restart: the key must come from the saved file, nothing else has it
    page.comfy.start()
    page.page.reload()
    page.page.wait_for_function("window.app?.vueAppReady && app.canvas", timeout=90_000)
    page.page.wait_for_timeout(1000)
    page.dismiss()
    submits = page.comfy.fal.submissions
    assert page.load(WORKFLOWS / "qwen_edit_single.json") == []
    assert page.run() == []
    assert page.comfy.fal.submissions == submits + 1
    status, body = call(page, KEYS)
    assert status == 200 and json.loads(body)["fal"]["source"].startswith("saved from ComfyUI")
    seen = body + call(page, "/history")[1] + call(page, "/fal_qwen_edit/jobs")[1] + page.comfy.log_path.read_text()
    assert KEY not in seen and KEY.split(":")[1] not in seen


def test_the_keys_route_refuses_what_did_not_come_from_a_browser_on_this_machine(page):
    before = page.saved.read_text() if page.saved.exists() else ""
    for headers in ({"X-Forwarded-For": "203.0.113.9"},           # through a reverse proxy
                    {"Origin": "https://evil.example"},            # another site's page in the user's browser
                    {"Host": "rebound.example:8188"}):             # a DNS name rebound to 127.0.0.1
        for method, path, body in (("POST", KEYS, {"kind": "fal", "value": "other-key-0123456789"}),
                                   ("GET", KEYS, None), ("DELETE", f"{KEYS}?kind=fal", None)):
            status, answer = call(page, path, method, body, {"Content-Type": "application/json", **headers})
            assert status in (403, 400), (headers, method, status)  # 400: core's own Host/Origin check
            assert KEY not in answer
    assert (page.saved.read_text() if page.saved.exists() else "") == before


def test_clear_removes_the_saved_key(page):
    open_keys(page)
    page.page.click(".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-clear")
    page.page.wait_for_function("document.querySelector(\".fal-qwen-key-row[data-kind='fal'] .fal-qwen-key-status\")"
                                "?.textContent === 'not set'", timeout=10_000)
    assert KEY not in page.saved.read_text()
