"""The fal panel and its routes in a real ComfyUI and its real frontend: a run's job appears with its
thumbnail and cost; Cancel from the panel cancels on fal; Add to graph builds a node that returns the
same pixels; a job only in fal's history shows as recoverable and fetches with no submit; no route
answers with a key. Needs what tests/test_frontend.py needs (``COMFYUI_FRONT_END_ROOT`` for another
frontend package)."""

from __future__ import annotations

import io
import json
import base64
import re
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from conftest import gradient
from frontend_harness import KEY, WORKFLOWS, Frontend, comfyui_with_fake_fal, unavailable

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"frontend tests skipped: {REASON}")
ROW = ".fal-qwen-job[data-request-id='{}']"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with comfyui_with_fake_fal(tmp_path_factory.mktemp("panel"), daily_cap_usd=5.0) as comfy, \
            Frontend(comfy) as frontend:
        frontend.page.evaluate("app.extensionManager.focusMode = false")
        frontend.bodies = []  # every route answer, to look for the key in
        yield frontend


def call(page, path: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(page.comfy.url + path, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    page.bodies.append(body)
    return status, body


def open_panel(page, source: str = "local") -> None:
    assert page.overlays()["dialogs"] == []
    if not page.page.locator(".fal-qwen-panel").count():
        page.page.locator("[class*='pi-images']").first.click()
    page.page.wait_for_selector(".fal-qwen-panel", timeout=10_000)
    if source != "local" or page.page.locator(".fal-qwen-source").count():
        page.page.wait_for_selector(".fal-qwen-source", timeout=10_000)  # offered here: fal direct with a key
        page.page.select_option(".fal-qwen-source", source)
    page.page.click(".fal-qwen-refresh")
    page.page.wait_for_timeout(500)


def run_single(page) -> str:
    assert page.load(WORKFLOWS / "qwen_edit_single.json") == []
    assert page.run() == []
    status, body = call(page, "/fal_qwen_edit/jobs")
    assert status == 200
    return json.loads(body)["jobs"][0]["request_id"]


def saved_pixels(page) -> np.ndarray:
    newest = max((page.comfy.output_dir / "qwen_edit").glob("single_*.png"), key=lambda p: p.stat().st_mtime)
    return np.asarray(Image.open(newest).convert("RGB"))


def test_a_run_appears_in_the_panel_with_its_thumbnail_and_cost(page):
    request_id = run_single(page)
    status, body = call(page, f"/fal_qwen_edit/jobs/{request_id}")
    job = json.loads(body)
    assert status == 200 and job["status"] == "done" and job["known_locally"] and job["model"] == "qwen-edit-plus"
    assert job["cost_usd_estimate"] == 0.03 and job["cost_source"] == "billed" and job["cost_usd_billed"] > 0
    status, thumb = call(page, job["thumbnails"][0])
    assert status == 200 and thumb[8:12] == b"WEBP" and max(Image.open(io.BytesIO(thumb)).size) <= 256
    status, output = call(page, "/api" + job["outputs"][0])
    assert status == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(output)).convert("RGB")),
                                            saved_pixels(page))
    open_panel(page)
    row = page.page.locator(ROW.format(request_id))
    row.locator("img.fal-qwen-thumb").first.wait_for(timeout=10_000)
    assert page.page.evaluate(f"() => document.querySelector(\"{ROW.format(request_id)} img\").naturalWidth") > 0
    assert "billed" in row.locator(".fal-qwen-cost").inner_text()
    assert "This graph: ≈$0.030" in page.page.inner_text(".fal-qwen-total")
    assert "of $5.000" in page.page.inner_text(".fal-qwen-spend")
    # every amount in the panel rounded one way (the header's spend and the rows' costs alike)
    amounts = re.findall(r"\$\d+(?:\.\d+)?", page.page.inner_text(".fal-qwen-panel"))
    assert amounts and all(re.fullmatch(r"\$\d+\.\d{3}", amount) for amount in amounts), amounts


def test_add_to_graph_builds_a_node_that_returns_the_same_pixels(page):
    request_id = run_single(page)
    first = saved_pixels(page)
    open_panel(page)
    before = page.comfy.fal.submissions
    page.page.locator(ROW.format(request_id)).locator(".fal-qwen-add").click()
    node = page.page.evaluate("""() => { const n = app.graph.nodes.find(n => n.type === 'FalQwenResultByRequestId');
      const save = app.graph.nodes.find(n => n.type === 'SaveImage');
      n.connect(0, save, 0);  // its images into the workflow's SaveImage instead of the edit's
      const w = (name) => n.widgets.find(w => w.name === name).value;
      return {request_id: w('request_id'), endpoint: w('endpoint')}; }""")
    assert node == {"request_id": request_id, "endpoint": "fal-ai/qwen-image-edit-plus"}
    # the job was made through this machine's own settings: the new node needs no Connection node
    assert "running it fetches this job's outputs" in page.page.inner_text(".fal-qwen-note")
    assert "Connection node" not in page.page.inner_text(".fal-qwen-note")
    assert page.run() == []
    assert page.comfy.fal.submissions == before  # no new job
    assert np.array_equal(saved_pixels(page), first)


def test_cancel_from_the_panel_cancels_the_job_on_fal(page):
    fal = page.comfy.fal
    assert page.load(WORKFLOWS / "qwen_edit_single.json") == []
    fal.queue_time = 60.0  # the job waits in fal's queue
    try:
        page.page.evaluate("""async () => {
          app.graph.nodes.find(n => n.type === 'FalQwenImageEditPlus').widgets.find(w => w.name === 'seed').value = 777;
          await comfyAPI.api.api.queuePrompt(0, await app.graphToPrompt()); }""")
        open_panel(page)
        running = page.page.locator(".fal-qwen-job.fal-qwen-running")  # arrives over the websocket
        running.first.wait_for(timeout=30_000)
        request_id = running.first.get_attribute("data-request-id")
        running.first.locator(".fal-qwen-cancel").click()
        deadline = time.monotonic() + 15
        while request_id not in [r for r, _ in fal.cancel_requests] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert request_id in [r for r, _ in fal.cancel_requests]
        page.page.locator(ROW.format(request_id) + ".fal-qwen-cancelled").wait_for(timeout=15_000)
    finally:
        fal.queue_time = 0.0
    deadline = time.monotonic() + 30  # the node then ends with "The job was cancelled": shown, then dismissed
    while page.comfy.get("/queue")["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    ended = [entry for entry in page.comfy.get("/history").values() if request_id in json.dumps(entry)]
    assert ended and ended[-1]["status"]["status_str"] == "error" and "cancelled" in json.dumps(ended[-1]["status"])
    page.page.wait_for_timeout(800)
    page.dismiss()  # the node's error dialog


def test_a_job_only_in_fals_history_is_recoverable_and_fetches_with_no_submit(page):
    uri = "data:image/png;base64," + base64.b64encode(encode_png(gradient(40, 56, seed=11))).decode()
    fal = page.comfy.fal
    other = fal.seed_job("fal-ai/qwen-image-edit-plus", {"prompt": "made elsewhere", "image_urls": [uri], "seed": 5})
    open_panel(page, "all")
    row = page.page.locator(ROW.format(other.request_id))
    row.wait_for(timeout=10_000)
    assert "only in fal's history" in row.inner_text()
    before = fal.submissions
    row.locator(".fal-qwen-fetch").click()
    row.locator("img.fal-qwen-thumb").first.wait_for(timeout=30_000)
    assert fal.submissions == before
    status, body = call(page, f"/fal_qwen_edit/jobs/{other.request_id}")
    assert status == 200 and json.loads(body)["known_locally"] and json.loads(body)["outputs"]


def test_routes_check_what_they_are_sent_and_never_answer_with_a_key(page):
    assert call(page, "/fal_qwen_edit/jobs/not-a-request-id")[0] == 400
    assert call(page, "/fal_qwen_edit/jobs/9c08e7d8-312c-402d-a691-c207a9cb8121")[0] == 404
    assert call(page, "/fal_qwen_edit/jobs/9c08e7d8-312c-402d-a691-c207a9cb8121/fetch", "POST")[0] in (404, 502)
    assert call(page, "/fal_qwen_edit/jobs?source=elsewhere")[0] == 400
    assert call(page, "/fal_qwen_edit/jobs?source=all")[0] == 200
    status, body = call(page, "/fal_qwen_edit/spend")
    assert status == 200 and json.loads(body)["daily_cap_usd"] == 5.0
    for body in page.bodies:
        assert KEY.encode() not in body and KEY.split(":")[1].encode() not in body
    submit_paths = {r.path for r in page.comfy.fal.requests if r.method == "POST" and r.path.startswith("/fal-ai/")}
    assert submit_paths <= {"/fal-ai/qwen-image-edit-plus"}  # only the runs above submitted


THEME = ["--comfy-menu-bg", "--comfy-input-bg", "--input-text", "--fg-color"]
STYLES = """(names) => {
  const root = getComputedStyle(document.documentElement), probe = document.createElement('div');
  document.body.append(probe);
  const resolved = names.map(name => { probe.style.color = root.getPropertyValue(name).trim();
                                       return getComputedStyle(probe).color; });
  probe.remove();
  const button = getComputedStyle(document.querySelector('.fal-qwen-refresh'));
  const panel = getComputedStyle(document.querySelector('.fal-qwen-panel'));
  return {theme: Object.fromEntries(names.map((name, i) => [name, resolved[i]])),
          panel: [panel.backgroundColor, panel.color], button: [button.backgroundColor, button.color],
          header: document.querySelector('.fal-qwen-title')?.innerText ?? ''};
}"""


def test_the_panel_takes_the_frontends_theme_dark_and_light(page):
    open_panel(page)
    seen = {}
    for palette in ("dark", "light"):
        page.page.evaluate("(palette) => app.extensionManager.setting.set('Comfy.ColorPalette', palette)", palette)
        page.page.mouse.move(page.size["width"] - 5, page.size["height"] - 5)  # no hover colours
        page.page.wait_for_timeout(800)
        styles = page.page.evaluate(STYLES, THEME)
        theme = styles["theme"]
        assert styles["panel"] == [theme["--comfy-menu-bg"], theme["--fg-color"]], (palette, styles)
        assert styles["button"] == [theme["--comfy-input-bg"], theme["--input-text"]], (palette, styles)
        assert styles["header"].startswith("fal")
        seen[palette] = styles["panel"]
    assert seen["dark"] != seen["light"]  # it follows the palette, not a colour of its own
    page.page.evaluate("() => app.extensionManager.setting.set('Comfy.ColorPalette', 'dark')")


def test_the_large_view_closes_with_escape_and_its_close_button(page):
    request_id = run_single(page)
    open_panel(page)
    thumb = page.page.locator(ROW.format(request_id)).locator("img.fal-qwen-thumb").first
    for close in ("Escape", "button"):
        thumb.click()
        overlay = page.page.locator(".fal-qwen-overlay")
        overlay.locator("img").first.wait_for(timeout=10_000)
        assert overlay.locator("img").first.evaluate("i => i.naturalWidth") > 0
        if close == "Escape":
            page.page.keyboard.press("Escape")
        else:
            overlay.locator("button.fal-qwen-close").click()
        overlay.wait_for(state="detached", timeout=5_000)


def test_fals_history_is_offered_only_where_it_can_be_read(page):
    open_panel(page)
    assert page.page.locator(".fal-qwen-source option").all_inner_texts() == [
        "this machine", "this machine + fal's history", "fal's history"]  # fal direct with a key here

    def through_a_gateway(route):  # the backend's own answer, as a machine set up for a gateway gets it
        answer = route.fetch().json()
        answer["fal_history"] = {"available": False, "reason": "fal's request history is not reachable through a "
                                                              "gateway"}
        route.fulfill(json=answer)

    page.page.route("**/fal_qwen_edit/jobs?*", through_a_gateway)
    try:
        page.page.click(".fal-qwen-refresh")
        page.page.wait_for_function("() => !document.querySelector('.fal-qwen-source')", timeout=5_000)
        assert page.page.locator(".fal-qwen-job").count()  # this machine's jobs still list
    finally:
        page.page.unroute("**/fal_qwen_edit/jobs?*", through_a_gateway)
    page.page.click(".fal-qwen-refresh")
    page.page.wait_for_selector(".fal-qwen-source", timeout=5_000)
