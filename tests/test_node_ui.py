"""The edit node in ComfyUI's real frontend, in the classic canvas and in the Vue renderer ("Nodes 2.0",
from frontend 1.58 on): its price badge before Run, the graph's total and the cap warning, the widgets a new
node shows, hidden ones coming back when asked, and a failed run's reason left on the node.

Needs what tests/test_frontend.py needs; ``COMFYUI_FRONT_END_ROOT`` runs it on another frontend package.
The badge must show what the backend's estimate route answers for exactly the widget values and input sizes
on the node, and that answer is the run's own estimate (tests/test_price_preview.py). What is read is what
the user sees: in the Vue renderer the badge's and the widgets' DOM; on the canvas the badge LiteGraph
draws (its function, called on every frame) and the widgets it lays out.
"""

from __future__ import annotations

import itertools
import json

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import CUSTOM, MODEL_NAMES
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import IMAGE_SIZE_PRESETS
from frontend_harness import RENDERERS, WORKFLOWS, comfyui_with_fake_fal, open_frontend, unavailable
from test_price_preview import expected

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"frontend tests skipped: {REASON}")
CAP_USD = 0.15  # the cap's test prices two nodes above it; the runs below spend under it
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
