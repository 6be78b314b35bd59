"""The edit node in ComfyUI's real frontend, in the classic canvas and in the Vue renderer ("Nodes 2.0",
from frontend 1.58 on): its price badge before Run, the graph's total and the cap warning, the widgets a new
node shows, hidden ones coming back when asked, and a failed run's reason left on the node. Each model's own
widgets, ranges and tooltips: tests/test_node_ui_models.py.

Needs what tests/test_frontend.py needs; ``COMFYUI_FRONT_END_ROOT`` runs it on another frontend package.
The badge must show what the backend's estimate route answers for exactly the widget values and input sizes
on the node, and that answer is the run's own estimate (tests/test_price_preview.py). What is read is what
the user sees (tests/node_ui_page.py).
"""

from __future__ import annotations

import itertools
import json

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import CUSTOM, MODEL_NAMES
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import IMAGE_SIZE_PRESETS
from frontend_harness import WORKFLOWS
from node_ui_page import (ADVANCED, BADGE, CAP_USD, COMMON, ELEMENT, FIND, NEEDS_FRONTEND, NEWEST, VISIBLE,  # noqa: F401
                          answer_for, badge_of, load_single, page, show_advanced, shown, wait_for_badge)
from test_price_preview import expected

pytestmark = NEEDS_FRONTEND
# Sets widget values on the first edit node, then reads what was asked and answered.
PRICE_EACH = f"""async (combos) => {{
  const node = {FIND}, badge = {BADGE}, out = [];
  for (const combo of combos) {{
    for (const [name, value] of Object.entries(combo)) node.widgets.find(w => w.name === name).value = value;
    const price = await falQwenEdit.priceOf(node);
    out.push({{question: JSON.parse(node._falQuestion), price, badge: badge(node)}});
  }}
  return out;
}}"""


def test_the_badge_is_the_backends_estimate_for_every_model_size_and_count(page):
    if page.renderer != "classic":
        pytest.skip("the question and its answer do not depend on the renderer; the Vue badge: the next tests")
    load_single(page)
    picture = page.page.evaluate("() => { const i = app.graph.getNodeById(1).imgs[0]; "
                                 "return [i.naturalWidth, i.naturalHeight, 1]; }")
    combos = []
    for model, size, count in itertools.product([CUSTOM, *MODEL_NAMES], ["auto", *IMAGE_SIZE_PRESETS, "custom"],
                                                (1, 2, 3, 4)):
        combos.append({"model": model, "image_size": size, "num_images": count, "width": 1536, "height": 1024})
    answers = page.page.evaluate(PRICE_EACH, combos)
    for combo, seen in zip(combos, answers):
        question = seen["question"]
        assert {name: question["widgets"][name] for name in combo} == combo
        assert question["sizes"] == {"image_1": picture} and question["connected"] == ["image_1"]
        status, answer = estimate_answer(question)
        assert status == 200 and seen["price"] == answer
        size = (1536, 1024) if combo["image_size"] == "custom" else combo["image_size"]
        assert answer["usd"] == expected(combo["model"], size, combo["num_images"], [tuple(picture[:2])])
        assert seen["badge"] == badge_of(answer)


def test_a_new_node_shows_its_price_within_a_second(page):
    load_single(page)
    page.page.evaluate("""() => { const node = LiteGraph.createNode('FalQwenImageEditPlus');
      node.pos = [60, 620]; app.graph.add(node); window.falAdded = performance.now(); }""")
    page.page.wait_for_function(f"() => ({BADGE})({NEWEST})?.startsWith('fal ')", timeout=1_000)
    waited = page.page.evaluate("() => performance.now() - window.falAdded")
    assert waited < 1000 and shown(page, NEWEST) == answer_for(page, NEWEST)


def wait_for_new_answer(page, before: str) -> str:
    """The badge once it changed from ``before``; it must say the backend's answer to the node's question."""
    page.page.wait_for_function(f"(before) => ![before, 'fal: …'].includes(({BADGE})({FIND}))", arg=before,
                                timeout=5_000)
    now = shown(page)
    assert now == answer_for(page)
    return now


def click_plus(page, widget: str) -> None:
    """The user's click on a number widget's + (the Vue renderer's button; on the canvas LiteGraph's arrow,
    which sets the value and calls the widget's callback)."""
    if page.renderer == "vue":
        node = page.page.evaluate(f"() => {FIND}.id")
        page.page.locator(f".lg-node[data-node-id='{node}'] [data-testid='node-widget'][data-widget-name='{widget}'] "
                          "[data-testid='increment']").click()
    else:
        page.page.evaluate(f"""(name) => {{ const node = {FIND}, w = node.widgets.find(w => w.name === name);
          w.value += 1; w.callback?.(w.value, app.canvas, node); }}""", widget)


def test_the_badge_follows_a_widget_and_an_input_change(page):
    # qwen-edit-2511 makes its output the size of the last input image, so the inputs decide the price
    assert page.load(WORKFLOWS / "qwen_edit_2511.json", restore_view=True) == []
    page.page.wait_for_function("() => app.graph.nodes.filter(n => n.type === 'LoadImage')"
                                ".every(n => n.imgs?.[0]?.naturalWidth > 0)", timeout=20_000)
    first = wait_for_new_answer(page, "fal: …")
    click_plus(page, "num_images")
    second = wait_for_new_answer(page, first)
    assert page.page.evaluate(f"() => {FIND}.widgets.find(w => w.name === 'num_images').value") == 2
    page.page.evaluate(f"() => {FIND}.disconnectInput({FIND}.inputs.findIndex(i => i.name === 'image_2'))")
    third = wait_for_new_answer(page, second)
    assert len({first, second, third}) == 3


def test_the_graph_total_sums_every_edit_node_and_warns_before_crossing_the_cap(page):
    load_single(page)
    page.page.evaluate(PRICE_EACH, [{"model": "qwen-edit-plus", "image_size": "square_hd", "num_images": 4}])
    page.page.evaluate("""() => { const node = LiteGraph.createNode('FalQwenImageEditPlus');
      node.widgets.find(w => w.name === 'image_size').value = 'landscape_16_9';
      node.widgets.find(w => w.name === 'num_images').value = 2; node.pos = [60, 620]; app.graph.add(node); }""")
    total = page.page.evaluate("() => falQwenEdit.graphPrice()")
    one, two = expected("qwen-edit-plus", "square_hd", 4, []), expected("qwen-edit-plus", "landscape_16_9", 2, [])
    assert total["nodes"] == 2 and total["usd"] == pytest.approx(one + two) and total["unknown"] == 0
    assert one + two > CAP_USD
    # Queueing would cross the cap: the warning comes before any prompt is sent; dismissing it sends none.
    prompts = []
    page.page.on("request", lambda r: prompts.append(r.url) if r.url.endswith("/prompt") and r.method == "POST" else None)
    dialogs = []
    page.page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    queued = page.page.evaluate("() => app.queuePrompt(0, 1)")
    assert queued is False and prompts == []
    assert len(dialogs) == 1 and f"only ${CAP_USD:.3f} of your ${CAP_USD:.3f} daily fal cap is left" in dialogs[0]


def test_a_new_node_names_its_model_keeps_its_seed_and_shows_the_common_widgets_only(page):
    load_single(page)
    page.page.evaluate("""() => { const node = LiteGraph.createNode('FalQwenImageEditPlus');
      node.pos = [60, 620]; app.graph.add(node); }""")
    page.page.wait_for_timeout(800)
    new = page.page.evaluate(f"""() => {{ const node = {NEWEST}, value = (name) => node.widgets.find(w => w.name === name);
      return {{model: value('model').value, control: value('control_after_generate').value,
              endpoint: value('endpoint').value, start_timeout: value('start_timeout').label,
              visible: ({VISIBLE})(node), height: node.size[1]}}; }}""")
    assert (new["model"], new["control"], new["endpoint"]) == ("qwen-edit-plus", "fixed", "fal-ai/qwen-image-edit-plus")
    assert new["visible"] == COMMON and new["start_timeout"] == "start_timeout (auto)"
    if page.renderer == "classic":
        assert new["height"] < 520  # the 27 widgets drawn made it about 980 px
    # the loaded node keeps what it saved
    loaded = page.page.evaluate(f"() => {FIND}.serialize().widgets_values")
    assert loaded[22] == "qwen-edit-plus" and loaded[9] == "fixed"


def test_advanced_inputs_come_back_when_asked_and_keep_their_values(page):
    load_single(page)
    before = page.page.evaluate(f"() => {FIND}.serialize().widgets_values")
    assert page.page.evaluate(f"() => ({VISIBLE})({FIND})") == COMMON
    names = page.page.evaluate(f"() => {FIND}.widgets.map(w => w.name)")
    show_advanced(page, FIND, True)
    assert page.page.evaluate(f"() => ({VISIBLE})({FIND})") == [n for n in names if n in COMMON + ADVANCED]
    assert page.page.evaluate(f"() => {FIND}.serialize().widgets_values") == before
    saved = page.page.evaluate("() => app.graph.serialize()")  # the choice is saved with the node
    assert next(n for n in saved["nodes"] if n["type"] == "FalQwenImageEditPlus").get("showAdvanced") is True
    show_advanced(page, FIND, False)
    assert page.page.evaluate(f"() => ({VISIBLE})({FIND})") == COMMON
    if page.renderer == "classic" and page.page.evaluate(
            "() => Boolean(app.extensionManager.setting.get('Comfy.Node.AlwaysShowAdvancedWidgets') !== undefined)"):
        page.page.evaluate("() => app.extensionManager.setting.set('Comfy.Node.AlwaysShowAdvancedWidgets', true)")
        page.page.wait_for_timeout(800)
        try:
            assert set(ADVANCED) <= set(page.page.evaluate(f"() => ({VISIBLE})({FIND})"))
        finally:
            page.page.evaluate("() => app.extensionManager.setting.set('Comfy.Node.AlwaysShowAdvancedWidgets', false)")
        page.page.wait_for_timeout(800)
        assert page.page.evaluate(f"() => ({VISIBLE})({FIND})") == COMMON


def test_hidden_widgets_come_back_when_they_apply_and_no_value_moves(page):
    load_single(page)
    before = page.page.evaluate(f"() => {FIND}.serialize().widgets_values")
    page.page.evaluate(f"() => {{ {FIND}.widgets.find(w => w.name === 'image_size').value = 'custom'; }}")
    page.page.wait_for_function(f"() => ({VISIBLE})({FIND}).includes('width')", timeout=5_000)
    assert {"width", "height"} <= set(page.page.evaluate(f"() => ({VISIBLE})({FIND})"))
    after = page.page.evaluate(f"() => {FIND}.serialize().widgets_values")
    assert after[:2] + after[3:] == before[:2] + before[3:]
    page.page.evaluate(f"""() => {{ const node = {FIND};
      node.widgets.find(w => w.name === 'image_size').value = 'auto';
      node.widgets.find(w => w.name === 'model').value = 'custom'; }}""")
    page.page.wait_for_function(f"() => !({VISIBLE})({FIND}).includes('width')", timeout=5_000)
    show_advanced(page, FIND, True)  # endpoint is advanced, and applies to a custom model only
    assert "endpoint" in page.page.evaluate(f"() => ({VISIBLE})({FIND})")
    page.page.evaluate(f"() => {{ {FIND}.widgets.find(w => w.name === 'model').value = 'qwen-edit-2511'; }}")
    page.page.wait_for_function(f"() => !({VISIBLE})({FIND}).includes('endpoint')", timeout=5_000)
    assert len(page.page.evaluate(f"() => {FIND}.serialize().widgets_values")) == len(before)


def test_a_failed_run_leaves_its_reason_on_the_node_under_a_short_type_name(page):
    fal = page.comfy.fal
    load_single(page)
    fal.fail_job = "CUDA out of memory"
    try:
        prompt_id = page.page.evaluate(f"""async () => {{
          {FIND}.widgets.find(w => w.name === 'seed').value = Math.floor(Math.random() * 1e9);
          return (await comfyAPI.api.api.queuePrompt(0, await app.graphToPrompt())).prompt_id; }}""")
        entry = page.comfy.wait(prompt_id)
    finally:
        fal.fail_job = None
    assert entry["status"]["status_str"] == "error"
    [error] = [data for kind, data in entry["status"]["messages"] if kind == "execution_error"]
    assert error["exception_type"] == "fal.JobFailedError" and "CUDA out of memory" in error["exception_message"]
    page.page.wait_for_timeout(1500)  # past the frontend's end-of-job clean-up
    page.dismiss()  # core's own error dialog or toast
    text = page.page.evaluate(f"""() => {{ const node = {FIND};
      if (LiteGraph.vueNodesMode) return ({ELEMENT})(node).innerText;
      return node.widgets.find(w => w.name === '$$node-text-preview')?.value ?? ''; }}""")
    assert "fal: JobFailedError" in text and "CUDA out of memory" in text and error["exception_message"][:40] in text
    # the line is inside the node, and the node is short enough to be seen whole
    box = page.page.evaluate(f"""() => {{ const node = {FIND};
      if (LiteGraph.vueNodesMode) {{
        const el = ({ELEMENT})(node), line = [...el.querySelectorAll('*')].filter(e => e.children.length === 0
          && e.textContent.includes('CUDA out of memory')).at(-1);
        const n = el.getBoundingClientRect(), l = line.getBoundingClientRect();
        return {{inside: l.top >= n.top && l.bottom <= n.bottom, height: n.height / app.canvas.ds.scale}};
      }}
      const w = node.widgets.find(w => w.name === '$$node-text-preview');
      return {{inside: w.y >= 0 && w.y < node.size[1], height: node.size[1]}}; }}""")
    assert box["inside"] and box["height"] < 800


def test_a_batch_is_priced_per_frame_until_a_run_has_counted_its_frames(page):
    """The frontend cannot count the frames of an animated picture: before the first run the badge of a
    per-frame edit says the rate per frame; after it, the run's own total."""
    assert page.load(WORKFLOWS / "qwen_edit_batch.json", restore_view=True) == []
    page.page.wait_for_function("() => app.graph.nodes.find(n => n.type === 'LoadImage').imgs?.[0]?.naturalWidth > 0",
                                timeout=20_000)
    wait_for_badge(page, "fal $0.03/frame")
    assert answer_for(page) == "fal $0.03/frame"
    assert page.run() == []
    wait_for_badge(page, "fal ≈$0.060")  # two frames, one edit each
    assert answer_for(page) == "fal ≈$0.060"
    ran = page.comfy.get("/history")
    infos = [json.dumps(entry["outputs"]) for entry in ran.values()]
    assert any('"fal_input_sizes": [{"image_1": [512, 512, 2]}]' in info for info in infos)
