"""Inputs downscaled in strips on every core give Pillow's one-call bytes (media/resample.py).

An input's identity (result cache, journal, a batch's resume) is the digest of its prepared pixels, so
the strip-wise downscale must not change one byte of what earlier releases sent. Each case compares
``frame_pixels`` with ``downscale(to_uint8(frame))``, Pillow's one call, on real photo-like frames,
with strips small enough that every frame is cut into many of them, across and along odd sizes.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from comfyui_fal_qwen_edit.nodes.fakefal.photos import synthetic_photo
from comfyui_fal_qwen_edit.nodes.fal.media import resample
from comfyui_fal_qwen_edit.nodes.fal.media.images import to_uint8
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import prepare, sent_size
from comfyui_fal_qwen_edit.nodes.fal.models.sizing import VAE_AREA


@pytest.fixture(autouse=True)
def small_strips(monkeypatch):
    monkeypatch.setattr(resample, "STRIP_BYTES", 64 * 1024)  # a few rows per strip: many strips per frame


def photo(width: int, height: int, channels: int = 3, seed: int = 1) -> np.ndarray:
    rgb = synthetic_photo(width, height, seed=seed).astype(np.float32) / 255.0
    if channels == 1:
        return rgb[:, :, :1].copy()
    if channels == 4:
        alpha = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None].repeat(height, axis=0)
        return np.concatenate([rgb, alpha], axis=2)
    return rgb


def reference(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return resample.downscale(to_uint8(frame), size)


@pytest.mark.parametrize("width,height,size", [
    (1601, 1067, None),          # fit model's own size for a 1.7 MP photo
    (1223, 2039, None),          # portrait, odd sides
    (3001, 1999, None),          # ~6 MP: a factor of 2 across, 1.5 down
    (1500, 997, (1499, 500)),    # Pillow 13 runs the pass down first here: its one call is made
    (1000, 1700, None),          # portrait: across first in every Pillow
    (997, 1500, (500, 1500)),    # across only
    (2400, 1600, (800, 1600)),   # exactly a third across: Pillow's reduce stays out (factor 1)
])
def test_strips_give_pillows_one_call_bytes(width, height, size):
    frame = photo(width, height)
    size = size or sent_size((width, height), VAE_AREA, "fit model")
    if (width, height) != (1500, 997):
        assert resample._two_passes((width, height), size)  # the strips are what is tested
    out = resample.frame_pixels(frame, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    assert np.array_equal(out, reference(frame, size))


def test_grey_and_uint8_and_own_size():
    grey = photo(1603, 1201, channels=1)
    size = sent_size((1603, 1201), VAE_AREA, "fit model")
    assert np.array_equal(resample.frame_pixels(grey, size), reference(grey, size))
    assert np.array_equal(resample.frame_pixels(grey[:, :, 0], size), reference(grey, size))  # [H, W] too
    pixels = to_uint8(photo(1400, 1000))
    assert np.array_equal(resample.frame_pixels(pixels, (700, 500)), resample.downscale(pixels, (700, 500)))
    frame = photo(640, 480)
    assert np.array_equal(resample.frame_pixels(frame, (640, 480)), to_uint8(frame))


def test_alpha_and_large_reductions_take_pillows_one_call():
    rgba = photo(1300, 900, channels=4)
    assert np.array_equal(resample.frame_pixels(rgba, (650, 450)), reference(rgba, (650, 450)))
    big = photo(2600, 1800)  # over 6x across and down: Pillow reduces by 2 first, the strips cannot
    assert not resample._two_passes((2600, 1800), (400, 277))
    assert np.array_equal(resample.frame_pixels(big, (400, 277)), reference(big, (400, 277)))


def test_prepared_identity_is_unchanged():
    """prepare's digest of a resized input is the digest of Pillow's one-call pixels."""
    frame = photo(2000, 1500, seed=4)
    image = prepare(frame, VAE_AREA, "fit model")
    expected = reference(frame, image.size)
    assert np.array_equal(image.pixels, expected)
    assert image.digest == prepare(expected, VAE_AREA, "off").digest


def test_many_callers_at_once_get_their_own_frames():
    frames = [photo(1500, 1000, seed=seed) for seed in (1, 2, 3, 4)]
    size = (750, 500)
    results: dict[int, np.ndarray] = {}

    def one(index: int) -> None:
        results[index] = resample.frame_pixels(frames[index], size)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(frames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, frame in enumerate(frames):
        assert np.array_equal(results[index], reference(frame, size))


def test_a_failing_strip_is_raised(monkeypatch):
    calls = []

    def broken(array):
        calls.append(array.shape[0])
        if len(calls) == 3:
            raise MemoryError("strip 3")
        return np.zeros(array.shape, dtype=np.uint8)

    monkeypatch.setattr(resample, "to_uint8", broken)
    with pytest.raises(MemoryError, match="strip 3"):
        resample.frame_pixels(photo(1500, 1000), (750, 500))
