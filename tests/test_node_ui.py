"""The edit node in ComfyUI's real frontend: its price badge before Run, the graph's total and the cap
warning, the widgets hidden while they do not apply, and a new node's defaults.

Needs what tests/test_frontend.py needs; ``COMFYUI_FRONT_END_ROOT`` runs it on another frontend
package. The badge must show what the backend's estimate route answers for exactly the widget values and
input sizes on the node, and that answer is the run's own estimate (tests/test_price_preview.py).
"""

from __future__ import annotations

import itertools

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import CUSTOM, MODEL_NAMES
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import IMAGE_SIZE_PRESETS
from frontend_harness import WORKFLOWS, Frontend, comfyui_with_fake_fal, unavailable
from test_price_preview import expected

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"frontend tests skipped: {REASON}")
EDIT = "FalQwenImageEditPlus"
CAP_USD = 0.05

FIND = "app.graph.nodes.find(n => n.type === 'FalQwenImageEditPlus')"
BADGE = """(node) => (node.badges ?? []).map(b => typeof b === 'function' ? b() : b).map(b => b.text)
                     .find(t => t?.startsWith('fal'))"""
# Sets widget values on the first edit node, then reads what the badge shows and what was asked.
PRICE_EACH = f"""async (combos) => {{
  const node = {FIND}, badge = {BADGE}, out = [];
  for (const combo of combos) {{
    for (const [name, value] of Object.entries(combo)) node.widgets.find(w => w.name === name).value = value;
    const price = await falQwenEdit.priceOf(node);
    out.push({{question: JSON.parse(node._falQuestion), price, badge: badge(node)}});
  }}
  return out;
}}"""
VISIBLE = f"""() => {{ const node = {FIND};
  return {{hidden: node.widgets.filter(w => w.hidden).map(w => w.name), height: node.size[1],
          values: node.serialize().widgets_values}}; }}"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with comfyui_with_fake_fal(tmp_path_factory.mktemp("node-ui"), daily_cap_usd=CAP_USD) as comfy, \
            Frontend(comfy) as frontend:
        yield frontend


def load_single(page) -> None:
    assert page.load(WORKFLOWS / "qwen_edit_single.json") == []
    page.page.wait_for_function(f"() => {FIND}.graph.getNodeById(1).imgs?.[0]?.naturalWidth > 0", timeout=20_000)


def test_the_badge_is_the_backends_estimate_for_every_model_size_and_count(page):
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
        assert seen["badge"] == f"fal {answer['badge']}" + ("" if answer["price_confirmed"] else " (assumed)")


def test_the_badge_follows_a_widget_change_by_itself(page):
    load_single(page)
    page.page.evaluate(PRICE_EACH, [{"model": "qwen-edit-2511", "image_size": "square_hd", "num_images": 1}])
    before = page.page.evaluate(f"() => ({BADGE})({FIND})")
    page.page.evaluate(f"() => {{ {FIND}.widgets.find(w => w.name === 'num_images').value = 3; }}")
    page.page.wait_for_function(f"(before) => ({BADGE})({FIND}) !== before", arg=before, timeout=5_000)
    after = page.page.evaluate(f"() => ({BADGE})({FIND})")
    assert (before, after) == ("fal ≈$0.030", "fal ≈$0.090")


def test_the_graph_total_sums_every_edit_node_and_warns_before_crossing_the_cap(page):
    load_single(page)
    page.page.evaluate(PRICE_EACH, [{"model": "qwen-edit-plus", "image_size": "square_hd", "num_images": 1}])
    page.page.evaluate("""() => { const node = LiteGraph.createNode('FalQwenImageEditPlus');
      node.widgets.find(w => w.name === 'image_size').value = 'landscape_16_9';
      node.widgets.find(w => w.name === 'num_images').value = 2; app.graph.add(node); }""")
    total = page.page.evaluate("() => falQwenEdit.graphPrice()")
    one, two = expected("qwen-edit-plus", "square_hd", 1, []), expected("qwen-edit-plus", "landscape_16_9", 2, [])
    assert total["nodes"] == 2 and total["usd"] == pytest.approx(one + two) and total["unknown"] == 0
    assert one + two > CAP_USD
    # Queueing would cross the cap: the warning comes before any prompt is sent; dismissing it sends none.
    prompts = []
    page.page.on("request", lambda r: prompts.append(r.url) if r.url.endswith("/prompt") and r.method == "POST" else None)
    dialogs = []
    page.page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    queued = page.page.evaluate("() => app.queuePrompt(0, 1)")
    assert queued is False and prompts == []
    assert len(dialogs) == 1 and f"only ${CAP_USD:.2f} of your ${CAP_USD:.2f} daily fal cap is left" in dialogs[0]


def test_a_new_node_names_its_model_keeps_its_seed_and_shows_only_what_applies(page):
    load_single(page)
    new = page.page.evaluate("""() => { const node = LiteGraph.createNode('FalQwenImageEditPlus'); app.graph.add(node);
      const value = (name) => node.widgets.find(w => w.name === name).value;
      return {model: value('model'), control: value('control_after_generate'), endpoint: value('endpoint'),
              hidden: node.widgets.filter(w => w.hidden).map(w => w.name)}; }""")
    assert new == {"model": "qwen-edit-plus", "control": "fixed", "endpoint": "fal-ai/qwen-image-edit-plus",
                   "hidden": ["width", "height", "endpoint"]}
    # the loaded node keeps what it saved: model custom, so its endpoint field shows
    loaded = page.page.evaluate(VISIBLE)
    assert loaded["hidden"] == ["width", "height"]
    assert loaded["values"][22] == "custom" and loaded["values"][9] == "fixed"


def test_hidden_widgets_come_back_when_they_apply_and_no_value_moves(page):
    load_single(page)
    before = page.page.evaluate(VISIBLE)
    page.page.evaluate(f"() => {{ {FIND}.widgets.find(w => w.name === 'image_size').value = 'custom'; }}")
    page.page.wait_for_function(f"() => !{FIND}.widgets.find(w => w.name === 'width').hidden", timeout=5_000)
    shown = page.page.evaluate(VISIBLE)
    assert shown["hidden"] == [] and shown["height"] > before["height"]
    assert shown["values"][:2] + shown["values"][3:] == before["values"][:2] + before["values"][3:]
    page.page.evaluate(f"""() => {{ const node = {FIND};
      node.widgets.find(w => w.name === 'image_size').value = 'auto';
      node.widgets.find(w => w.name === 'model').value = 'qwen-edit-2511'; }}""")
    page.page.wait_for_function(f"() => {FIND}.widgets.find(w => w.name === 'endpoint').hidden", timeout=5_000)
    hidden = page.page.evaluate(VISIBLE)
    assert hidden["hidden"] == ["width", "height", "endpoint"] and hidden["height"] < shown["height"]
    assert len(hidden["values"]) == len(before["values"])
