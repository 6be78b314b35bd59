"""A submit's JSON written in pieces (nodes/fal/base/json_text.py): the body is json.dumps's, byte for
byte, read a block at a time; the lost-submit fingerprint is the per-field digest it always was (so
journal entries written before match, and fal's stored input matches it); and an edit with megabytes
of inline inputs goes out that way and is found again in fal's history when its answer is lost."""

from __future__ import annotations

import hashlib
import json
import random
import threading

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.base.json_text import DataUri, Body, pieces
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from comfyui_fal_qwen_edit.nodes.fal.media.storage import data_uri
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.edit import submits
from comfyui_fal_qwen_edit.nodes.fal.platform.fingerprints import ListDigest, fingerprint, matches
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal
from comfyui_fal_qwen_edit.nodes.fal.wire import sending, transport

from conftest import FAST_RETRY, config_for, to_u8

RNG = np.random.default_rng(5)
BLOBS = [RNG.bytes(n) for n in (1, 2, 3, 300_001, 2_100_000)]


def body_like_a_submit() -> dict:
    uris = [DataUri.of(blob, "image/png") for blob in BLOBS]
    return {"prompt": "un café \"noir\" \\ ✓ \u2028 \x00 emoji 🐱", "image_urls": [*uris, "https://cdn/x.png?a=\"b\""],
            "image_size": {"width": 1024.0, "height": 768}, "num_images": 2, "seed": 0, "guidance_scale": 4.5,
            "enable_safety_checker": False, "negative_prompt": "", "loras": [{"path": "a", "scale": 1.0}],
            "nested": {"z": [uris[0], {"b": uris[1], "a": None}], "a": []}}


def old_digest(value) -> str:
    """The fingerprint's per-field digest as submit_search wrote it before the pieces (2026-12)."""
    def canonical(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: canonical(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [canonical(x) for x in v]
        return v
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def test_a_data_uri_is_what_it_was_and_only_made_from_a_content_type():
    assert data_uri(b"\x89PNG", "image/png") == "data:image/png;base64,iVBORw=="
    assert isinstance(data_uri(b"x", "image/webp"), DataUri)
    with pytest.raises(ValueError):
        DataUri.of(b"x", 'image/png";x')


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("sort_keys", [True, False])
def test_the_pieces_join_to_json_dumps_text(ensure_ascii, sort_keys):
    value = body_like_a_submit()
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys)
    parts = list(pieces(value, ensure_ascii=ensure_ascii, sort_keys=sort_keys))
    assert "".join(parts) == expected
    assert any(part is uri for part in parts for uri in value["image_urls"][3:5])  # not copied


@pytest.mark.parametrize("block", [1, 7, 16384, 1 << 20, -1])
def test_the_streamed_body_is_json_dumps_bytes(block):
    value = body_like_a_submit()
    expected = json.dumps(value, separators=(",", ":")).encode()
    body = Body(value)
    assert len(body) == len(expected) and body.value() == expected
    if block == 1:
        value["image_urls"] = value["image_urls"][:3]  # a byte at a time: a small body
        expected, body = json.dumps(value, separators=(",", ":")).encode(), Body(value)
    read, chunk = [], body.read(block)
    while chunk:
        assert block < 0 or len(chunk) <= block
        read.append(chunk)
        chunk = body.read(block)
    assert b"".join(read) == expected


def test_the_fingerprint_is_the_per_field_digest_it_always_was():
    value = body_like_a_submit()
    prints = fingerprint(value)
    assert prints == {name: old_digest(field) for name, field in value.items()}
    plain = json.loads(json.dumps(value))  # what fal's history gives back: plain strings
    assert fingerprint(plain) == prints and matches(prints, plain)
    assert not matches(prints, {**plain, "image_urls": plain["image_urls"][:-1]})


@pytest.mark.parametrize("seed", range(6))
def test_a_list_digested_item_by_item_in_any_order_from_many_threads_is_the_fields_digest(seed):
    items = [*(DataUri.of(blob, "image/png") for blob in BLOBS), "https://cdn/x.png?a=\"b\"", "données ✓"]
    order = random.Random(seed).sample(range(len(items)), len(items))
    digest = ListDigest(len(items))
    start = threading.Barrier(len(items))

    def give(index: int) -> None:
        start.wait()
        digest.add(index, items[index])

    threads = [threading.Thread(target=give, args=(i,)) for i in order[:-1]]
    for thread in threads:
        thread.start()
    assert digest.value() is None  # the last item is not in yet
    start.wait()  # (the last thread's turn is this one's)
    digest.add(order[-1], items[order[-1]])
    for thread in threads:
        thread.join()
    assert digest.value() == fingerprint({"image_urls": items})["image_urls"] == old_digest(items)
    assert ListDigest(0).value() == old_digest([])


def test_an_edits_inputs_are_fingerprinted_as_they_are_made_to_the_same_digest(fake_fal, monkeypatch, tmp_path):
    """Three tensors after an image the request names itself: the submit's image_urls digest comes from the
    inputs' own threads (no pass over the body before the submit), and equals the whole field's."""
    given = str(data_uri(encode_png(to_u8(RNG.random((64, 64, 3), dtype=np.float32))), "image/png"))
    seen, entries = [], []
    real_fingerprint, real_record = submits.fingerprint, Journal.record_submitting
    monkeypatch.setattr(submits, "fingerprint", lambda arguments, known=None: seen.append(dict(known or {}))
                        or real_fingerprint(arguments, known))
    monkeypatch.setattr(Journal, "record_submitting", lambda self, key, endpoint, prints=None, *a, **k:
                        entries.append(prints) or real_record(self, key, endpoint, prints, *a, **k))
    fake_fal.add_fault(Fault("submit", "reset_after"))  # the entry stays; fal's history is searched with it
    pictures = [torch.from_numpy(RNG.random((200 + 10 * i, 300, 3), dtype=np.float32))[None] for i in range(3)]
    with persistent_client(config_for(fake_fal, FAL_UPLOAD="data_uri"), tmp_path, retry=FAST_RETRY) as client:
        outcome = client.edit(QwenEditRequest(prompt="p", seed=3, image_urls=[given]), pictures, timeout=30)
    assert fake_fal.submissions == 1 and outcome.handle.request_id == next(iter(fake_fal.jobs))
    [submit] = [r for r in fake_fal.requests if r.method == "POST" and r.path.endswith("qwen-image-edit-plus")]
    sent = json.loads(submit.body)
    assert len(sent["image_urls"]) == 4 and sent["image_urls"][0] == given
    assert list(seen[0]) == ["image_urls"]  # digested ahead, not at the submit
    assert entries == [fingerprint(sent)] and matches(entries[0], sent)
    assert [r for r in fake_fal.requests if r.path == "/v1/models/requests/by-endpoint"]


def test_a_large_json_body_goes_out_streamed_with_its_length(fake_fal, monkeypatch, tmp_path):
    sent, blocks = [], []
    real, real_send = transport._in_pieces, sending._Tracked.send
    monkeypatch.setattr(transport, "_in_pieces", lambda kwargs: sent.append(real(kwargs)) or sent[-1])
    monkeypatch.setattr(sending._Tracked, "send", lambda self, data: blocks.append(len(data)) or real_send(self, data))
    picture = torch.from_numpy(RNG.random((700, 600, 3), dtype=np.float32))[None]  # ~1.3 MB as PNG
    with persistent_client(config_for(fake_fal, FAL_UPLOAD="data_uri"), tmp_path, retry=FAST_RETRY) as client:
        outcome = client.edit(QwenEditRequest(prompt="p", seed=1), [picture], timeout=30)
    [submit] = [r for r in fake_fal.requests if r.method == "POST" and r.path.endswith("qwen-image-edit-plus")]
    assert int(submit.headers["Content-Length"]) == len(submit.body) > transport.PIECES_FROM
    assert "Transfer-Encoding" not in submit.headers
    arguments = fake_fal.jobs[outcome.handle.request_id].arguments
    assert submit.body == json.dumps(arguments, separators=(",", ":")).encode()
    assert any(isinstance(kw.get("data"), Body) for kw in sent)
    assert max(blocks) == sending.SEND_BLOCK  # a block at a time, each far larger than urllib3's 16 KB
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(picture[0].numpy()))


def test_an_inline_edit_whose_answer_was_lost_is_found_in_fals_history(fake_fal, tmp_path):
    fake_fal.add_fault(Fault("submit", "reset_after"))  # fal takes the job, the answer never arrives
    picture = torch.from_numpy(RNG.random((300, 400, 3), dtype=np.float32))[None]
    with persistent_client(config_for(fake_fal, FAL_UPLOAD="data_uri"), tmp_path, retry=FAST_RETRY) as client:
        outcome = client.edit(QwenEditRequest(prompt="make it night", seed=7), [picture], timeout=30)
    assert fake_fal.submissions == 1 and outcome.handle.request_id == next(iter(fake_fal.jobs))
    assert [r for r in fake_fal.requests if r.path == "/v1/models/requests/by-endpoint"]  # looked up, found
    assert Journal(tmp_path / "journal").entries() == []
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(picture[0].numpy()))
