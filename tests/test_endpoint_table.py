"""The endpoint table is fal's schema snapshot, not a hand copy: the generated file is what the snapshot
gives, each limit the snapshot 'states' is in the text of fal's own field description, and every spec
the pack builds carries exactly the snapshot's fields, ranges and defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from comfyui_fal_qwen_edit.nodes.fal.models import endpoint_notes
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import ALL_ENDPOINTS, BY_ENDPOINT, GENERIC, spec_for

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = json.loads((ROOT / "nodes/fal/models/fal_schemas.json").read_text(encoding="utf-8"))


def test_the_generated_table_is_what_the_snapshot_gives():
    done = subprocess.run([sys.executable, str(ROOT / "tools/make_endpoint_table.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_snapshot_endpoint_has_reviewed_notes_and_back():
    assert {note.endpoint for note in endpoint_notes.NOTES} == set(SNAPSHOT["endpoints"])
    assert len({note.name for note in endpoint_notes.NOTES}) == len(endpoint_notes.NOTES)


@pytest.mark.parametrize("endpoint", sorted(SNAPSHOT["endpoints"]))
def test_each_spec_has_exactly_the_snapshots_fields_ranges_and_defaults(endpoint):
    schema = SNAPSHOT["endpoints"][endpoint]["input"]
    spec = BY_ENDPOINT[endpoint]
    assert spec.fields == set(schema["properties"])
    for name, prop in schema["properties"].items():
        if "minimum" in prop and "maximum" in prop:
            assert spec.ranges[name] == (prop["minimum"], prop["maximum"]), name
        if "enum" in prop:
            assert spec.enums[name] == tuple(prop["enum"]), name
        if prop.get("default") not in (None, []):
            assert spec.defaults[name] == prop["default"], name
        if "maxLength" in prop:
            assert spec.max_lengths[name] == prop["maxLength"], name
    assert spec.image_field == ("image_url" if "image_url" in schema["properties"] else "image_urls")


STATED_TEXT = {  # how fal's descriptions word each limit
    "image_count": lambda v: f"{v[0]}-{v[1]} images" if v[0] != v[1] else "The URL of the image",
    "image_side": lambda v: f"{v[0]}-{v[1]}px each dimension",
    "image_megabytes": lambda v: f"Max size: {v}MB each",
    "image_alpha": lambda v: "PNG (no alpha)" if v is False else "",
    "output_pixels": lambda v: "between {0}x{0} and {1}x{1}".format(int(v[0] ** 0.5), int(v[1] ** 0.5)),
    "seed": lambda v: f"({v[0]}-{v[1]})",
    "loras": lambda v: f"up to {v} LoRAs",
}
FIELD_OF = {"image_count": "image_urls", "image_side": "image_urls", "image_megabytes": "image_urls",
            "image_alpha": "image_urls", "output_pixels": "image_size", "seed": "seed", "loras": "loras"}


@pytest.mark.parametrize("endpoint", sorted(e for e, v in SNAPSHOT["endpoints"].items() if v.get("stated")))
def test_each_stated_limit_is_in_fals_own_description(endpoint):
    entry = SNAPSHOT["endpoints"][endpoint]
    for limit, value in entry["stated"].items():
        text = " ".join(entry["input"]["properties"][FIELD_OF[limit]].get("description", "").split())
        assert STATED_TEXT[limit](value) in text, (endpoint, limit, text)


def test_qwen_image_2_takes_no_steps_guidance_or_acceleration_and_has_prompt_expansion():
    for name in ("qwen-image-2-edit", "qwen-image-2-pro-edit", "qwen-image-max-edit"):
        spec = spec_for(name)
        assert not {"num_inference_steps", "guidance_scale", "acceleration", "loras"} & spec.fields
        assert spec.defaults["enable_prompt_expansion"] is True and spec.image_count == (1, 3)
        assert spec.image_side == (384, 5000) and spec.image_megabytes == 10 and spec.image_alpha is False
        assert spec.output_pixels == (512 * 512, 2048 * 2048) and spec.seed_range == (0, 2147483647)
        assert spec.max_lengths == {"prompt": 800, "negative_prompt": 500}


def test_the_aliases_get_their_own_rules_not_the_generic_ones():
    for endpoint, twin in (("fal-ai/qwen-image-edit-2509", "qwen-edit-plus"),
                           ("fal-ai/qwen-image-edit-2509-lora", "qwen-edit-plus-lora")):
        spec = spec_for(None, endpoint)
        assert spec is not GENERIC and spec.name != "custom" and spec.ranges == spec_for(twin).ranges
        assert spec.fields == spec_for(twin).fields


def test_the_snapshot_says_where_it_was_read_and_when():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", SNAPSHOT["read_on"])
    assert "zod.gen.ts" in SNAPSHOT["about"] and "endpoints.ts" in SNAPSHOT["about"]
    for spec in ALL_ENDPOINTS:
        source = SNAPSHOT["endpoints"][spec.endpoint]["source"]
        assert "@" in source["ranges"] and "@" in source["fields"]
