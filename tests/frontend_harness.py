"""Load the example workflows in ComfyUI's real web frontend (headless Chromium driven by Playwright).

Shared by ``tests/test_frontend.py`` and ``tools/render_workflow_previews.py``. Needs ``COMFYUI_DIR``
(see ``comfyui_harness``), the ``playwright`` Python package and the system Chromium at
``/usr/bin/chromium`` (Playwright's own browser downloads are not used). Only 127.0.0.1 is contacted:
every other request of the page is aborted. Settings and user-data requests are answered in the
browser (fixed settings, no saved workflows): runs are reproducible and the install's user folder is
left alone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

from comfyui_harness import ROOT, ComfyUI, comfyui_location, install_inputs

WORKFLOWS = ROOT / "example_workflows"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEY = "preview-0000-0000:not-a-real-key-only-the-local-fake-fal-server-knows-it"
# What GET /api/settings answers: no first-run template browser; no minimap, zoom buttons or
# render statistics over the graph.
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasMenu": False,
            "Comfy.Graph.CanvasInfo": False, "Comfy.Workflow.ShowMissingNodesWarning": True,
            "Comfy.Validation.Workflows": True}

# Runs in the page after loadGraphData: what the frontend made of the workflow, compared with the file.
CHECK_JS = """([wf, added]) => {
  const problems = [], graph = app.graph, byId = new Map(graph.nodes.map(n => [String(n.id), n]));  // 1.58: ids may be strings
  const label = (n) => `${n.type} #${n.id}`;
  if (graph.nodes.length !== wf.nodes.length)
    problems.push(`graph has ${graph.nodes.length} nodes, the file ${wf.nodes.length}`);
  for (const saved of wf.nodes) {
    const node = byId.get(String(saved.id));
    if (!node) { problems.push(`${saved.type} #${saved.id} was not created`); continue; }
    const now = node.serialize().widgets_values ?? [];
    // A workflow saved before a node gained widgets gets exactly their defaults, appended. Core nodes
    // gain widgets too between ComfyUI versions (0.12.1's PreviewAny: [] became [null, null, false]);
    // their defaults are not ours to know, so for them the saved values must stay a prefix.
    const savedValues = saved.widgets_values ?? [];
    const ours = saved.type.startsWith("FalQwen");
    const expected = [...savedValues, ...(ours ? (added[saved.type] ?? []) : now.slice(savedValues.length))]
      .slice(0, Math.max(now.length, savedValues.length));
    if (JSON.stringify(now) !== JSON.stringify(expected))
      problems.push(`${label(node)}: widgets_values ${JSON.stringify(saved.widgets_values)} ` +
                    `became ${JSON.stringify(now)}`);
    for (const w of node.widgets ?? []) {
      const values = typeof w.options?.values === "function" ? w.options.values() : w.options?.values;
      if (w.type === "combo" && Array.isArray(values) && !values.includes(w.value))
        problems.push(`${label(node)}: ${w.name}=${JSON.stringify(w.value)} is not one of its choices`);
    }
  }
  const linkOf = (id) => graph.links instanceof Map ? graph.links.get(id) : graph.links[id];
  const slotName = (id, kind, slot) => wf.nodes.find(n => n.id === id)?.[kind]?.[slot]?.name;
  for (const [id, from, fromSlot, to, toSlot, type] of wf.links) {  // same names; slot order may change
    const link = linkOf(id), src = byId.get(String(from)), dst = byId.get(String(to));
    const out = src?.outputs?.[link?.origin_slot], inp = dst?.inputs?.[link?.target_slot];
    if (!link || String(link.origin_id) !== String(from) || String(link.target_id) !== String(to) || !out || !inp
        || String(inp.link) !== String(id)
        || out.name !== slotName(from, "outputs", fromSlot) || inp.name !== slotName(to, "inputs", toSlot))
      problems.push(`link ${id} (${type}) from #${from} to #${to}.${slotName(to, "inputs", toSlot)} ` +
                    `was dropped or rewired`);
    else if (!LiteGraph.isValidConnection(out.type, inp.type))
      problems.push(`link ${id}: ${label(src)}.${out.name} (${out.type}) cannot feed ` +
                    `${label(dst)}.${inp.name} (${inp.type})`);
  }
  return problems;
}"""

LAYOUT_JS = """() => {
  const canvas = app.canvas.canvas.getBoundingClientRect(), vue = LiteGraph.vueNodesMode === true;
  const seen = app.graph.nodes.map((node) => {
    let r = null;
    if (vue) {
      const b = document.querySelector(`.lg-node[data-node-id="${node.id}"]`)?.getBoundingClientRect();
      if (b) r = [b.left, b.top, b.right, b.bottom];
    } else {
      const [x, y, w, h] = node.boundingRect, ds = app.canvas.ds, [sx, sy] = ds.convertOffsetToCanvas([x, y]);
      r = [canvas.left + sx, canvas.top + sy, canvas.left + sx + w * ds.scale, canvas.top + sy + h * ds.scale];
    }
    return { name: `${node.type} #${node.id}`, r };
  });
  const problems = [];
  for (const { name, r } of seen) {
    if (!r) problems.push(`${name} is not drawn`);
    else if (r[0] < canvas.left || r[1] < canvas.top || r[2] > canvas.right || r[3] > canvas.bottom)
      problems.push(`${name} is not wholly in view: ${r.map(Math.round)} (canvas ${canvas.width}x${canvas.height})`);
  }
  for (const [i, a] of seen.entries()) for (const b of seen.slice(i + 1)) {
    if (a.r && b.r && a.r[0] < b.r[2] && b.r[0] < a.r[2] && a.r[1] < b.r[3] && b.r[1] < a.r[3])
      problems.push(`${a.name} overlaps ${b.name}`);
  }
  return problems;
}"""

OVERLAYS_JS = """() => ({
  dialogs: [...document.querySelectorAll('.p-dialog')].map(d => d.innerText.trim().replace(/\\s+/g, ' ')),
  toasts: [...document.querySelectorAll('.p-toast-message')].map(t => t.innerText.trim().replace(/\\s+/g, ' ')),
})"""


def unavailable() -> str | None:
    """Why the frontend cannot be driven here, or None."""
    if comfyui_location() is None:
        return "no real ComfyUI: set COMFYUI_DIR to a ComfyUI folder with its own .venv"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is missing (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no {CHROMIUM} (apt-get install chromium)"
    return None


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.json"))


# Workflows saved by release 0.1.0 (the examples as they shipped), and the widgets nodes gained since,
# with the default values a loaded old workflow must get: saved workflows are a contract.
RELEASED = ROOT / "tests" / "fixtures" / "workflows_0_1_0"
ADDED_SINCE_0_1_0 = {"FalQwenImageEditPlus": ["custom", "fit model", "png", -1, "default", True],
                     "FalQwenConnection": ["default", "default"]}
# The examples as the release before the frontend extension saved them (commit c0b86bf).
RELEASED_C0B86BF = ROOT / "tests" / "fixtures" / "workflows_c0b86bf"
ADDED_SINCE_C0B86BF: dict[str, list] = {"FalQwenImageEditPlus": [-1, "default", True], "FalQwenConnection": ["default"]}
# The examples as main saved them before enable_prompt_expansion (commit 0b42cfc).
RELEASED_0B42CFC = ROOT / "tests" / "fixtures" / "workflows_0b42cfc"
ADDED_SINCE_0B42CFC: dict[str, list] = {"FalQwenImageEditPlus": [True]}
SAVED_SETS = {"0.1.0": (RELEASED, ADDED_SINCE_0_1_0), "c0b86bf": (RELEASED_C0B86BF, ADDED_SINCE_C0B86BF),
              "0b42cfc": (RELEASED_0B42CFC, ADDED_SINCE_0B42CFC)}


def released_workflow_files() -> list[Path]:
    return sorted(RELEASED.glob("*.json"))


def saved_workflows() -> list[tuple[str, Path, dict[str, list]]]:
    """(release, file, the defaults of the widgets its nodes gained since) for every saved set."""
    return [(release, path, added) for release, (folder, added) in SAVED_SETS.items()
            for path in sorted(folder.glob("*.json"))]


@contextlib.contextmanager
def comfyui_with_fake_fal(workdir: Path, daily_cap_usd: float | None = None, key_in_env: bool = True):
    """A ComfyUI with this pack, sample inputs installed, fal requests going to a local FakeFal
    (``daily_cap_usd``: the pack's spending cap; ``key_in_env`` False: no key anywhere, the config
    folder is ``workdir/config``, where keys pasted into the panel go)."""
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    folder, python = comfyui_location()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    with FakeFal(key=KEY, max_lifetime=1800) as fal:
        env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=fal.url, FAL_REST_BASE=fal.url, FAL_API_BASE=fal.url,
                   FAL_QWEN_EDIT_CONFIG=str(workdir / ("no-config.ini" if key_in_env else "config/config.ini")),
                   FAL_QWEN_EDIT_STATE_DIR=str(workdir / "state"))  # fake results stay out of the real cache
        if daily_cap_usd is not None:
            env["FAL_DAILY_BUDGET_USD"] = str(daily_cap_usd)
        if not key_in_env:
            del env["FAL_KEY"]
        comfy = ComfyUI(folder, python, env, workdir / "comfyui")
        install_inputs(comfy.input_dir)
        try:
            comfy.fal = fal  # tests look at what fal was sent, or seed jobs it holds
            yield comfy.start()
        finally:
            comfy.stop()


RENDERERS = ("classic", "vue")
# The Vue renderer is checked from this frontend on. Before it, the renderer copies a node's extension badges
# once when the node mounts (1.37: useGraphNodeManager's VueNodeData.badges), so no badge there can follow
# a change; 1.58 evaluates them in a computed that tracks the reactive node state they read.
VUE_FROM = (1, 58)


@contextlib.contextmanager
def open_frontend(comfy: ComfyUI, renderer: str, **options):
    """A Frontend in ``renderer``; a test asking for the Vue renderer on an older frontend is skipped."""
    import pytest
    with Frontend(comfy, renderer=renderer, **options) as page:
        if renderer == "vue" and page.version() < VUE_FROM:
            pytest.skip(f"the Vue renderer is checked from frontend {'.'.join(map(str, VUE_FROM))} on; "
                        f"this is {'.'.join(map(str, page.version()))}")
        yield page


class Frontend:
    """One headless Chromium page showing ComfyUI's frontend; use as a context manager. ``renderer``:
    "classic" (the LiteGraph canvas) or "vue" (Nodes 2.0, setting ``Comfy.VueNodes.Enabled``). ``locale``: the
    frontend's language (setting ``Comfy.Locale``, "zh", "ja", …), as a user picks it; else the default."""

    def __init__(self, comfy: ComfyUI, width: int = 1600, height: int = 900, renderer: str = "classic",
                 locale: str | None = None):
        assert renderer in RENDERERS, renderer
        self.comfy, self.size, self.renderer = comfy, {"width": width, "height": height}, renderer
        self.settings = {**SETTINGS, "Comfy.VueNodes.Enabled": renderer == "vue",
                         **({"Comfy.Locale": locale} if locale else {})}
        self.console: list[str] = []

    def __enter__(self) -> "Frontend":
        from playwright.sync_api import sync_playwright
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        self._playwright = sync_playwright().start()
        home = self._profile.name  # Chromium's crash reports and dconf cache go there, not into ~
        env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": f"{home}/config", "XDG_CACHE_HOME": f"{home}/cache"}
        try:
            self.context = self._playwright.chromium.launch_persistent_context(
                f"{home}/profile", executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env,
                viewport=self.size, device_scale_factor=1)
            self.context.route("**/*", self._route)
            self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
            self.page.on("console", self._on_console)
            self.page.on("pageerror", lambda e: self.console.append(f"page error: {e}"))
            self.page.goto(self.comfy.url)
            self.page.wait_for_function(
                "window.app?.vueAppReady && app.canvas && window.LiteGraph"
                " && Object.keys(LiteGraph.registered_node_types).length > 0", timeout=90_000)
            self.page.wait_for_timeout(1000)  # startup's own default graph and toasts settle
            self.page.evaluate("app.extensionManager.focusMode = true")  # graph only: no menus/sidebars
            self.dismiss()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.context.close()
        self._playwright.stop()
        self._profile.cleanup()

    def _on_console(self, message) -> None:
        # net::ERR_FAILED: a request to outside 127.0.0.1 that _route aborted (e.g. the node registry)
        if message.type in ("error", "warning") and "net::ERR_FAILED" not in message.text:
            self.console.append(f"console {message.type}: {message.text}")

    def _route(self, route) -> None:
        request, base = route.request, self.comfy.url
        path = request.url[len(base):].split("?")[0] if request.url.startswith(base) else None
        if path is None:
            route.abort()  # the machine is offline; nothing outside ComfyUI is needed
        elif path == "/api/settings" and request.method == "GET":
            route.fulfill(json=self.settings)
        elif path == "/api/userdata" and request.method == "GET":
            route.fulfill(json=[])  # no saved workflows or subgraphs
        elif path.startswith("/api/userdata/") and request.method == "GET":
            route.fulfill(status=404)
        elif path.startswith(("/api/settings", "/api/userdata")):
            route.fulfill(json={})  # writes: ComfyUI's own user folder stays untouched
        else:
            route.continue_()

    def overlays(self) -> dict:
        return self.page.evaluate(OVERLAYS_JS)

    def dismiss(self) -> None:
        for attempt in range(5):
            if not self.overlays()["dialogs"]:
                break
            if attempt < 2:
                self.page.keyboard.press("Escape")
            else:  # Escape left one open (seen on 1.27, its mask still in its enter state): its close button
                for button in self.page.locator(".p-dialog-close-button, .p-dialog-header-close").all():
                    button.click(force=True, timeout=2_000)
            self.page.wait_for_timeout(300)
        self.page.evaluate("(() => { const t = app.extensionManager.toast; (t.removeAll ?? t.clearAll ?? (() => {})).call(t); })()")
        self.page.wait_for_timeout(300)

    def version(self) -> tuple[int, ...]:
        """The frontend package's version (1.27.10 → (1, 27, 10))."""
        text = self.page.evaluate("window.__COMFYUI_FRONTEND_VERSION__ ?? '0'")
        return tuple(int(part) for part in text.split(".") if part.isdigit())

    def load(self, path: Path, added: dict[str, list] | None = None, restore_view: bool = False) -> list[str]:
        """Load a workflow file; return everything the frontend objected to (empty: clean). ``added``:
        per node type, the default values of widgets the node gained after the file was saved.
        ``restore_view``: as a file the user opens, with its saved view (else the view stays)."""
        workflow = json.loads(path.read_text())
        self.console.clear()
        missing = self.page.evaluate(
            "(wf) => wf.nodes.map(n => n.type).filter(t => !(t in LiteGraph.registered_node_types))",
            workflow)
        problems = [f"missing node type: {kind}" for kind in dict.fromkeys(missing)]
        self.page.evaluate("([wf, name, view]) => app.loadGraphData(wf, true, view, name)",
                           [workflow, path.name, restore_view])
        self.page.wait_for_timeout(800)  # dialogs and toasts are shown asynchronously
        problems += self.page.evaluate(CHECK_JS, [workflow, added or {}])
        seen = self.overlays()
        problems += [f"dialog: {text[:500]}" for text in seen["dialogs"]]
        problems += [f"toast: {text[:500]}" for text in seen["toasts"]]
        problems += self.console
        self.dismiss()
        return problems

    def layout_problems(self) -> list[str]:
        """Nodes that overlap or are not wholly inside the canvas, as the user sees them: on the classic
        canvas by LiteGraph's bounding boxes (title bars included), in the Vue renderer by the nodes' DOM."""
        return self.page.evaluate(LAYOUT_JS)

    def fit(self, margin: float = 0.92) -> None:
        """Zoom and pan so every node (title bar included) fills the view."""
        self.page.evaluate("""(zoom) => {
          const rects = app.graph.nodes.map(n => n.boundingRect);
          const x0 = Math.min(...rects.map(r => r[0])), y0 = Math.min(...rects.map(r => r[1]));
          const x1 = Math.max(...rects.map(r => r[0] + r[2])), y1 = Math.max(...rects.map(r => r[1] + r[3]));
          app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {zoom});
          app.canvas.setDirty(true, true);
        }""", margin)
        self.page.wait_for_timeout(300)

    def run(self, timeout: float = 120.0) -> list[str]:
        """Queue the loaded graph as the frontend converts it; wait until SaveImage nodes show results."""
        self.console.clear()
        queued = self.page.evaluate("""async () => {
          try { return await comfyAPI.api.api.queuePrompt(0, await app.graphToPrompt()); }
          catch (e) { return {error: e.response ?? String(e)}; }
        }""")
        if "error" in queued:
            return [f"queueing the frontend's prompt failed: {json.dumps(queued['error'])[:1500]}"]
        entry = self.comfy.wait(queued["prompt_id"], timeout)
        if entry["status"]["status_str"] != "success":
            # the frontend's error dialog comes over the websocket, maybe after the history has the error:
            # wait for it, so that it is closed here and does not cover the next test's clicks
            deadline = time.monotonic() + 5
            while not self.overlays()["dialogs"] and time.monotonic() < deadline:
                self.page.wait_for_timeout(100)
            self.dismiss()
            return [f"run failed: {json.dumps(entry['status'].get('messages'))[:1500]}"]
        self.fit()  # 1.58 loads a node's output images only once the node is drawn
        deadline = time.monotonic() + 30
        # the canvas loads every image of a SaveImage; the Vue renderer shows one at a time (with arrows)
        shown = """() => app.graph.nodes.filter(n => n.type === 'SaveImage').every(n => {
          if (!LiteGraph.vueNodesMode) return n.imgs?.length && n.imgs.every(i => i.complete && i.naturalWidth);
          const pictures = [...(document.querySelector(`.lg-node[data-node-id="${n.id}"]`)?.querySelectorAll('img') ?? [])];
          return pictures.length && pictures.every(i => i.complete && i.naturalWidth); })"""
        while not self.page.evaluate(shown):
            if time.monotonic() > deadline:
                return ["the SaveImage nodes did not show their images within 30 s"]
            self.page.wait_for_timeout(200)
        self.page.wait_for_timeout(500)
        self.dismiss()
        return list(self.console)

    def screenshot(self) -> bytes:
        self.page.mouse.move(self.size["width"] - 1, self.size["height"] - 1)  # no hover effects
        self.page.wait_for_timeout(200)
        return self.page.screenshot(type="png")
