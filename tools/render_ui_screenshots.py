"""The README's pictures of the pack in ComfyUI: the edit node after a run in each of the frontend's two
renderers (the classic canvas and the Vue renderer, "Nodes 2.0"), and the fal panel.

Starts the fake fal server and ComfyUI (``COMFYUI_DIR``, and ``COMFYUI_FRONT_END_ROOT`` for another frontend,
as for the tests) with this pack, runs the one-image example in each renderer so the node shows its text and
the panel has a job with its thumbnail and cost, and writes ``docs/images/node-classic.png``,
``docs/images/node-vue.png`` and ``docs/images/panel.png``. Needs chromium and playwright, as the browser
tests; the Vue renderer needs frontend 1.58 or newer. Usage: python tools/render_ui_screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frontend_harness import VUE_FROM, WORKFLOWS, Frontend, comfyui_with_fake_fal, unavailable  # noqa: E402
from render_workflow_previews import save_compressed  # noqa: E402

# The edit node's box on the page, title bar and badges included, in either renderer.
NODE_BOX = """() => { const node = app.graph.nodes.find(n => n.type === 'FalQwenImageEditPlus');
  if (LiteGraph.vueNodesMode) {
    const r = document.querySelector(`.lg-node[data-node-id="${node.id}"]`).getBoundingClientRect();
    return {x: r.left - 8, y: r.top - 8, width: r.width + 16, height: r.height + 16};
  }
  const [x, y, w, h] = node.boundingRect, ds = app.canvas.ds, rect = app.canvas.canvas.getBoundingClientRect();
  const [sx, sy] = ds.convertOffsetToCanvas([x, y - 34]);
  return {x: rect.left + sx - 8, y: rect.top + sy - 8, width: w * ds.scale + 16, height: (h + 34) * ds.scale + 16}; }"""


def node_picture(page: Frontend, out: Path, name: str) -> Path:
    problems = page.load(WORKFLOWS / "qwen_edit_single.json", restore_view=True) + page.run()
    if problems:
        raise SystemExit("\n".join(problems))
    page.page.evaluate("app.extensionManager.focusMode = false")
    page.page.wait_for_timeout(500)
    page.fit(0.8)
    page.page.mouse.move(page.size["width"] - 1, page.size["height"] - 1)  # no hover effects
    page.page.wait_for_timeout(1000)
    return save_compressed(page.page.screenshot(type="png", clip=page.page.evaluate(NODE_BOX)), out, name,
                           fmt="png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "images")
    args = parser.parse_args()
    if (reason := unavailable()) is not None:
        print(f"cannot render: {reason}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for renderer in ("vue", "classic"):  # a ComfyUI each: the second would take the first's run from its cache
        with tempfile.TemporaryDirectory() as tmp, comfyui_with_fake_fal(Path(tmp), daily_cap_usd=5.0) as comfy, \
                Frontend(comfy, width=1500, height=900, renderer=renderer) as page:
            if renderer == "vue" and page.version() < VUE_FROM:
                print(f"the Vue renderer needs frontend {VUE_FROM} or newer; skipped", file=sys.stderr)
                continue
            written.append(node_picture(page, args.out, f"node-{renderer}"))
            if renderer == "classic":
                page.page.locator("[class*='pi-images']").first.click()  # the fal tab in the sidebar
                page.page.wait_for_selector(".fal-qwen-job img.fal-qwen-thumb", timeout=20_000)
                page.page.wait_for_timeout(800)
                written.append(save_compressed(page.screenshot(), args.out, "panel"))
    print("wrote", *written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
