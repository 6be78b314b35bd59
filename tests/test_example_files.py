"""The example workflows as files: each has the preview the frontend's template browser asks for, and the
compatibility fixtures of earlier releases are kept (no ComfyUI needed)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_workflows"


def test_every_example_has_a_jpg_preview_and_no_stale_png():
    """The Templates dialog asks for /api/workflow_templates/<pack>/<name>.jpg (frontend 1.27, 1.37, 1.58:
    workflowTemplatesStore.ts, mediaSubtype 'jpg'); a .png beside it is never shown."""
    names = sorted(p.stem for p in EXAMPLES.glob("*.json"))
    assert names
    for name in names:
        preview = EXAMPLES / f"{name}.jpg"
        assert preview.is_file(), f"{name}: no {preview.name}"
        with Image.open(preview) as image:
            assert image.format == "JPEG" and image.width >= 800
        assert not (EXAMPLES / f"{name}.png").exists(), f"{name}.png is stale: the frontend asks for .jpg"


def test_the_examples_inputs_are_shipped_with_them():
    shipped = {p.name for p in (EXAMPLES / "inputs").iterdir()}
    for path in EXAMPLES.glob("*.json"):
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] == "LoadImage":
                assert node["widgets_values"][0] in shipped, f"{path.name}: {node['widgets_values'][0]}"


def test_the_workflows_of_earlier_releases_are_kept_as_fixtures():
    for release in ("workflows_0_1_0", "workflows_c0b86bf"):
        kept = sorted(p.stem for p in (ROOT / "tests" / "fixtures" / release).glob("*.json"))
        assert {"qwen_edit_single", "qwen_edit_three_images", "qwen_edit_batch"} <= set(kept), release
