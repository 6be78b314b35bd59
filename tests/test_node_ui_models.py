"""Each model's own widgets on the edit node, in ComfyUI's real frontend (classic canvas and Vue renderer):
switching the model shows exactly the widgets it takes with no value moved, a value out of its range is
flagged and asked about before Run, a widget's tooltip says the model's range and default; and the Multiple
Angles node's price and common widgets. GET /fal_qwen_edit/models is the table the run checks.

Needs what tests/test_frontend.py needs (tests/node_ui_page.py holds the page and what is read from it).
"""

from __future__ import annotations

import json

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import CUSTOM
from frontend_harness import WORKFLOWS
from node_ui_page import (COMMON, ELEMENT, FIND, FRAME, NEEDS_FRONTEND, VISIBLE, answer_for, load_single,  # noqa: F401
                          page, show_advanced, shown, wait_for_badge)

pytestmark = NEEDS_FRONTEND


# -- each model's own widgets, ranges and tooltips (GET /fal_qwen_edit/models: the table the run checks) -------
QWEN_2 = ["qwen-image-2-edit", "qwen-image-2-pro-edit", "qwen-image-max-edit"]
PER_MODEL = ["num_inference_steps", "guidance_scale", "acceleration", "enable_prompt_expansion"]
LABEL = f"""([node, name]) => {{
  if (!LiteGraph.vueNodesMode) return node.widgets.find(w => w.name === name).label ?? name;
  const row = ({ELEMENT})(node).querySelector(`[data-testid="node-widget"][data-widget-name="${{name}}"]`);
  return row?.querySelector('[data-testid="widget-layout-field-label"]')?.textContent.trim()
    ?? row?.innerText.split('\\n')[0].trim() ?? null;
}}"""


def set_values(page, **values) -> None:
    page.page.evaluate(f"""(values) => {{ const node = {FIND};
      for (const [name, value] of Object.entries(values)) node.widgets.find(w => w.name === name).value = value; }}""",
                       values)


def visible(page) -> list[str]:
    return page.page.evaluate(f"() => ({VISIBLE})({FIND})")


def test_switching_the_model_shows_exactly_the_widgets_it_takes_and_no_value_moves(page):
    from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
    load_single(page)
    before = page.page.evaluate(f"() => {FIND}.serialize().widgets_values")
    show_advanced(page, FIND, True)  # acceleration is advanced: shown, so its hiding by model is seen
    for model in [*QWEN_2, "qwen-edit-plus", "qwen-edit-2511", "qwen-edit-lora", CUSTOM]:
        set_values(page, model=model, endpoint="someone/else-edit" if model == CUSTOM else before[20])
        spec = spec_for(model, "someone/else-edit")
        wanted = [name for name in PER_MODEL if spec.takes(name)]
        page.page.wait_for_function(f"""(wanted) => {{ const seen = ({VISIBLE})({FIND});
          return JSON.stringify({json.dumps(PER_MODEL)}.filter(n => seen.includes(n))) === JSON.stringify(wanted); }}""",
                                    arg=wanted, timeout=5_000)
        if model in QWEN_2:
            assert wanted == ["enable_prompt_expansion"]
        elif model != CUSTOM:
            assert wanted == ["num_inference_steps", "guidance_scale", "acceleration"]
        else:  # an id the table lacks: the generic rules, every widget (fal's answer has the last word)
            assert wanted == PER_MODEL
    set_values(page, model="qwen-edit-plus", endpoint=before[20])
    after = page.page.evaluate(f"() => {FIND}.serialize().widgets_values")
    assert len(after) == len(before) + 0 and after[:22] == before[:22] and after[23:] == before[23:]
    show_advanced(page, FIND, False)
    assert visible(page) == COMMON


def test_a_value_out_of_the_models_range_is_flagged_and_asked_about_before_run(page):
    load_single(page)
    set_values(page, model="qwen-edit-plus", num_inference_steps=1)
    page.page.wait_for_function(f"() => ({LABEL})([{FIND}, 'num_inference_steps']).includes('⚠')", timeout=5_000)
    label = page.page.evaluate(f"() => ({LABEL})([{FIND}, 'num_inference_steps'])")
    assert label.endswith("⚠ 2-100"), label
    limits = page.page.evaluate(f"""() => {{ const o = {FIND}.widgets.find(w => w.name === 'num_inference_steps').options;
      return [o.min, o.max]; }}""")
    assert limits == [2, 100]
    # Run: the same words the backend would stop with, before any prompt is sent; dismissing sends none
    prompts, dialogs = [], []
    page.page.on("request", lambda r: prompts.append(r.url) if r.url.endswith("/prompt") and r.method == "POST" else None)
    page.page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert page.page.evaluate("() => app.queuePrompt(0, 1)") is False and prompts == []
    assert len(dialogs) == 1 and "num_inference_steps: 1 is out of range for qwen-edit-plus; use 2-100." in dialogs[0]
    # the same value is fine on a model that takes it: the flag goes, the limits follow
    set_values(page, model="qwen-edit-2511")
    page.page.wait_for_function(f"() => !({LABEL})([{FIND}, 'num_inference_steps']).includes('⚠')", timeout=5_000)
    assert page.page.evaluate(f"() => ({LABEL})([{FIND}, 'num_inference_steps'])") != label
    # Qwen-Image-2's seed range: a larger seed is flagged; randomize stays inside the model's range
    set_values(page, model="qwen-image-2-edit", num_inference_steps=30, seed=3_000_000_000)
    page.page.wait_for_function(f"() => ({LABEL})([{FIND}, 'seed']).endsWith('⚠ 0-2147483647')", timeout=5_000)
    seeds = page.page.evaluate(f"""() => {{ const node = {FIND}, seed = node.widgets.find(w => w.name === 'seed');
      const control = node.widgets.find(w => w.name === 'control_after_generate');
      control.value = 'randomize';
      const seen = [];
      for (let i = 0; i < 200; i++) {{ control.afterQueued?.(); seen.push(seed.value); }}
      control.value = 'fixed';
      return {{seen, max: seed.options.max}}; }}""")
    assert seeds["max"] == 2147483647 and len(set(seeds["seen"])) > 150
    assert all(0 <= s <= 2147483647 for s in seeds["seen"]) and max(seeds["seen"]) > 2**30
    page.page.wait_for_function(f"() => !({LABEL})([{FIND}, 'seed']).includes('⚠')", timeout=5_000)
    set_values(page, model="qwen-edit-plus")  # back to the widget's own 2^32-1
    page.page.wait_for_function(f"() => {FIND}.widgets.find(w => w.name === 'seed').options.max === 4294967295",
                                timeout=5_000)


def hover_tooltip(page, name: str) -> str:
    """The tooltip the user sees when the pointer rests on a widget (canvas: the frontend's NodeTooltip; Vue
    renderer: the widget row's own tooltip)."""
    page.page.mouse.move(5, 5)
    page.page.wait_for_timeout(300)
    if page.renderer == "vue":
        node_id = page.page.evaluate(f"() => String({FIND}.id)")
        row = page.page.locator(f".lg-node[data-node-id='{node_id}'] [data-testid='node-widget'][data-widget-name='{name}']")
        row.hover()
        tip = page.page.locator("[role='tooltip']").last
        tip.wait_for(state="attached", timeout=5_000)
        return tip.inner_text()
    x, y = page.page.evaluate(f"""(name) => {{ const node = {FIND}, w = node.widgets.find(w => w.name === name);
      const r = app.canvas.canvas.getBoundingClientRect();
      const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + node.size[0] / 2, node.pos[1] + w.last_y + 10]);
      return [r.left + x, r.top + y]; }}""", name)
    page.page.mouse.move(x, y)
    page.page.mouse.move(x + 2, y)
    page.page.wait_for_function("() => document.querySelector('.node-tooltip')?.innerText?.trim()", timeout=5_000)
    return page.page.evaluate("() => document.querySelector('.node-tooltip').innerText")


def test_a_widgets_tooltip_says_the_chosen_models_range_and_default(page):
    load_single(page)
    page.page.evaluate(FRAME, page.page.evaluate(f"() => String({FIND}.id)"))
    set_values(page, model="qwen-edit-plus")
    page.page.wait_for_timeout(800)
    text = hover_tooltip(page, "num_inference_steps")
    assert "Denoising steps" in text and "qwen-edit-plus: 2-100, fal's default 50." in text, text
    set_values(page, model="qwen-edit-2511")
    page.page.wait_for_timeout(800)
    assert "qwen-edit-2511: 1-50, fal's default 28." in hover_tooltip(page, "num_inference_steps")
    assert "auto on qwen-edit-2511: fal takes the output size from the last input image." in \
        hover_tooltip(page, "image_size")
    set_values(page, model="qwen-edit-plus")
    page.page.wait_for_timeout(800)
    assert "auto on qwen-edit-plus: fal makes square_hd." in hover_tooltip(page, "image_size")
    page.page.mouse.move(5, 5)


ANGLES = "app.graph.nodes.find(n => n.type === 'FalQwenMultipleAngles')"
ANGLES_COMMON = ["horizontal_angle", "vertical_angle", "zoom", "additional_prompt", "negative_prompt", "lora_scale",
                 "image_size", "num_inference_steps", "guidance_scale", "num_images", "seed", "enable_safety_checker",
                 "output_format"]


def test_the_multiple_angles_node_shows_its_price_and_its_common_widgets(page):
    """Its one image input and its widgets are the question; the badge says the backend's answer, follows a widget,
    and counts in the graph's total; only its common widgets show (width/height for a custom size)."""
    assert page.load(WORKFLOWS / "qwen_multiple_angles.json", restore_view=True) == []
    page.page.wait_for_function("() => app.graph.nodes.find(n => n.type === 'LoadImage').imgs?.[0]?.naturalWidth > 0",
                                timeout=20_000)
    # the car's picture (512 x 320), once the LoadImage node shows it (the Vue renderer may show the last
    # workflow's picture for a moment)
    page.page.wait_for_function(f"() => JSON.parse({ANGLES}._falQuestion ?? 'null')?.sizes?.image?.join() === "
                                "'512,320,1'", timeout=10_000)
    question = json.loads(page.page.evaluate(f"() => {ANGLES}._falQuestion"))
    assert question["node"] == "FalQwenMultipleAngles" and question["connected"] == ["image"]
    assert question["sizes"] == {"image": [512, 320, 1]} and question["widgets"]["horizontal_angle"] == 45
    first = answer_for(page, ANGLES)
    wait_for_badge(page, first, ANGLES)
    assert page.page.evaluate(f"() => ({VISIBLE})({ANGLES})") == ANGLES_COMMON
    # no table price and none from fal on this machine: the badge says so, never a made-up figure, and the
    # question still follows the widgets (a price fal tells later prices this question)
    assert estimate_answer(json.loads(page.page.evaluate(f"() => {ANGLES}._falQuestion")))[1]["usd"] is None
    page.page.evaluate(f"() => {{ {ANGLES}.widgets.find(w => w.name === 'num_images').value = 2; }}")
    page.page.wait_for_function(f"() => JSON.parse({ANGLES}._falQuestion).widgets.num_images === 2", timeout=5_000)
    wait_for_badge(page, answer_for(page, ANGLES), ANGLES)
    assert shown(page, ANGLES) == answer_for(page, ANGLES)
    total = page.page.evaluate("() => falQwenEdit.graphPrice()")
    assert total["nodes"] == 1
    page.page.evaluate(f"() => {{ {ANGLES}.widgets.find(w => w.name === 'image_size').value = 'custom'; }}")
    page.page.wait_for_function(f"() => ({VISIBLE})({ANGLES}).includes('width')", timeout=5_000)
    assert page.page.evaluate(f"() => ({VISIBLE})({ANGLES})") == [*ANGLES_COMMON[:7], "width", "height",
                                                                  *ANGLES_COMMON[7:]]
