"""The edit node's page in ComfyUI's real frontend, per renderer, and what the user sees on it: shared by
tests/test_node_ui.py (the price badge, the graph's total, advanced and hidden widgets, a failed run) and
tests/test_node_ui_models.py (each model's own widgets, ranges and tooltips). Each module that uses the
``page`` fixture starts a ComfyUI of its own per renderer.

What is read is what the user sees: in the Vue renderer the badge's and the widgets' DOM; on the canvas the
badge LiteGraph draws (its function, called on every frame) and the widgets it lays out.
"""

from __future__ import annotations

import json

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer
from frontend_harness import RENDERERS, WORKFLOWS, comfyui_with_fake_fal, open_frontend, unavailable

REASON = unavailable()
NEEDS_FRONTEND = pytest.mark.skipif(REASON is not None, reason=f"frontend tests skipped: {REASON}")
CAP_USD = 0.15  # test_node_ui.py: the cap's test prices two nodes above it; the runs below spend under it
COMMON = ["prompt", "negative_prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images", "seed",
          "enable_safety_checker", "output_format", "batch_mode", "model"]
ADVANCED = ["fal_picks_seed", "acceleration", "sync_mode", "concurrency", "size_mismatch", "timeout",
            "force_new_job", "image_urls", "input_resize", "upload_format", "start_timeout", "priority"]

FIND = "app.graph.nodes.find(n => n.type === 'FalQwenImageEditPlus')"
NEWEST = "app.graph.nodes.filter(n => n.type === 'FalQwenImageEditPlus').at(-1)"
ELEMENT = "(node) => document.querySelector(`.lg-node[data-node-id=\"${node.id}\"]`)"
# What the badge shows: in the Vue renderer the chip with the badge's colour (web/node_ui.js: #35506b).
BADGE = f"""(node) => {{
  if (LiteGraph.vueNodesMode) {{
    const chips = [...(({ELEMENT})(node)?.querySelectorAll('div') ?? [])];
    return chips.find(d => d.style.backgroundColor === 'rgb(53, 80, 107)')?.textContent.trim() ?? null;
  }}
  return (node.badges ?? []).map(b => typeof b === 'function' ? b() : b).map(b => b.text)
    .find(t => t?.startsWith('fal')) ?? null;
}}"""
# The widgets the user sees: on the canvas those LiteGraph lays out and draws; in the Vue renderer the
# widget rows in the node's DOM.
VISIBLE = f"""(node) => {{
  const named = node.widgets.filter(w => w.name && !w.name.startsWith('$$') && w.name !== 'control_after_generate');
  if (!LiteGraph.vueNodesMode)
    return named.filter(w => !w.hidden && node.isWidgetVisible(w) && !(w.computeSize?.()[1] < 0)).map(w => w.name);
  const rows = [...({ELEMENT})(node).querySelectorAll('[data-testid="node-widget"][data-widget-name]')]
    .filter(row => row.getBoundingClientRect().height > 0).map(row => row.dataset.widgetName);
  return named.map(w => w.name).filter(name => rows.includes(name));
}}"""
# Brings a node whole into view (the Vue renderer grows a node by its content; LiteGraph's size stays).
FRAME = """(id) => {
  const node = app.graph.getNodeById(id) ?? app.graph.getNodeById(Number(id));
  const element = document.querySelector(`.lg-node[data-node-id="${id}"]`), ds = app.canvas.ds;
  const canvas = app.canvas.canvas.getBoundingClientRect();
  const [width, height] = element ? (({width, height}) => [width, height])(element.getBoundingClientRect())
                                  : [node.size[0] * ds.scale, (node.size[1] + 30) * ds.scale];
  ds.scale *= Math.min(1, 0.85 * canvas.height / height, 0.85 * canvas.width / width);
  ds.offset = [40 / ds.scale - node.pos[0], 60 / ds.scale - node.pos[1]];
  app.canvas.setDirty(true, true);
}"""


@pytest.fixture(scope="module", params=RENDERERS)
def page(request, tmp_path_factory):
    """A ComfyUI of its own per renderer: the cap's test needs nothing spent yet."""
    with comfyui_with_fake_fal(tmp_path_factory.mktemp(f"node-ui-{request.param}"), daily_cap_usd=CAP_USD) as comfy, \
            open_frontend(comfy, request.param) as frontend:
        yield frontend


def load_single(page) -> None:
    assert page.load(WORKFLOWS / "qwen_edit_single.json", restore_view=True) == []
    page.page.wait_for_function(f"() => {FIND}.graph.getNodeById(1).imgs?.[0]?.naturalWidth > 0", timeout=20_000)


def shown(page, which: str = FIND):
    return page.page.evaluate(f"() => ({BADGE})({which})")


def answer_for(page, which: str = FIND) -> str:
    """The backend's answer for the question the node asks now, as the badge must say it."""
    question = json.loads(page.page.evaluate(f"() => {which}._falQuestion"))
    status, answer = estimate_answer(question)
    assert status == 200
    return badge_of(answer)


def badge_of(answer: dict) -> str:
    """What web/lib/price.js's badgeText makes of the backend's answer (in English)."""
    if answer.get("price_known") is False:
        return "fal: price unknown"
    return f"fal {answer['badge']}" + ("" if answer["price_confirmed"] else " (assumed)")


def wait_for_badge(page, text: str, which: str = FIND, timeout: int = 5_000) -> None:
    page.page.wait_for_function(f"(text) => ({BADGE})({which}) === text", arg=text, timeout=timeout)


def show_advanced(page, node: str, shown: bool) -> None:
    """As the user asks: the node menu's Show/Hide Advanced on the canvas, the node's own "Show advanced
    inputs" in the Vue renderer."""
    if page.renderer == "vue":
        node_id = page.page.evaluate(f"() => String({node}.id)")
        page.page.evaluate(FRAME, node_id)  # the node's footer, with its button, in view
        page.page.wait_for_timeout(300)
        page.page.locator(f".lg-node[data-node-id='{node_id}']") \
            .get_by_text("Show advanced inputs" if shown else "Hide advanced inputs").click()
    else:  # a right click on the node's title, then the menu's entry
        x, y = page.page.evaluate(f"""() => {{ const node = {node}, r = app.canvas.canvas.getBoundingClientRect();
          const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + 60, node.pos[1] - 12]);
          return [r.left + x, r.top + y]; }}""")
        page.page.mouse.click(x, y, button="right")
        page.page.locator(".litecontextmenu .litemenu-entry",
                          has_text="Show Advanced" if shown else "Hide Advanced").first.click()
    page.page.wait_for_timeout(800)
