"""The pack's translations in a real ComfyUI and its real frontend: GET /i18n carries every shipped language of
the pack (ComfyUI's app/custom_node_manager.py build_translations merges locales/<lang>/), the English source
is what /object_info sends for the pack's nodes, and with Comfy.Locale = zh the user sees the nodes and the
fal panel in Chinese while every saved workflow keeps its widget names, values and links.

Needs ``COMFYUI_DIR`` (the /i18n and /object_info tests) and, for the browser tests, what
tests/test_frontend.py needs; ``COMFYUI_FRONT_END_ROOT`` runs them on another frontend package.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from comfyui_harness import comfyui_location
from frontend_harness import (RENDERERS, WORKFLOWS, comfyui_with_fake_fal, open_frontend, saved_workflows,
                              unavailable, workflow_files)

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
LANGUAGES = sorted(p.name for p in LOCALES.iterdir() if p.is_dir())
pytestmark = pytest.mark.skipif(comfyui_location() is None,
                                reason="no real ComfyUI: set COMFYUI_DIR (docs/testing.md)")
BROWSER = unavailable()
EDIT = "FalQwenImageEditPlus"


def locale_file(lang: str, name: str) -> dict:
    return json.loads((LOCALES / lang / name).read_text(encoding="utf-8"))


def make_locales():
    spec = importlib.util.spec_from_file_location("make_locales", ROOT / "tools" / "make_locales.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    with comfyui_with_fake_fal(tmp_path_factory.mktemp("locales")) as running:
        yield running


def our_nodes(object_info: dict) -> dict:
    return {name: info for name, info in object_info.items()
            if "fal-qwen-edit" in str(info.get("python_module", ""))}


def test_the_i18n_answer_carries_every_language_of_the_pack(comfy):
    answer = comfy.get("/i18n")
    for lang in LANGUAGES:
        assert lang in answer, f"/i18n has no {lang}"
        node_defs = locale_file(lang, "nodeDefs.json")
        served = answer[lang].get("nodeDefs", {})
        assert {node: served.get(node) for node in node_defs} == node_defs, lang
        assert answer[lang].get("falQwenEdit") == locale_file(lang, "main.json")["falQwenEdit"], lang
    assert answer["zh"]["nodeDefs"][EDIT]["display_name"] == "Qwen 图像编辑 Plus (fal)"


def test_the_english_source_is_what_object_info_sends(comfy):
    ours = our_nodes(comfy.get("/object_info"))
    assert len(ours) >= 6
    generated = make_locales().node_defs_from_info(ours)
    english = locale_file("en", "nodeDefs.json")
    assert sorted(generated) == sorted(english), "run tools/make_locales.py: the node list changed"
    for node in generated:
        assert generated[node] == english[node], f"{node} changed: run tools/make_locales.py"


# What the user sees of a node: its title (the canvas draws getTitle(); the Vue renderer its header) and the
# label of each widget (the Vue renderer: the widget rows' text).
SEEN = """(type) => {
  const node = app.graph.nodes.find(n => n.type === type);
  const element = document.querySelector(`.lg-node[data-node-id="${node.id}"]`);
  const title = LiteGraph.vueNodesMode ? element?.querySelector('[data-testid="node-title"]')?.innerText
    ?? element?.innerText.split('\\n')[0] : (node.getTitle?.() ?? node.title);
  return { title: (title ?? '').trim(), text: LiteGraph.vueNodesMode ? element?.innerText ?? '' : '',
           labels: Object.fromEntries(node.widgets.filter(w => w.name).map(w => [w.name, w.label ?? w.name])),
           widgets: node.widgets.map(w => w.name), inputs: node.inputs.map(i => i.name),
           outputs: node.outputs.map(o => o.name) };
}"""


@pytest.fixture(scope="module", params=RENDERERS)
def chinese(request, comfy):
    if BROWSER:
        pytest.skip(f"frontend tests skipped: {BROWSER}")
    with open_frontend(comfy, request.param, locale="zh") as frontend:
        yield frontend


def test_the_edit_node_shows_its_chinese_title_and_labels(chinese, comfy):
    assert chinese.load(WORKFLOWS / "qwen_edit_single.json", restore_view=True) == []
    seen = chinese.page.evaluate(SEEN, EDIT)
    assert seen["title"] == "Qwen 图像编辑 Plus (fal)", seen["title"]
    if chinese.renderer == "vue":
        assert "提示词" in seen["text"], seen["text"][:500]
    else:
        assert seen["labels"]["prompt"] == "提示词", seen["labels"]
        assert seen["labels"]["start_timeout"] == "排队超时（自动）", seen["labels"]["start_timeout"]
    # names stay the schema's: what a workflow saves and a prompt sends
    info = comfy.get(f"/object_info/{EDIT}")[EDIT]["input"]
    schema = [*info["required"], *info.get("optional", {})]
    assert [name for name in seen["widgets"] if name in schema] == [name for name in schema if name in seen["widgets"]]
    assert {"prompt", "seed", "model", "start_timeout"} <= set(seen["widgets"])
    assert seen["outputs"] == ["images", "seed", "info", "mask"]


def test_the_panel_speaks_chinese(chinese):
    assert chinese.load(WORKFLOWS / "qwen_edit_single.json") == []
    page = chinese.page
    page.evaluate("app.extensionManager.focusMode = false")
    try:
        if not page.locator(".fal-qwen-panel").count():
            page.locator("[class*='pi-images']").first.click()
        page.wait_for_selector(".fal-qwen-total:not(:empty)", timeout=10_000)
        total = page.inner_text(".fal-qwen-total")
        assert total.startswith("本工作流：") and total.endswith("（1 个 fal 节点）"), total
        assert page.inner_text(".fal-qwen-keys summary").strip() == "密钥"
        assert page.inner_text(".fal-qwen-refresh").strip() == "刷新"
        assert "24 小时内已花费" in page.inner_text(".fal-qwen-spend")
    finally:
        page.evaluate("app.extensionManager.focusMode = true")


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.stem)
def test_an_example_loads_and_saves_the_same_in_chinese(chinese, path):
    """Translations change labels only: the frontend's checks (widget values, combo choices, links by slot
    name) pass, and saving the graph again writes the names and values the file holds, no translated title."""
    assert chinese.load(path) == []
    saved = json.loads(path.read_text())
    again = chinese.page.evaluate("() => app.graph.serialize()")
    by_id = {str(node["id"]): node for node in again["nodes"]}
    for node in saved["nodes"]:
        if not node["type"].startswith("FalQwen"):
            continue
        now = by_id[str(node["id"])]
        assert (now.get("widgets_values") or []) == (node.get("widgets_values") or []), node["type"]
        for kind in ("inputs", "outputs"):  # 1.58 saves a slot for every widget too: the file's are a part
            names = [slot["name"] for slot in now.get(kind) or []]
            assert {slot["name"] for slot in node.get(kind) or []} <= set(names), (kind, names)
            assert all(name.isascii() for name in names), f"{node['type']} saved a translated {kind[:-1]} name: {names}"
        assert now.get("title") == node.get("title"), f"{node['type']} saved the title {now.get('title')!r}"


@pytest.mark.parametrize("release,path,added", saved_workflows(), ids=lambda v: getattr(v, "stem", str(v)))
def test_a_released_workflow_loads_unchanged_in_chinese(chinese, release, path, added):
    assert chinese.load(path, added) == []
