"""The layout is the architecture: nodes/fal's layers import only downwards, and nothing imports in a circle.

Imports are read with ``ast`` (every import statement, also those inside functions and under
TYPE_CHECKING: a circle that only type checkers see is still a circle for the reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "comfyui_fal_qwen_edit"
# Lowest first: a module may import its own layer and the ones before it.
LAYERS = ("base", "wire", "models", "media", "queue", "platform", "state", "edit", "panel", "runner",
          "cli")
COMFYUI_MODULES = {"comfy", "comfy_api", "comfy_execution", "server", "folder_paths", "execution", "nodes"}
MAX_MODULES_PER_PACKAGE = 10
MAX_LINES = 400


def read_sources() -> dict[str, str]:
    """{dotted module name: source} for every module of the pack."""
    sources = {}
    for path in sorted((ROOT / "nodes").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join((PACKAGE, *parts))] = path.read_text()
    return sources


def imports_of(module: str, source: str, is_package: bool) -> set[str]:
    """The absolute names a module imports (a ``from X import name`` counts as X.name when that is a module)."""
    found = set()
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def problems(sources: dict[str, str]) -> list[str]:
    packages = {name for name in sources if sources_is_package(name)}
    graph = {name: {target for target in imports_of(name, src, name in packages) if target in sources} - {name}
             for name, src in sources.items()}
    found = []
    fal = f"{PACKAGE}.nodes.fal."
    for name, targets in graph.items():
        raw = imports_of(name, sources[name], name in packages)
        if name.startswith(fal) or name.startswith(f"{PACKAGE}.nodes.fakefal"):
            comfy = sorted(t for t in raw if t.split(".")[0] in COMFYUI_MODULES)
            if comfy:
                found.append(f"{name} imports ComfyUI ({', '.join(comfy)}): only the node layer may")
        for target in targets:
            if name.startswith(f"{PACKAGE}.nodes.fakefal") and target.startswith(fal):
                found.append(f"{name} imports {target}: the fake fal server stands alone")
            if not name.startswith(fal):
                continue
            if target.startswith(f"{PACKAGE}.nodes.") and not target.startswith(fal) \
                    and not target.startswith(f"{PACKAGE}.nodes.fakefal"):
                found.append(f"{name} imports the node layer ({target})")
            if target.startswith(f"{PACKAGE}.nodes.fakefal") and layer_of(name) != "cli":
                found.append(f"{name} imports the fake fal server: only the CLI (--demo) may")
            mine, theirs = layer_of(name), layer_of(target)
            if mine and theirs and LAYERS.index(theirs) > LAYERS.index(mine):
                found.append(f"{name} ({mine}) imports {target} ({theirs}), a layer above it")
    found.extend(f"import circle: {' -> '.join(cycle)}" for cycle in circles(graph))
    return found


def sources_is_package(name: str) -> bool:
    return (ROOT / Path(*name.split(".")[1:]) / "__init__.py").is_file()


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[1:3] == ["nodes", "fal"] and len(parts) > 3 and parts[3] in LAYERS:
        return parts[3]
    return None


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (package __init__ edges to their own children aside)."""
    found, state = [], {}
    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if target.startswith(name + "."):
                continue  # a package importing its own module
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"
    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_layers_import_only_downwards_and_nothing_imports_in_a_circle():
    assert problems(read_sources()) == []


def test_a_planted_upward_import_is_caught():
    sources = read_sources()
    errors = f"{PACKAGE}.nodes.fal.base.errors"
    sources[errors] += "\nfrom ..edit.pipeline import FalEditClient\n"
    assert problems(read_sources()) == []
    # (the pipeline imports errors, so the planted line also closes circles; those are reported too)
    assert f"{errors} (base) imports {PACKAGE}.nodes.fal.edit.pipeline (edit), a layer above it" in problems(sources)


def test_a_planted_circle_is_caught():
    sources = read_sources()
    batch, pipeline = f"{PACKAGE}.nodes.fal.edit.batch", f"{PACKAGE}.nodes.fal.edit.pipeline"
    sources[batch] += "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .pipeline import FalEditClient\n"
    found = problems(sources)
    assert len(found) == 1 and found[0].startswith("import circle:")
    assert batch in found[0] and pipeline in found[0]


def test_a_planted_comfyui_import_in_the_engine_is_caught():
    sources = read_sources()
    name = f"{PACKAGE}.nodes.fal.media.images"
    sources[name] += "\nimport comfy.model_management\n"
    assert problems(sources) == [f"{name} imports ComfyUI (comfy.model_management): only the node layer may"]


def test_every_layer_is_a_package_that_says_what_it_is_for():
    folders = sorted(p.name for p in (ROOT / "nodes" / "fal").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(LAYERS)
    for layer in LAYERS:
        init = ROOT / "nodes" / "fal" / layer / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and ("Uses" in doc or "Imports" in doc), f"{init} needs a docstring saying what the layer is for and what it may use"


def test_files_and_folders_stay_readable():
    folders = [ROOT / "nodes" / "fal" / layer for layer in LAYERS]
    for folder in [*folders, ROOT / "nodes", ROOT / "nodes" / "routes", ROOT / "nodes" / "fakefal",
                   ROOT / "nodes" / "fakefal" / "routes"]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES_PER_PACKAGE, f"{folder}: {len(modules)} modules, split it"
    for path in (ROOT / "nodes").rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"
