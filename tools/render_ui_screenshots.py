"""The README's pictures of the pack in ComfyUI: the edit node with its price badge, and the fal panel.

Starts the fake fal server and ComfyUI (``COMFYUI_DIR``, as for the tests) with this pack, runs the
one-image example so the panel has a job with its thumbnail and cost, and writes
``docs/images/node.png`` and ``docs/images/panel.png``. Needs chromium and playwright, as the browser tests.
Usage: python tools/render_ui_screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frontend_harness import WORKFLOWS, Frontend, comfyui_with_fake_fal, unavailable  # noqa: E402
from render_workflow_previews import save_compressed  # noqa: E402

NODE_BOX = """() => { const node = app.graph.nodes.find(n => n.type === 'FalQwenImageEditPlus');
  const [x, y, w, h] = node.boundingRect, ds = app.canvas.ds, rect = app.canvas.canvas.getBoundingClientRect();
  const [sx, sy] = ds.convertOffsetToCanvas([x, y - 34]);
  return {x: rect.left + sx - 8, y: rect.top + sy - 8, width: w * ds.scale + 16, height: (h + 34) * ds.scale + 16}; }"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "images")
    args = parser.parse_args()
    if (reason := unavailable()) is not None:
        print(f"cannot render: {reason}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, comfyui_with_fake_fal(Path(tmp), daily_cap_usd=5.0) as comfy, \
            Frontend(comfy, width=1500, height=900) as page:
        problems = page.load(WORKFLOWS / "qwen_edit_single.json") + page.run()
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        page.page.evaluate("app.extensionManager.focusMode = false")
        page.page.wait_for_timeout(500)
        page.fit(0.8)
        page.page.wait_for_timeout(800)
        clip = page.page.evaluate(NODE_BOX)
        written = [save_compressed(page.page.screenshot(type="png", clip=clip), args.out, "node")]
        page.page.locator("[class*='pi-images']").first.click()  # the fal tab in the sidebar
        page.page.wait_for_selector(".fal-qwen-job img.fal-qwen-thumb", timeout=20_000)
        page.page.wait_for_timeout(800)
        written.append(save_compressed(page.screenshot(), args.out, "panel"))
    print("wrote", *written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
