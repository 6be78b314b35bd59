"""Each model's own per-image limits, met or refused before anything is uploaded: the Qwen-Image-2 family's
384-5000 px a side, 10 MB an image and no alpha (EndpointSpec.image_side, image_megabytes, image_alpha),
through the client, per-frame batch mode, the CLI and the batch runner. The fake fal server checks the same
limits on what it receives (its own reading of fal's schema), so an input the pack let through would be a 422."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fakefal.photos import synthetic_photo
from comfyui_fal_qwen_edit.nodes.fal.base.errors import InputError
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import InputLimits, prepare, size_problem
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.runner.batch import run_batch
from comfyui_fal_qwen_edit.nodes.fal.runner.manifest import ManifestError, read_manifest
from comfyui_fal_qwen_edit.nodes.fal.runner.scheduler import RunSettings

from conftest import FAST_RETRY, client_environ, config_for

QWEN_2 = spec_for("qwen-image-2-edit")
LIMITS = InputLimits.of(QWEN_2)


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    return synthetic_photo(width, height, seed)[None]


def noise(width: int, height: int, channels: int = 3) -> np.ndarray:
    """Pixels PNG cannot compress: about 3 bytes a pixel."""
    return np.random.default_rng(1).integers(0, 256, (1, height, width, channels), dtype=np.uint8)


def uploads(server: FakeFal) -> list[bytes]:
    return [data for name, (data, _) in list(server.storage.files.items()) if not server.storage.is_output(name)]


def run(server, tmp_path, images, *, model="qwen-image-2-edit", **options):
    with persistent_client(config_for(server), tmp_path / "state", retry=FAST_RETRY) as client:
        return client.edit(QwenEditRequest(prompt="p", seed=1), images, model=model, timeout=30, **options)


def test_the_family_states_its_limits_and_the_open_models_none():
    assert (LIMITS.side, LIMITS.megabytes, LIMITS.alpha, LIMITS.max_bytes) == ((384, 5000), 10, False, 10_000_000)
    assert InputLimits.of(spec_for("qwen-edit-2511")) is None
    assert QWEN_2.reads_area == 2048 * 2048  # the pack's fit-model size for the family: its output budget


@pytest.mark.parametrize("resize", ["fit model", "off"])
def test_a_side_under_384_px_is_refused_before_any_upload_with_what_to_do(resize, fal, tmp_path):
    with pytest.raises(InputError) as info:
        run(fal, tmp_path, [photo(600, 300)], input_resize=resize)
    message = str(info.value)
    assert "600x300 px" in message and "384-5000 px on each side" in message and "scale it up" in message
    assert "Upscale Image" in message and fal.requests == []
    # another model takes it as it is
    assert run(fal, tmp_path, [photo(600, 300)], model="qwen-edit-2511").source == "job"


def test_fit_model_never_shrinks_a_side_below_384(fal, tmp_path):
    long_thin = np.tile(photo(600, 400), (1, 1, 10, 1))  # 6000 x 400: too wide, and 5000 wide is 333 high
    with pytest.raises(InputError, match="long and thin .* crop it first"):
        run(fal, tmp_path, [long_thin])
    assert fal.requests == []
    assert size_problem((6000, 480), LIMITS, "fit model") is None  # 5000 x 400 meets both
    assert prepare(np.tile(photo(600, 480), (1, 1, 10, 1))[0], QWEN_2.reads_area, limits=LIMITS).size == (5000, 400)


def test_a_side_over_5000_px_is_scaled_down_by_fit_model_and_refused_by_off(fal, tmp_path):
    wide = np.tile(photo(650, 500), (1, 1, 8, 1))  # 5200 x 500: 2.6 MP, within what the family reads
    with pytest.raises(InputError, match="5200x500 px.*turn input_resize to 'fit model'"):
        run(fal, tmp_path, [wide], input_resize="off")
    assert fal.requests == []
    outcome = run(fal, tmp_path, [wide], upload_format="jpeg_95")
    [sent] = uploads(fal)
    assert Image.open(io.BytesIO(sent)).size == (5000, 480)  # aspect kept, the longest side at the limit
    assert outcome.source == "job" and fal.submissions == 1


def test_an_input_over_10_mb_is_shrunk_by_fit_model_and_refused_by_off(fal, tmp_path):
    heavy = noise(2400, 1600)  # 3.8 MP: under 2048², so fit model would send it as it is, but 11.5 MB as PNG
    with pytest.raises(InputError, match=r"MB as png \(2400x1600 px\); qwen-image-2-edit takes at most 10 MB"):
        run(fal, tmp_path, [heavy], input_resize="off")
    assert fal.requests == []
    outcome = run(fal, tmp_path, [heavy])
    [sent] = uploads(fal)
    width, height = Image.open(io.BytesIO(sent)).size
    assert len(sent) <= 10_000_000 and width < 2400 and abs(width / height - 1.5) < 0.01  # lossless PNG still
    assert Image.open(io.BytesIO(sent)).format == "PNG" and outcome.source == "job"
    # the output size is the one fal derives from the original, not from the smaller upload
    [job] = fal.jobs.values()
    assert job.arguments["image_size"] == {"width": 2400, "height": 1600}


def test_alpha_is_flattened_onto_white_for_a_model_without_alpha(fal, tmp_path):
    rgba = np.zeros((1, 400, 400, 4), dtype=np.uint8)
    rgba[0, :, :200] = (255, 0, 0, 255)  # opaque red on the left, fully transparent black on the right
    run(fal, tmp_path, [rgba])
    [sent] = uploads(fal)
    flat = np.asarray(Image.open(io.BytesIO(sent)))
    assert flat.shape == (400, 400, 3)
    assert (flat[:, :200] == (255, 0, 0)).all() and (flat[:, 200:] == 255).all()
    fal.storage.files.clear()
    run(fal, tmp_path, [rgba], model="qwen-edit-2511")  # a model that takes alpha gets it
    [sent] = uploads(fal)
    assert np.asarray(Image.open(io.BytesIO(sent))).shape == (400, 400, 4)


def test_per_frame_mode_meets_the_limits_before_the_first_upload(fal, tmp_path):
    fine = torch.from_numpy(np.concatenate([photo(400, 400), photo(400, 400, seed=1)]))
    narrow = torch.from_numpy(np.concatenate([photo(300, 400), photo(300, 400, seed=1)]))
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        with pytest.raises(InputError, match="image_1 frame 1 is 300x400 px"):
            client.edit_each(QwenEditRequest(prompt="p", seed=2), narrow, model="qwen-image-2-edit")
        assert fal.requests == []
        with pytest.raises(InputError, match="300x400 px"):  # a reference is checked as well
            client.edit_each(QwenEditRequest(prompt="p", seed=2), fine, [narrow[:1]], model="qwen-image-2-edit")
        assert fal.requests == []
        outcomes = client.edit_each(QwenEditRequest(prompt="p", seed=1), fine, model="qwen-image-2-edit")
    assert len(outcomes) == 2 and fal.submissions == 2


def test_the_cli_refuses_a_small_input_before_any_request(fal, tmp_path):
    source = tmp_path / "small.png"
    Image.fromarray(synthetic_photo(300, 300, 0)).save(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(HOME=str(tmp_path), FAL_QWEN_EDIT_CONFIG="/nonexistent.ini", **client_environ(fal))
    done = subprocess.run([sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", str(source), "-p", "p",
                           "--model", "qwen-image-2-edit", "--out", str(tmp_path / "o")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "300x300 px" in done.stderr and "384-5000 px" in done.stderr, done.stderr
    assert fal.requests == []


def batch(server, tmp_path, lines, **settings):
    with persistent_client(config_for(server), tmp_path / "state", retry=FAST_RETRY) as client:
        return run_batch(client, lines, QwenEditRequest(prompt="p"), QWEN_2, tmp_path / "out",
                         RunSettings(concurrency=2, **settings), should_cancel=lambda: False, stream=io.StringIO())


def test_the_batch_checks_fields_and_image_sizes_per_line_before_the_first_upload(fal, tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(synthetic_photo(500, 400, 0)).save(tmp_path / "in" / "ok.png")
    Image.fromarray(synthetic_photo(300, 400, 1)).save(tmp_path / "in" / "narrow.png")
    manifest = tmp_path / "edits.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in [
        {"images": ["in/ok.png"], "prompt": "fine", "enable_prompt_expansion": False},
        {"images": ["in/narrow.png"], "prompt": "too narrow"},
        {"images": ["in/ok.png"], "prompt": "x", "num_inference_steps": 20, "name": "steps"},
        {"images": ["in/ok.png"] * 4, "prompt": "x", "name": "four"},
        {"images": ["in/ok.png"], "prompt": "x" * 801, "name": "long"},
        {"images": ["in/ok.png"], "prompt": "x", "num_images": 7, "name": "seven"},
    ]) + "\n")
    with pytest.raises(ManifestError) as info:
        batch(fal, tmp_path, read_manifest(manifest))
    text = str(info.value)
    assert "line 2: images: in/narrow.png is 300x400 px; qwen-image-2-edit takes 384-5000 px" in text
    assert "line 3: num_inference_steps: qwen-image-2-edit (fal-ai/qwen-image-2/edit) does not take it" in text
    assert "line 4: image_urls: 4 images given; qwen-image-2-edit takes 1-3" in text
    assert "line 5: prompt: 801 characters; qwen-image-2-edit takes at most 800" in text
    assert "line 6: num_images: 7 is out of range for qwen-image-2-edit; use 1-6" in text
    assert "line 1" not in text and fal.requests == []
    # the good line alone runs, with its own enable_prompt_expansion
    manifest.write_text(manifest.read_text().splitlines()[0] + "\n")
    summary = batch(fal, tmp_path, read_manifest(manifest))
    assert summary.done == 1
    [job] = fal.jobs.values()
    assert job.endpoint == "fal-ai/qwen-image-2/edit" and job.arguments["enable_prompt_expansion"] is False
    assert "num_inference_steps" not in job.arguments


def test_the_batch_command_takes_the_new_models_by_name(fal, tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(synthetic_photo(500, 400, 0)).save(tmp_path / "in" / "a.png")
    (tmp_path / "edits.csv").write_text("images,prompt,enable_prompt_expansion\nin/a.png,make it blue,false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(HOME=str(tmp_path), FAL_QWEN_EDIT_CONFIG="/nonexistent.ini", **client_environ(fal),
               FAL_QWEN_EDIT_STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run([sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--manifest",
                           str(tmp_path / "edits.csv"), "--model", "qwen-image-max-edit", "--prompt-expansion", "on",
                           "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [job] = fal.jobs.values()
    assert job.endpoint == "fal-ai/qwen-image-max/edit" and job.arguments["enable_prompt_expansion"] is False
    assert "price unknown for 1 of them" in done.stderr  # a fresh state folder: fal's price comes with the job
