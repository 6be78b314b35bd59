"""The request model rejects every out-of-range field before money moves."""

import pytest

from comfyui_fal_qwen_edit.nodes.fal.base.errors import InputError
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest, QwenEditResult

URL = "https://example.com/a.png"


def test_minimal_request_sends_only_what_was_set():
    args = QwenEditRequest(prompt="make it night", image_urls=[URL]).to_arguments()
    assert args == {"prompt": "make it night", "image_urls": [URL], "num_images": 1}


def test_every_field_is_passed_through():
    request = QwenEditRequest(
        prompt="p", image_urls=[URL, "data:image/png;base64,AAAA"], negative_prompt="blurry",
        image_size=(1280, 720), num_inference_steps=30, guidance_scale=5, num_images=4, seed=42,
        enable_safety_checker=False, output_format="jpeg", sync_mode=True, acceleration="regular")
    assert request.to_arguments() == {
        "prompt": "p", "image_urls": [URL, "data:image/png;base64,AAAA"], "negative_prompt": "blurry",
        "image_size": {"width": 1280, "height": 720}, "num_inference_steps": 30, "guidance_scale": 5.0,
        "num_images": 4, "seed": 42, "enable_safety_checker": False, "output_format": "jpeg",
        "sync_mode": True, "acceleration": "regular"}
    assert QwenEditRequest(prompt="p", image_urls=[URL], image_size="landscape_16_9").to_arguments()[
        "image_size"] == "landscape_16_9"


@pytest.mark.parametrize("changes, field, hint", [
    ({"prompt": "  "}, "prompt", "empty"),
    ({"image_urls": []}, "image_urls", "at least one"),
    ({"image_urls": ["file:///etc/passwd"]}, "image_urls", "not an http"),
    ({"image_size": "huge"}, "image_size", "square_hd"),
    ({"image_size": (32, 512)}, "image_size", "64-14142"),
    ({"image_size": (512,)}, "image_size", "two whole numbers"),
    ({"num_inference_steps": 1}, "num_inference_steps", "2-100"),
    ({"num_inference_steps": 101}, "num_inference_steps", "2-100"),
    ({"num_inference_steps": 10.5}, "num_inference_steps", "whole number"),
    ({"guidance_scale": 20.5}, "guidance_scale", "0-20"),
    ({"guidance_scale": "4"}, "guidance_scale", "number"),
    ({"num_images": 5}, "num_images", "1-4"),
    ({"num_images": 0}, "num_images", "1-4"),
    ({"seed": -1}, "seed", "out of range"),
    ({"output_format": "gif"}, "output_format", "jpeg, png"),
    ({"output_format": "webp"}, "output_format", "not offered for qwen-edit-plus"),  # 2511 has it, 2509 not
    ({"acceleration": "turbo"}, "acceleration", "none, regular"),
    ({"acceleration": "high"}, "acceleration", "not offered for qwen-edit-plus"),
    ({"enable_safety_checker": "yes"}, "enable_safety_checker", "true or false"),
])
def test_bad_field_message_names_field_and_fix(changes, field, hint):
    request = QwenEditRequest(**{"prompt": "p", "image_urls": [URL], **changes})
    with pytest.raises(InputError) as info:
        request.to_arguments()
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.startswith(field + ":") and hint in problem


def test_all_problems_reported_at_once():
    request = QwenEditRequest(prompt="", image_urls=[URL], num_images=9, guidance_scale=-1)
    with pytest.raises(InputError) as info:
        request.validate()
    assert [p.split(":")[0] for p in info.value.problems] == ["prompt", "guidance_scale", "num_images"]


def test_result_parsing_keeps_everything():
    data = {"images": [{"url": "https://cdn/x.png", "width": 8, "height": 6, "content_type": "image/png"},
                       {"no": "url"}],
            "seed": 7, "timings": {"inference": 1.5}, "has_nsfw_concepts": [False, True], "prompt": "p"}
    result = QwenEditResult.from_json(data, "req-123")
    assert [i.url for i in result.images] == ["https://cdn/x.png"]
    assert (result.seed, result.timings, result.has_nsfw_concepts) == (7, {"inference": 1.5}, [False, True])
    info = result.info()
    assert info["request_id"] == "req-123" and info["images"] == [
        {"width": 8, "height": 6, "content_type": "image/png"}]
