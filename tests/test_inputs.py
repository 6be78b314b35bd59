"""Real photos over a real uplink: inputs go at the size the model reads (the output size kept), `off`
sends every pixel, the identity follows the setting, uploads expire, and the fake's uplink is a real
throttle. The fake applies fal's documented output-size rule (size_rule="pipeline")."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fakefal.photos import synthetic_photo
from comfyui_fal_qwen_edit.nodes.fal.media import inputs
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import MODEL_NAMES, spec_for
from comfyui_fal_qwen_edit.nodes.fal.base.errors import ConfigError
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import estimate_run, prepare
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.models.sizing import VAE_AREA, calculate_dimensions, derived_output_size

from conftest import FAST_RETRY, KEY, config_for


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 [1, H, W, 3], photo-like (nodes/fakefal/photos.py says how it is made)."""
    return synthetic_photo(width, height, seed)[None]


@pytest.fixture
def fal():
    server = FakeFal(key=KEY, size_rule="pipeline", max_lifetime=120).start()
    yield server
    server.stop()
    assert server.errors == []


def uploaded_images(server: FakeFal) -> list[np.ndarray]:
    """The inputs as the fake received them (decoded)."""
    found = []
    for name, (data, content_type) in list(server.storage.files.items()):
        if not server.storage.is_output(name):
            found.append(np.asarray(Image.open(io.BytesIO(data))))
    return found


def edit(client, image, seed=1, **options):
    return client.edit(QwenEditRequest(prompt="p", seed=seed), [image], timeout=30, **options)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fit_model_keeps_the_aspect_and_the_output_size(name, fal, tmp_path):
    spec = spec_for(name)
    # 3:2 and larger, by more than the margin, than what the model reads: 2400 x 1600 (3.8 MP) for the open
    # models (1 MP read); 3600 x 2400 (8.6 MP) for the Qwen-Image-2 family (the pack fits those to 2048²), in
    # JPEG there, so that `off` also meets the family's 10 MB an image.
    big = photo(2400, 1600) if spec.reads_area == VAE_AREA else np.tile(photo(1200, 800), (1, 3, 3, 1))
    height, width = big.shape[1:3]
    upload_format = "png" if spec.image_megabytes is None else "jpeg_95"
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        off = edit(client, big, model=name, input_resize="off", upload_format=upload_format)
        fitted = edit(client, big, model=name, input_resize="fit model", upload_format=upload_format)
    assert off.images.shape == fitted.images.shape  # the user's output does not change
    sent_off, sent_fit = uploaded_images(fal)
    assert sent_off.shape[:2] == (height, width)
    fit = calculate_dimensions(spec.reads_area, 1.5)  # 3:2 kept
    assert sent_fit.shape[:2][::-1] == fit == ((1248, 832) if spec.reads_area == VAE_AREA else (2496, 1664))
    jobs = list(fal.jobs.values())
    if spec.size_when_omitted == "input":  # fal derives the size: the pack asked for what fal would derive
        derived = derived_output_size([(width, height)], budget=spec.output_pixels)
        assert "image_size" not in jobs[0].arguments
        assert jobs[1].arguments["image_size"] == {"width": derived[0], "height": derived[1]}
        assert fitted.images.shape[1:3] == (derived[1], derived[0])
        if spec.output_pixels:  # the family: the last input's size, scaled into its 2048² budget
            assert derived == (2508, 1672)
    else:
        assert "image_size" not in jobs[1].arguments  # qwen-edit-plus: square_hd whatever the input


def test_off_sends_the_exact_pixels(fal, tmp_path):
    big = photo(1500, 1000, seed=3)
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        edit(client, big, input_resize="off")
    [sent] = uploaded_images(fal)
    assert np.array_equal(sent, big[0])


def test_the_identity_follows_the_setting(fal, tmp_path):
    big = photo(1800, 1200, seed=4)
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        assert edit(client, big).source == "job"
        assert edit(client, big).source == "cache"
        assert edit(client, big, input_resize="off").source == "job"  # turning it off is a new edit
        assert edit(client, big).source == "cache"  # and back on finds the cache
        small = photo(640, 480, seed=5)  # nothing to resize, yet the setting still names the edit
        assert edit(client, small).source == "job" and edit(client, small, input_resize="off").source == "job"
    assert fal.submissions == 4


def test_a_24_mp_input_no_longer_sends_24_mp(fal, tmp_path):
    huge = np.tile(photo(600, 400, seed=6), (1, 10, 10, 1))  # 6000 x 4000, made in a blink
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        outcome = edit(client, huge, model="qwen-edit-2511")
    [sent] = uploaded_images(fal)
    assert sent.shape[0] * sent.shape[1] <= VAE_AREA * 1.02 and sent.shape[:2] == (832, 1248)
    assert outcome.images.shape[1:3] == (832, 1248)  # what 2511 derives from the 24 MP original
    assert fal.uploads[0][1] < 4_000_000  # bytes on the wire: ~1 MP of PNG, not ~40 MB


def test_inputs_near_the_size_read_are_sent_untouched():
    for size in [(1024, 1024), (1200, 1000), (640, 480)]:
        image = prepare(photo(*size)[0], VAE_AREA)
        assert not image.resized and image.size == size
    assert prepare(photo(1400, 1000)[0], VAE_AREA).size == calculate_dimensions(VAE_AREA, 1.4)
    assert prepare(photo(3000, 2000)[0], None).size == (3000, 2000)  # an unknown endpoint: all pixels


@pytest.mark.parametrize("upload_format, content_type, exact", [("png", "image/png", True),
                                                                ("webp_lossless", "image/webp", True),
                                                                ("jpeg_95", "image/jpeg", False)])
def test_upload_formats(upload_format, content_type, exact, fal, tmp_path):
    image = photo(300, 200, seed=7)
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        edit(client, image, upload_format=upload_format)
    [upload] = [r for r in fal.requests if r.path == "/cdn/files/upload"]
    assert upload.header("Content-Type") == content_type
    [sent] = uploaded_images(fal)
    difference = np.abs(sent.astype(int) - image[0].astype(int))
    assert (difference.max() == 0) if exact else (difference.mean() < 3)


def test_uploads_expire_as_fal_client_asks(fal, tmp_path):
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        edit(client, photo(64, 48))
        assert client.uploader.reuse_seconds == 6 * 3600  # a quarter of a day, at most 6 h
    [upload] = [r for r in fal.requests if r.path == "/cdn/files/upload"]
    lifecycle = json.loads(upload.header("X-Fal-Object-Lifecycle"))
    assert lifecycle == {"expiration_duration_seconds": 86400}
    assert upload.header("X-Fal-Object-Lifecycle-Preference") == upload.header("X-Fal-Object-Lifecycle")
    for expiry, header, reuse in (("1h", '{"expiration_duration_seconds": 3600}', 900), ("never", None, 6 * 3600)):
        fal.forget()
        config = config_for(fal, FAL_UPLOAD_EXPIRY=expiry)
        with persistent_client(config, tmp_path / expiry, retry=FAST_RETRY) as client:
            edit(client, photo(64, 48, seed=8))
            assert client.uploader.reuse_seconds == reuse  # an expired URL is never handed out again
        [upload] = [r for r in fal.requests if r.path == "/cdn/files/upload"]
        assert upload.header("X-Fal-Object-Lifecycle") == header


def test_the_first_upload_leaves_while_later_inputs_still_encode(fal, tmp_path, monkeypatch):
    images = [photo(200, 150, seed=s) for s in range(3)]
    encode = inputs.encode
    started_upload = threading.Event()

    def encode_last_after_the_first_upload(image, upload_format="png"):
        if np.array_equal(image.pixels, images[2][0]):  # the last input waits for the first one's upload
            deadline = time.monotonic() + 10
            while not fal.uploads and time.monotonic() < deadline:
                time.sleep(0.01)
            started_upload.set()
        return encode(image, upload_format)

    monkeypatch.setattr("comfyui_fal_qwen_edit.nodes.fal.edit.ahead.encode", encode_last_after_the_first_upload)
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        client.edit(QwenEditRequest(prompt="p", seed=1), images, timeout=30)
    assert started_upload.is_set() and len(fal.uploads) == 3
    first_upload = min(r.t for r in fal.requests if r.path == "/cdn/files/upload")
    assert first_upload < max(r.t for r in fal.requests if r.path == "/cdn/files/upload")


def test_an_input_too_big_for_one_upload_says_what_to_do(fal, tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", 10_000)
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        with pytest.raises(ConfigError, match="input_resize to 'fit model'.*jpeg_95"):
            edit(client, photo(400, 300), input_resize="off")
    assert fal.submissions == 0


def test_the_estimate_shown_first_is_the_one_the_edit_carries(fal, tmp_path):
    big = photo(3000, 2000, seed=9)
    for name in ("qwen-edit-plus", "qwen-edit-2511"):
        request = QwenEditRequest(prompt="p", seed=11)
        shown = estimate_run(spec_for(name), request, [(3000, 2000)])
        with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
            assert client.edit(request, [big], model=name).estimate == shown


def test_the_fake_uplink_is_a_real_throttle():
    """What the bench measures is real backpressure: 2 MB at 40 Mbit/s cannot arrive before 0.4 s."""
    import requests
    with FakeFal(key=KEY, uplink_mbps=40, max_lifetime=30).start() as server:
        started = time.monotonic()
        requests.post(f"{server.url}/storage/upload/initiate", data=b"x" * 2_000_000, timeout=30)
        took = time.monotonic() - started
    assert took >= 2_000_000 * 8 / 40e6 * 0.9


@pytest.mark.parametrize("how", ["upload bytes", "submit JSON"])
def test_a_body_longer_on_the_wire_than_the_connect_timeout_still_goes(how):
    """Python bounds a whole sendall by the socket timeout (the 10 s connect timeout while sending):
    a big body on a thin uplink must go out in pieces. Here 8 MB at 32 Mbit/s takes 2 s (socket
    buffers hold a few MB of it), the connect timeout is 0.3 s."""
    from comfyui_fal_qwen_edit.nodes.fal.wire.transport import Transport
    with FakeFal(key=KEY, uplink_mbps=32, max_lifetime=30).start() as server:
        transport = Transport(config_for(server), timeout=(0.3, 10.0))
        try:
            if how == "upload bytes":
                resp = transport.request("POST", f"{server.url}/storage/upload/initiate", what="upload",
                                         data=b"x" * 8_000_000, ok=(200, 422))
            else:
                resp = transport.request("POST", f"{server.url}/fal-ai/qwen-image-edit-plus", what="submit",
                                         submit=True, json={"prompt": "p", "image_urls": ["data:," + "x" * 8_000_000]})
            assert resp.status_code in (200, 422)
        finally:
            transport.close()
        [received] = [r for r in server.requests if r.method == "POST"]
        assert len(received.body) >= 8_000_000


def test_the_fake_link_keeps_its_rate_when_its_reader_is_late(monkeypatch):
    """The bench's wire time is bytes x 8 / rate, so the fake's link must deliver that rate: the time a
    reader's sleep overshoots counts toward the next piece, and tokens taken for bytes the socket did
    not hold yet come back (fakefal/throttle.py). A clock of our own: every sleep overshoots by 0.3 ms."""
    from comfyui_fal_qwen_edit.nodes.fakefal import throttle

    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds + 0.0003

    clock = Clock()
    monkeypatch.setattr(throttle, "time", clock)
    link = throttle.TokenBucket(20)  # 2.5 MB/s: a piece takes 6.55 ms
    began = clock.now
    for _ in range(300):
        link.take(throttle.PIECE)
    nominal = 300 * throttle.PIECE / link.rate
    assert clock.now - began <= nominal + 0.001  # not 300 x 0.3 ms = 90 ms late
    link.take(throttle.PIECE)
    link.give_back(throttle.PIECE // 2)  # half of it was not in the socket: it did not pass
    waited = clock.now
    link.take(throttle.PIECE // 2)
    assert clock.now == waited
