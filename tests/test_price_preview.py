"""The price the edit node shows before Run (POST /fal_qwen_edit/estimate) is the estimate its run carries.

``estimate_answer`` is the route's whole logic; the route itself is exercised in a real frontend by
tests/test_node_ui.py. Here every model, size preset, custom sizes and num_images 1-4 are checked
against ``estimate_run`` built independently from a QwenEditRequest, as the CLI does.
"""

from __future__ import annotations

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import BATCH_MODES
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import estimate_run
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import CUSTOM, MODEL_NAMES, spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import IMAGE_SIZE_PRESETS, QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer

SIZES = ["auto", *IMAGE_SIZE_PRESETS, (1536, 1024), (512, 768)]
INPUT = (1200, 900, 1)  # a LoadImage picture the frontend knows


def widgets(model: str, size, num_images: int, **more) -> dict:
    custom = isinstance(size, tuple)
    return {"model": model, "endpoint": "fal-ai/qwen-image-edit-plus", "image_size": "custom" if custom else size,
            "width": size[0] if custom else 1024, "height": size[1] if custom else 1024,
            "num_images": num_images, "seed": 1, "batch_mode": BATCH_MODES[0], "input_resize": "fit model", **more}


def expected(model: str, size, num_images: int, inputs, jobs: int = 1) -> float:
    image_size = None if size == "auto" else size
    request = QwenEditRequest(prompt="p", image_size=image_size, num_images=num_images, seed=1)
    return estimate_run(spec_for(model, "fal-ai/qwen-image-edit-plus"), request, inputs, "fit model", jobs).usd


@pytest.mark.parametrize("model", [CUSTOM, *MODEL_NAMES])
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_the_badge_is_the_runs_estimate_for_every_model_size_and_count(model, size):
    for num_images in (1, 2, 3, 4):
        status, answer = estimate_answer({"widgets": widgets(model, size, num_images),
                                          "sizes": {"image_1": list(INPUT)}, "connected": ["image_1"]})
        assert status == 200, answer
        assert answer["known"] is True
        assert answer["usd"] == expected(model, size, num_images, [INPUT[:2]])
        assert answer["badge"] == f"≈${answer['usd']:.3f}"


def test_an_unknown_input_size_shows_the_rate_where_the_output_follows_the_inputs():
    for model in MODEL_NAMES:
        spec = spec_for(model)
        status, answer = estimate_answer({"widgets": widgets(model, "auto", 1), "sizes": {},
                                          "connected": ["image_1"]})
        assert status == 200
        if spec.size_when_omitted == "input":
            assert (answer["known"], answer["usd"]) == (False, None)
            assert answer["badge"] == f"${answer['rate_usd_per_mp']:g}/MP"
        else:  # qwen-edit-plus: fal's documented default, square_hd, whatever the inputs
            assert answer["known"] and answer["usd"] == expected(model, "auto", 1, [])
    # a preset output needs no input size
    status, answer = estimate_answer({"widgets": widgets("qwen-edit-2511", "square_hd", 2), "connected": ["image_1"]})
    assert answer["known"] and answer["usd"] == expected("qwen-edit-2511", "square_hd", 2, [])


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
