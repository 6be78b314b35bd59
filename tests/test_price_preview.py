"""The price the edit node shows before Run (POST /fal_qwen_edit/estimate) is the estimate its run carries.

``estimate_answer`` is the route's whole logic; the route itself is exercised in a real frontend by
tests/test_node_ui.py. Here every model, size preset, custom sizes and num_images 1-4 are checked
against ``estimate_run`` built independently from a QwenEditRequest, as the CLI does, at both price
sources: the table alone (a fresh install: "price unknown" where it has none) and the table plus what
fal's pricing API told this machine (a per-image price for the Qwen-Image-2 family, per megapixel for
the others), read from a real ``prices.json`` as the route reads it.
"""

from __future__ import annotations

import json
import time

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import BATCH_MODES, estimate_answer
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import estimate_run
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import ALL_ENDPOINTS, CUSTOM, MODEL_NAMES, spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.pricing import PRICE_UNKNOWN, table_price
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import IMAGE_SIZE_PRESETS, QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.platform.price_book import PriceBook

SIZES = ["auto", *IMAGE_SIZE_PRESETS, (1536, 1024), (768, 1024)]
INPUT = (1200, 900, 1)  # a LoadImage picture the frontend knows
# What a fake "fal pricing API" told this machine, for every model the table has no price for.
TOLD = {spec.endpoint: {"unit_price": 0.04 if spec.output_pixels else 0.025,
                        "unit": "image" if spec.output_pixels else "megapixels", "currency": "USD"}
        for spec in ALL_ENDPOINTS if spec.price_per_mp is None}


@pytest.fixture(scope="module")
def told(tmp_path_factory):
    """PriceBook.price_for over a prices.json as the price book writes it (read only, as the route reads it)."""
    path = tmp_path_factory.mktemp("state") / "prices.json"
    path.write_text(json.dumps({e: {**p, "fetched_at": time.time()} for e, p in TOLD.items()}))
    return PriceBook(path).price_for


def widgets(model: str, size, num_images: int, **more) -> dict:
    custom = isinstance(size, tuple)
    return {"model": model, "endpoint": "fal-ai/qwen-image-edit-plus", "image_size": "custom" if custom else size,
            "width": size[0] if custom else 1024, "height": size[1] if custom else 1024,
            "num_images": num_images, "seed": 1, "batch_mode": BATCH_MODES[0], "input_resize": "fit model", **more}


def expected(model: str, size, num_images: int, inputs, jobs: int = 1, price_of=table_price) -> float | None:
    image_size = None if size == "auto" else size
    request = QwenEditRequest(prompt="p", image_size=image_size, num_images=num_images, seed=1)
    return estimate_run(spec_for(model, "fal-ai/qwen-image-edit-plus"), request, inputs, "fit model", jobs,
                        price_of).usd


@pytest.mark.parametrize("source", ["table", "fal"])
@pytest.mark.parametrize("model", [CUSTOM, *MODEL_NAMES])
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_the_badge_is_the_runs_estimate_for_every_model_size_and_count(model, size, source, told):
    price_of = told if source == "fal" else table_price
    spec = spec_for(model, "fal-ai/qwen-image-edit-plus")
    for num_images in (1, 2, 3, 4):
        status, answer = estimate_answer({"widgets": widgets(model, size, num_images),
                                          "sizes": {"image_1": list(INPUT)}, "connected": ["image_1"]}, price_of)
        assert status == 200, answer
        usd = expected(model, size, num_images, [INPUT[:2]], price_of=price_of)
        if price_of(spec) is None:  # no table price and nothing from fal: said plainly, no figure
            assert usd is None and answer["usd"] is None and answer["known"] is False
            assert (answer["badge"], answer["price_known"]) == (PRICE_UNKNOWN, False)
            assert answer["text"].startswith(PRICE_UNKNOWN) and spec.name in answer["text"]
            continue
        assert answer["known"] is True and answer["price_known"] is True
        assert answer["usd"] == usd and answer["badge"] == f"≈${usd:.3f}"
        assert answer["price_source"] == ("endpoint table" if spec.price_per_mp is not None else "fal pricing API")


def test_a_per_image_price_ignores_the_size_and_a_per_megapixel_one_follows_it(told):
    for name in ("qwen-image-2-edit", "qwen-image-max-edit"):
        for size in ("square", "square_hd", (2048, 2048)):
            status, answer = estimate_answer({"widgets": widgets(name, size, 3), "sizes": {}, "connected": []}, told)
            assert answer["usd"] == 0.12 and answer["price_unit"] == "image"  # 3 images x $0.04, any size
            assert "3 images x $0.04/image, fal pricing API" in answer["text"]
        # auto with the input's size unknown: a per-image total needs no size
        status, answer = estimate_answer({"widgets": widgets(name, "auto", 1), "connected": ["image_1"]}, told)
        assert (answer["known"], answer["usd"], answer["badge"]) == (True, 0.04, "≈$0.040")
    status, answer = estimate_answer({"widgets": widgets("qwen-edit-lora", "auto", 1), "connected": ["image_1"]}, told)
    assert (answer["known"], answer["badge"], answer["rate_usd_per_mp"]) == (False, "$0.025/MP", 0.025)


def test_an_unknown_input_size_shows_the_rate_where_the_output_follows_the_inputs():
    for model in MODEL_NAMES:
        spec = spec_for(model)
        status, answer = estimate_answer({"widgets": widgets(model, "auto", 1), "sizes": {},
                                          "connected": ["image_1"]})
        assert status == 200
        if spec.price_per_mp is None:
            assert (answer["known"], answer["badge"]) == (False, PRICE_UNKNOWN)
        elif spec.size_when_omitted == "input":
            assert (answer["known"], answer["usd"]) == (False, None)
            assert answer["badge"] == f"${answer['rate_usd_per_mp']:g}/MP"
        else:  # qwen-edit-plus: fal's documented default, square_hd, whatever the inputs
            assert answer["known"] and answer["usd"] == expected(model, "auto", 1, [])
    # a preset output needs no input size
    status, answer = estimate_answer({"widgets": widgets("qwen-edit-2511", "square_hd", 2), "connected": ["image_1"]})
    assert answer["known"] and answer["usd"] == expected("qwen-edit-2511", "square_hd", 2, [])


def test_auto_on_the_qwen_image_2_family_is_the_last_inputs_size_in_its_budget(told):
    """The estimate's output size for auto: the last input's own size inside 512²-2048², else scaled to the
    nearer end (what docs/models-and-costs.md says)."""
    from comfyui_fal_qwen_edit.nodes.fal.models.pricing import estimate
    spec = spec_for("qwen-image-2-edit")
    assert estimate(spec, None, 1, [(640, 480), (1200, 900)], price_of=told).megapixels == round(1200 * 900 / 2**20, 2)
    assert estimate(spec, None, 1, [(6000, 4000)], price_of=told).megapixels == round(2508 * 1672 / 2**20, 2)
    assert estimate(spec, None, 1, [(400, 400)], price_of=told).megapixels == 0.25  # grown to 512 x 512


def test_per_frame_mode_prices_every_frame_or_says_per_frame():
    values = widgets("qwen-edit-2511", "landscape_4_3", 1, batch_mode=BATCH_MODES[1])
    status, answer = estimate_answer({"widgets": values, "sizes": {"image_1": [640, 480, 6], "image_2": [800, 800, 1]},
                                      "connected": ["image_1", "image_2"]})
    assert answer["known"] and answer["jobs"] == 6
    assert answer["usd"] == expected("qwen-edit-2511", "landscape_4_3", 1, [(640, 480), (800, 800)], jobs=6)
    status, answer = estimate_answer({"widgets": values, "connected": ["image_1"]})
    assert (answer["known"], answer["per"]) == (False, "frame")
    assert answer["badge"] == f"${expected('qwen-edit-2511', 'landscape_4_3', 1, []):g}/frame"


def test_bad_questions_get_a_400_that_says_what_to_send():
    assert estimate_answer(None)[0] == 400 and "widgets" in estimate_answer(None)[1]["error"]
    status, answer = estimate_answer({"widgets": {"model": "qwen-edit-9000"}})
    assert status == 400 and "qwen-edit-9000" in answer["error"] and "qwen-edit-plus" in answer["error"]
    status, answer = estimate_answer({"widgets": {}, "sizes": {"image_1": [1, "x", 1]}})
    assert status == 400 and "sizes.image_1" in answer["error"]
    status, answer = estimate_answer({"widgets": {"num_images": "many"}})
    assert status == 400
