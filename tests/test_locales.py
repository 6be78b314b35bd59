"""The pack's translations (locales/<lang>/): complete in every shipped language, the English source equal
to the nodes' schemas, and every text readable by each frontend.

ComfyUI's frontend looks node texts up as nodeDefs.<node id>.display_name / .description,
.inputs.<name>.name / .tooltip and .outputs.<index>.name / .tooltip; the pack's own frontend strings live
in main.json under "falQwenEdit" (web/lib/i18n.js). tests/test_locales_comfyui.py checks the same files
through a real ComfyUI's /i18n and /object_info.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
LANGUAGES = sorted(p.name for p in LOCALES.iterdir() if p.is_dir())
OTHERS = [lang for lang in LANGUAGES if lang != "en"]
FILES = ("nodeDefs.json", "main.json")
REGENERATE = "run tools/make_locales.py with a ComfyUI's Python (see its docstring)"


def load(lang: str, name: str) -> dict:
    return json.loads((LOCALES / lang / name).read_text(encoding="utf-8"))


def flat(data: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def schemas_in_source() -> dict[str, dict]:
    """Every io.Schema(...) in nodes/*.py: node id → input names and output count, read from the source so this
    runs without ComfyUI (a new node or input shows up here as soon as it is written)."""
    found = {}
    for path in sorted((ROOT / "nodes").glob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "Schema"):
                continue
            kw = {k.arg: k.value for k in call.keywords if k.arg}
            if not isinstance(kw.get("node_id"), ast.Constant):
                continue
            items = getattr(kw.get("inputs"), "elts", None)
            literal = isinstance(kw.get("inputs"), ast.List) and all(
                isinstance(item, ast.Call) and item.args and isinstance(item.args[0], ast.Constant) for item in items)
            inputs = [item.args[0].value for item in items] if literal else None  # None: built by code, see live test
            outputs = len(kw["outputs"].elts) if isinstance(kw.get("outputs"), ast.List) else None
            found[kw["node_id"].value] = {"file": path.name, "inputs": inputs, "outputs": outputs}
    return found


def test_every_language_ships_both_files_and_chinese_is_one_of_them():
    assert {"en", "zh"} <= set(LANGUAGES)
    for lang in LANGUAGES:
        for name in FILES:
            assert (LOCALES / lang / name).is_file(), f"locales/{lang}/{name} is missing"
            load(lang, name)  # valid JSON


def test_the_english_source_has_every_node_input_and_output_of_the_schemas():
    english = load("en", "nodeDefs.json")
    problems = []
    for node_id, schema in schemas_in_source().items():
        entry = english.get(node_id)
        if entry is None:
            problems.append(f"node {node_id} ({schema['file']}) has no entry")
            continue
        if schema["inputs"] is not None:
            missing = [name for name in schema["inputs"] if name.replace(".", "_") not in entry.get("inputs", {})]
            problems += [f"{node_id}: input {name} has no entry" for name in missing]
            extra = set(entry.get("inputs", {})) - {name.replace(".", "_") for name in schema["inputs"]}
            problems += [f"{node_id}: input {name} is not in the schema any more" for name in sorted(extra)]
        if schema["outputs"] is not None and len(entry.get("outputs", {})) != schema["outputs"]:
            problems.append(f"{node_id}: {schema['outputs']} outputs, {len(entry.get('outputs', {}))} entries")
    problems += [f"node {node_id} is not in nodes/*.py any more" for node_id in set(english) - set(schemas_in_source())]
    assert not problems, f"locales/en/nodeDefs.json is out of date ({REGENERATE}):\n" + "\n".join(problems)


def test_the_english_source_says_what_every_node_input_and_output_is():
    for node_id, entry in load("en", "nodeDefs.json").items():
        assert entry.get("display_name") and entry.get("description"), node_id
        for kind in ("inputs", "outputs"):
            for name, item in entry.get(kind, {}).items():
                assert item.get("name") and item.get("tooltip"), f"{node_id} {kind} {name}: give it a tooltip"


@pytest.mark.skipif(not os.environ.get("COMFYUI_DIR"), reason="the live schemas need COMFYUI_DIR (docs/testing.md)")
def test_the_english_source_is_what_the_live_schemas_generate():
    comfy = Path(os.environ["COMFYUI_DIR"])
    python = Path(os.environ.get("COMFYUI_PYTHON") or comfy / ".venv" / "bin" / "python")
    run = subprocess.run([str(python), str(ROOT / "tools" / "make_locales.py"), "--check"], cwd=comfy,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("name", FILES)
def test_every_language_has_every_text_of_the_english_source(lang, name):
    english, other = flat(load("en", name)), flat(load(lang, name))
    missing = sorted(set(english) - set(other))
    extra = sorted(set(other) - set(english))
    assert not missing, f"locales/{lang}/{name} lacks:\n" + "\n".join(f"  {key}  (en: {english[key]!r:.90})"
                                                                   for key in missing)
    assert not extra, f"locales/{lang}/{name} has keys English no longer has: {extra}"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", FILES)
def test_no_text_is_empty_and_keys_are_as_the_frontend_normalises_them(lang, name):
    for key, value in flat(load(lang, name)).items():
        assert isinstance(value, str) and value.strip(), f"locales/{lang}/{name}: {key} is empty"
    if name == "nodeDefs.json":
        for node_id, entry in load(lang, name).items():
            assert "." not in node_id and not any("." in k for k in entry.get("inputs", {})), node_id


# What stays as it is in every language: variables, files, headers, config sections, endpoint ids, the
# values a user types or picks (seed modes, option values in quotes), product names.
KEPT = re.compile(r"FAL_[A-Z_]+|config\.ini|X-Fal-[A-Za-z-]+|fal-ai/[a-z0-9./-]+|qwen-edit[a-z0-9-]*|\[\w+\]|'[a-z_]+'|"
                  r"(?<![A-Za-z0-9_])(?:fal|Qwen|LoRA|png|jpeg_95|webp_lossless|https?|localhost)(?![A-Za-z0-9_])")
# (ASCII classes and bounds, not \w or \b: Korean particles follow a word directly, as in "fal이")


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("name", FILES)
def test_names_ids_and_values_stay_as_they_are(lang, name):
    english, other = flat(load("en", name)), flat(load(lang, name))
    problems = []
    for key, text in english.items():
        if key.endswith(".name") or key not in other:  # input names are translated whole; missing: see above
            continue
        lost = sorted({m for m in KEPT.findall(text)} - {m for m in KEPT.findall(str(other[key]))})
        if lost:
            problems.append(f"{key}: {lost}")
    assert not problems, f"locales/{lang}/{name} translated what must stay as it is:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", OTHERS)
def test_every_template_has_the_placeholders_of_the_english_one(lang):
    english, other = flat(load("en", "main.json")), flat(load(lang, "main.json"))
    for key, text in english.items():
        if key in other:
            assert sorted(re.findall(r"\{(\w+)\}", str(other[key]))) == sorted(re.findall(r"\{(\w+)\}", str(text))), \
                f"locales/{lang}/main.json {key}: {other[key]!r} vs {text!r}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_node_texts_hold_nothing_vue_i18n_would_read_as_syntax(lang):
    """The frontend passes node texts through vue-i18n (1.27 and 1.37 compile tooltips too): a brace is a
    placeholder, a pipe a plural, an @ a linked message (an error that drops the text, or the node's tooltip)."""
    for key, text in flat(load(lang, "nodeDefs.json")).items():
        assert not re.search(r"[{}|@]", str(text)), f"locales/{lang}/nodeDefs.json {key}: {text!r}"


def test_every_key_the_frontend_asks_for_is_in_the_english_source():
    english = flat(load("en", "main.json")["falQwenEdit"])
    asked = set()
    for path in (ROOT / "web").rglob("*.js"):
        asked |= set(re.findall(r"\bt\(\s*\"([\w.]+)\"", path.read_text(encoding="utf-8")))
        for ternary in re.findall(r"\bt\(\s*[^\"`(),]+\?\s*\"([\w.]+)\"\s*:\s*(?:[^\"`(),]+\?\s*\"([\w.]+)\"\s*:\s*)?\"([\w.]+)\"",
                                  path.read_text(encoding="utf-8")):
            asked |= {key for key in ternary if key}
    assert len(asked) > 40
    assert not sorted(asked - set(english)), sorted(asked - set(english))
    for dynamic in ("panel.copy", "panel.cancel", "panel.fetch", "panel.add", "jobs.via.gateway",
                    "jobs.status.running", "keys.falLabel", "keys.gatewayUrlPlaceholder"):
        assert dynamic in english
