"""Codecs: real tensors to real PNG bytes and back, pixel by pixel."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.base.errors import ImageDecodeError
from comfyui_fal_qwen_edit.nodes.fal.media.images import (decode_image, encode_png, split_batch, stack_batch,
                                                    to_uint8)


def random_image(h, w, c, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((h, w, c), dtype=np.float32))


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (64, 48, 4), (33, 17, 1), (600, 900, 3)])
def test_png_round_trip_is_exact(shape):
    tensor = random_image(*shape)
    data = encode_png(tensor)
    with Image.open(io.BytesIO(data)) as im:
        im.verify()  # Pillow checks every chunk CRC
    back = np.asarray(Image.open(io.BytesIO(data)))
    expected = to_uint8(tensor.numpy())
    assert back.reshape(expected.shape).tolist() == expected.tolist()


def test_large_image_uses_split_deflate_and_stays_valid():
    tensor = random_image(1100, 1000, 3, seed=3)  # > 1 MiB raw: deflated on two threads
    data = encode_png(tensor)
    decoded = decode_image(data)
    assert np.array_equal(to_uint8(decoded), to_uint8(tensor.numpy()))


def test_alpha_survives_and_becomes_mask():
    tensor = random_image(20, 30, 4)
    tensor[:, :, 3] = 1.0
    tensor[5:10, 5:10, 3] = 0.0
    decoded = decode_image(encode_png(tensor))
    assert decoded.shape == (20, 30, 4)
    images, mask = stack_batch([decoded])
    assert images.shape == (1, 20, 30, 3) and mask.shape == (1, 20, 30)
    assert mask[0, 5:10, 5:10].min() == 1.0 and mask[0, 0, 0] == 0.0


def test_float_to_uint8_rounds_and_clips():
    values = np.array([[[-0.5, 0.0, 0.5 / 255], [0.998, 1.0, 7.0]]], dtype=np.float32)
    assert to_uint8(values).tolist() == [[[0, 0, 1], [254, 255, 255]]]


def test_float_to_uint8_a_few_rows_at_a_time_is_the_whole_array_formula():
    """to_uint8 converts through a small buffer: every shape, dtype and layout gives what one pass over
    the whole array gives (x * 255 + 0.5, clipped, truncated)."""
    rng = np.random.default_rng(3)
    for shape in [(7,), (5, 3), (1, 1, 3), (3000, 40, 3), (2, 700, 500, 4), (0, 5, 3), (1, 90000, 3)]:
        values = (rng.random(shape) * 1.4 - 0.2).astype(np.float32)
        for array in (values, values.astype(np.float64), values[..., ::-1], torch.from_numpy(values)):
            expected = np.clip(np.asarray(array, dtype=np.float32) * np.float32(255.0) + np.float32(0.5),
                               0.0, 255.0).astype(np.uint8)
            assert np.array_equal(to_uint8(array), expected) and to_uint8(array).shape == shape


def test_batch_split_accepts_tensor_batches():
    batch = torch.zeros((3, 4, 5, 3))
    frames = split_batch(batch)
    assert len(frames) == 3 and frames[0].shape == (4, 5, 3)
    with pytest.raises(ImageDecodeError, match="shape"):
        split_batch(torch.zeros((4, 5)))


def test_different_sizes_pad_resize_or_error():
    a = np.full((4, 6, 3), 0.2, np.float32)
    b = np.full((2, 2, 3), 0.8, np.float32)
    images, mask = stack_batch([a, b], "pad")
    assert images.shape == (2, 4, 6, 3)
    assert np.allclose(images[1, 1:3, 2:4], 0.8) and images[1, 0, 0].tolist() == [0, 0, 0]
    assert mask[1, 0, 0] == 1.0 and mask[1, 1, 2] == 0.0 and mask[0].max() == 0.0
    images, _ = stack_batch([a, b], "resize")
    assert images.shape == (2, 4, 6, 3) and abs(float(images[1].mean()) - 0.8) < 0.01
    with pytest.raises(ImageDecodeError, match="different sizes"):
        stack_batch([a, b], "error")


def test_decoded_bytes_stack_exactly_like_decoded_floats():
    """The pipeline stacks uint8 pixels straight into the batch; the result must be the
    IMAGE and MASK that the float path gives, padding and alpha included."""
    from comfyui_fal_qwen_edit.nodes.fal.media.images import decode_pixels
    big = random_image(12, 10, 4, seed=5)
    big[:, :, 3] = torch.linspace(0.0, 1.0, 10)[None, :]
    small = random_image(6, 4, 3, seed=6)
    pngs = [encode_png(big), encode_png(small)]
    as_bytes = [decode_pixels(p) for p in pngs]
    assert [a.dtype for a in as_bytes] == [np.uint8, np.uint8]
    for mode in ("pad", "resize"):
        images_u8, mask_u8 = stack_batch(as_bytes, mode)
        images_f, mask_f = stack_batch([decode_image(p) for p in pngs], mode)
        assert images_u8.dtype == np.float32 and mask_u8.dtype == np.float32
        assert np.allclose(images_u8, images_f, atol=1e-6) and np.allclose(mask_u8, mask_f, atol=1e-6)
    images, mask = stack_batch(as_bytes, "pad")
    assert mask[1, 0, 0] == 1.0 and mask[1, 3, 3] == 0.0  # padding, then the opaque small image
    assert abs(float(mask[0, 0, 0]) - 1.0) < 1e-6 and mask[0, 0, 9] == 0.0  # 1 - alpha
    assert np.array_equal(to_uint8(images[1, 3:9, 3:7]), to_uint8(small.numpy()))


def bomb_png(width=40000, height=40000):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    idat = zlib.compress(b"\x00" * (width // 8 + 1) * 4)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        decode_image(bomb_png(), source="https://cdn/x.png")
    # Between our cap and Pillow's own limit, our cap answers with the claimed size.
    with pytest.raises(ImageDecodeError, match="9000x9000 pixels, above the 64,000,000"):
        decode_image(bomb_png(9000, 9000))


def test_non_image_body_is_explained():
    with pytest.raises(ImageDecodeError, match="not a readable image") as info:
        decode_image(b"<html>Access denied</html>", source="https://cdn/x.png")
    assert "<html>" in str(info.value)


def test_jpeg_and_webp_decode_to_rgb():
    y, x = np.mgrid[0:16, 0:16]
    src = np.stack([x * 15, y * 15, (x + y) * 7], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    for fmt in ("JPEG", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(src).save(buf, format=fmt, quality=95)
        decoded = decode_image(buf.getvalue())
        assert decoded.shape == (16, 16, 3) and decoded.dtype == np.float32
        assert np.abs(to_uint8(decoded).astype(int) - src).mean() < 4
