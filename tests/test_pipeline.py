"""The whole edit: tensors in, real PNG/JPEG over HTTP, tensors out, checked pixel by pixel.

The fake server's stand-in model returns, for output k, input k (mod n) with
its RGB inverted, resized (nearest) when an image_size is given.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.media import storage
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (CancelledError, DownloadError, ImageDecodeError,
                                                    InputError)
from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest

from conftest import gradient, to_u8


def inverted(image) -> np.ndarray:
    return 255 - to_u8(image)[:, :, :3]


def test_three_image_composition_round_trip(fake_fal, make_client, key_scan):
    inputs = [torch.from_numpy(gradient(48, 64, seed=s))[None] for s in range(3)]
    client = make_client(fake_fal)
    progress = []
    outcome = client.edit(QwenEditRequest(prompt="woman in front of this car on this highway", num_images=3,
                                          seed=1234), inputs, on_progress=progress.append)
    assert outcome.images.shape == (3, 48, 64, 3) and outcome.images.dtype == np.float32
    for k in range(3):
        assert np.array_equal(to_u8(outcome.images[k]), inverted(inputs[k][0].numpy()))
    assert outcome.mask.shape == (3, 48, 64) and outcome.mask.max() == 0.0
    assert fake_fal.submissions == 1 and len(fake_fal.uploads) == 3
    job = fake_fal.jobs[outcome.handle.request_id]
    assert all(url.startswith(fake_fal.url + "/files/") for url in job.arguments["image_urls"])
    info = outcome.info()
    assert info["request_id"] == outcome.handle.request_id and info["seed"] == 1234
    assert info["has_nsfw_concepts"] == [False] * 3 and "warning" not in info
    assert progress and progress[-1].status == "COMPLETED"
    key_scan(str(info))


def test_batch_input_and_sync_mode(fake_fal, make_client):
    batch = torch.from_numpy(np.stack([gradient(16, 16, seed=1), gradient(16, 16, seed=2)]))
    client = make_client(fake_fal)
    outcome = client.edit(QwenEditRequest(prompt="p", num_images=2, sync_mode=True), [batch])
    job = fake_fal.jobs[outcome.handle.request_id]
    assert len(job.arguments["image_urls"]) == 2 and job.arguments["sync_mode"] is True
    for k in range(2):
        assert np.array_equal(to_u8(outcome.images[k]), inverted(batch[k].numpy()))
    assert not any(r.path.startswith("/files/") and r.method == "GET" for r in fake_fal.requests)


def test_gateway_inlines_inputs_and_never_uploads(gateway_fal, make_client, key_scan):
    image = torch.from_numpy(gradient(20, 30))[None]
    client = make_client(gateway_fal, mode="gateway")
    outcome = client.edit(QwenEditRequest(prompt="p"), [image])
    assert np.array_equal(to_u8(outcome.images[0]), inverted(image[0].numpy()))
    assert gateway_fal.uploads == []
    job = gateway_fal.jobs[outcome.handle.request_id]
    assert job.arguments["image_urls"][0].startswith("data:image/png;base64,")
    key_scan()


def test_identical_inputs_upload_once_per_process(fake_fal, make_client):
    image = torch.from_numpy(gradient(24, 24, seed=9))[None]
    client = make_client(fake_fal)
    client.edit(QwenEditRequest(prompt="p"), [image, image])
    client.edit(QwenEditRequest(prompt="q"), [image.clone()])
    assert len(fake_fal.uploads) == 1 and fake_fal.submissions == 2


def test_remembered_uploads_are_bounded_in_number_and_age(fake_fal, make_client, monkeypatch):
    monkeypatch.setattr(storage, "REMEMBERED_UPLOADS", 2)
    uploader = make_client(fake_fal).uploader
    pngs = [encode_png(gradient(8, 8, seed=s)) for s in range(3)]
    for png in pngs:
        uploader.url_for(png)
    uploader.url_for(pngs[2])  # still remembered
    assert uploader.uploads == 3 and len(uploader._urls) == 2
    uploader.url_for(pngs[0])  # the least recently used one was forgotten: uploaded again
    assert uploader.uploads == 4
    uploader.reuse_seconds = 0.0
    uploader.url_for(pngs[0])  # too old to trust: fal's storage may have dropped it
    assert uploader.uploads == 5 and len(fake_fal.uploads) == 5


def test_storage_falls_back_to_initiate_and_put(fake_fal, make_client):
    fake_fal.storage_v3 = False
    image = torch.from_numpy(gradient(10, 12))[None]
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [image])
    assert np.array_equal(to_u8(outcome.images[0]), inverted(image[0].numpy()))
    assert [route for route, _ in fake_fal.uploads] == ["put_upload"]


@pytest.mark.parametrize("size, expected", [("landscape_16_9", (576, 1024)), ((96, 80), (80, 96))])
def test_image_size_reaches_the_server(size, expected, fake_fal, make_client):
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p", image_size=size),
                                         [torch.from_numpy(gradient(32, 32))[None]])
    assert outcome.images.shape[1:3] == expected


def test_jpeg_output_decodes_close_to_expected(fake_fal, make_client):
    image = torch.from_numpy(gradient(64, 64))[None]
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p", output_format="jpeg"), [image])
    diff = np.abs(to_u8(outcome.images[0]).astype(int) - inverted(image[0].numpy()).astype(int))
    assert diff.mean() < 8  # 4:2:0 chroma subsampling, as fal's JPEGs have
    assert outcome.result.images[0].content_type == "image/jpeg"


def test_alpha_comes_back_as_mask(fake_fal, make_client):
    rgba = gradient(16, 16, channels=4)
    rgba[:, :8, 3] = 0.0
    rgba[:, 8:, 3] = 1.0
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [torch.from_numpy(rgba)[None]])
    assert outcome.images.shape == (1, 16, 16, 3)
    assert outcome.mask[0, :, :8].min() == 1.0 and outcome.mask[0, :, 8:].max() == 0.0


def test_outputs_of_different_sizes_are_padded(fake_fal, make_client):
    small, large = gradient(10, 10, seed=1), gradient(20, 30, seed=2)
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p", num_images=2),
                                         [torch.from_numpy(small)[None], torch.from_numpy(large)[None]])
    assert outcome.images.shape == (2, 20, 30, 3)
    assert np.array_equal(to_u8(outcome.images[0][5:15, 10:20]), inverted(small))
    assert outcome.mask[0, 0, 0] == 1.0 and outcome.mask[0, 5, 10] == 0.0


def test_nsfw_outputs_are_reported(fake_fal, make_client, caplog):
    fake_fal.nsfw = True
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]])
    info = outcome.info()
    assert info["has_nsfw_concepts"] == [True] and "safety checker flagged" in info["warning"]
    assert outcome.images.max() == 0.0
    assert any("safety checker flagged 1 of 1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fault, error, text", [
    (Fault("files", "status", code=404), DownloadError, "expired"),
    (Fault("files", "status", code=410), DownloadError, "expired"),
    (Fault("files", "not_image"), ImageDecodeError, "not a readable image"),
    (Fault("files", "bomb"), ImageDecodeError, "decompression bomb"),
])
def test_bad_outputs_give_clear_errors_with_request_id(fault, error, text, fake_fal, make_client, key_scan):
    fake_fal.add_fault(fault)
    client = make_client(fake_fal)
    with pytest.raises(error) as info:
        client.edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]])
    [request_id] = list(fake_fal.jobs)
    assert text in str(info.value) and request_id in str(info.value)
    assert fake_fal.submissions == 1
    key_scan(str(info.value))


def test_outputs_are_cached_while_they_decode_and_not_when_they_cannot_be(fake_fal, tmp_path):
    """The result cache gets the outputs' bytes while the last one decodes (state/result_cache.put_soon);
    an output that turns out undecodable is taken out again, so the next run makes a new job."""
    from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
    from conftest import FAST_RETRY, config_for
    image = torch.from_numpy(gradient(24, 24, seed=4))[None]
    with persistent_client(config_for(fake_fal), tmp_path, retry=FAST_RETRY) as client:
        fake_fal.add_fault(Fault("files", "not_image", times=1))
        with pytest.raises(ImageDecodeError):
            client.edit(QwenEditRequest(prompt="p", seed=5), [image], timeout=30)
        assert not list((tmp_path / "results").glob("*/result.json"))
        outcome = client.edit(QwenEditRequest(prompt="p", seed=5), [image], timeout=30)
        assert outcome.source == "job" and fake_fal.submissions == 2
        assert client.edit(QwenEditRequest(prompt="p", seed=5), [image], timeout=30).source == "cache"
    assert np.array_equal(to_u8(outcome.images[0]), inverted(image[0].numpy()))


def test_download_reset_midway_is_retried(fake_fal, make_client):
    image = gradient(40, 40)
    fake_fal.add_fault(Fault("files", "drop", times=1))  # the first download breaks off halfway
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [torch.from_numpy(image)[None]])
    assert np.array_equal(to_u8(outcome.images[0]), inverted(image))


def test_bad_fields_stop_before_any_request(fake_fal, make_client):
    client = make_client(fake_fal)
    with pytest.raises(InputError) as info:
        client.edit(QwenEditRequest(prompt="", num_images=7), [torch.from_numpy(gradient(8, 8))[None]])
    assert "prompt" in str(info.value) and "num_images" in str(info.value)
    assert fake_fal.requests == []


def test_cancel_before_submit_costs_nothing(fake_fal, make_client):
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(CancelledError):
        make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]],
                                   should_cancel=cancelled.is_set)
    assert fake_fal.submissions == 0


def test_edit_each_frame_of_a_batch_concurrently(fake_fal, make_client):
    from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import combine
    fake_fal.run_time = 0.3
    frames = np.stack([gradient(12, 12, seed=s) for s in range(6)])
    reference = torch.from_numpy(gradient(12, 12, seed=99))[None]
    import time
    started = time.monotonic()
    outcomes = make_client(fake_fal).edit_each(QwenEditRequest(prompt="p"), torch.from_numpy(frames),
                                              [reference], concurrency=6)
    assert time.monotonic() - started < 1.2  # six 0.3 s jobs overlapped, not 1.8 s in a row
    assert fake_fal.submissions == 6
    images, mask = combine(outcomes)
    assert images.shape == (6, 12, 12, 3) and mask.max() == 0.0
    for k in range(6):
        assert np.array_equal(to_u8(images[k]), inverted(frames[k]))
        urls = fake_fal.jobs[outcomes[k].handle.request_id].arguments["image_urls"]
        assert len(urls) == 2  # the frame, then the shared reference (uploaded once)
    assert len(fake_fal.uploads) == 7
