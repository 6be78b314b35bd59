"""Write ``locales/en/nodeDefs.json`` from the nodes' live schemas, so the English source never drifts.

ComfyUI's frontend looks a node's texts up as ``nodeDefs.<node id>.display_name`` / ``.description``,
``.inputs.<input name>.name`` / ``.tooltip`` and ``.outputs.<output index>.name`` / ``.tooltip`` (keys
normalised: a dot becomes ``_``; ComfyUI_frontend ``src/i18n.ts``, ``normalizeI18nKey``). This script
builds exactly that from what ``/object_info`` sends (the V1 info of every node the pack registers), run
by a real ComfyUI's own Python:

    $COMFYUI_DIR/.venv/bin/python tools/make_locales.py            # rewrite locales/en/nodeDefs.json
    $COMFYUI_DIR/.venv/bin/python tools/make_locales.py --check    # exit 1 if it is out of date
    $COMFYUI_DIR/.venv/bin/python tools/make_locales.py --missing  # what each other language lacks

Run it from anywhere; ``COMFYUI_DIR`` names the ComfyUI folder (its ``comfy_api`` is imported, nothing
is started). The other languages are translated by hand from this file; ``tests/test_locales.py``
names every key one of them lacks, and ``tests/test_locales_comfyui.py`` compares a running ComfyUI's
``/object_info`` with this file.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
PACKAGE = "comfyui_fal_qwen_edit"


def normalize_key(key: str) -> str:
    """ComfyUI_frontend's normalizeI18nKey: a dot in a node id or input name becomes ``_``."""
    return key.replace(".", "_")


def node_defs_from_info(object_info: dict) -> dict:
    """The English nodeDefs.json for the given ``/object_info`` entries (node id → V1 info)."""
    defs = {}
    for node_id, info in sorted(object_info.items()):
        entry: dict = {"display_name": info.get("display_name") or node_id}
        if info.get("description"):
            entry["description"] = info["description"]
        inputs = {}
        for group in ("required", "optional"):
            for name, spec in (info.get("input", {}).get(group) or {}).items():
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                item = {"name": name}
                if options.get("tooltip"):
                    item["tooltip"] = options["tooltip"]
                inputs[normalize_key(name)] = item
        if inputs:
            entry["inputs"] = inputs
        outputs = {}
        names = info.get("output_name") or info.get("output") or []
        tooltips = info.get("output_tooltips") or []
        for index, name in enumerate(names):
            item = {"name": name}
            if index < len(tooltips) and tooltips[index]:
                item["tooltip"] = tooltips[index]
            outputs[str(index)] = item
        if outputs:
            entry["outputs"] = outputs
        defs[normalize_key(node_id)] = entry
    return defs


def live_object_info() -> dict:
    """Every node of the pack as ``/object_info`` describes it, from ComfyUI's own comfy_api."""
    comfy = os.environ.get("COMFYUI_DIR")
    if not comfy or not (Path(comfy) / "comfy_api").is_dir():
        sys.exit("set COMFYUI_DIR to a ComfyUI folder and run this with its Python")
    sys.path.insert(0, str(Path(comfy).resolve()))
    from comfy.cli_args import args  # type: ignore[import-not-found]
    args.cpu = True  # comfy.model_management (imported by the edit node) picks no GPU at import
    import utils.install_util  # type: ignore[import-not-found]  # noqa: F401 - ComfyUI's utils/, before comfy/utils.py
    spec = importlib.util.spec_from_file_location(PACKAGE, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    from comfyui_fal_qwen_edit.nodes.extension import FalQwenEditExtension  # type: ignore[import-not-found]
    nodes = asyncio.run(FalQwenEditExtension().get_node_list())
    infos = {}
    for node in nodes:
        info = node.GET_NODE_INFO_V1()
        infos[info["name"]] = info
    return infos


def dump(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def flat(data: dict, prefix: str = "") -> dict[str, str]:
    """{"a.b.c": text} for every string in nested dicts."""
    out: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, path + "."))
        else:
            out[path] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if locales/en/nodeDefs.json is out of date")
    parser.add_argument("--missing", action="store_true", help="list what each other language lacks")
    args = parser.parse_args(argv)
    english = node_defs_from_info(live_object_info())
    target = LOCALES / "en" / "nodeDefs.json"
    if args.missing:
        wanted = flat(english)
        for folder in sorted(p for p in LOCALES.iterdir() if p.is_dir() and p.name != "en"):
            have = flat(json.loads((folder / "nodeDefs.json").read_text(encoding="utf-8")))
            for key in sorted(set(wanted) - set(have)):
                print(f"{folder.name}: {key}  (en: {wanted[key][:70]!r})")
        return 0
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != dump(english):
            print(f"{target.relative_to(ROOT)} is out of date: run tools/make_locales.py", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump(english), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}: {len(english)} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
