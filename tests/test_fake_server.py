"""The fake fal server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import gc
import http.client as httpclient
import importlib.util
import io
import json
import os
import shutil
import time

import numpy as np
import pytest
import requests
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal

from fake_http import BEARER, EP, KEY, RGB, answer, data_uri, pixels, read_events, result, submit

# (status, queue_position, number of logs) with queue_time=run_time=0.2, 3 positions, 2 log lines
TIMELINE = [("IN_QUEUE", 2, 0), ("IN_QUEUE", 1, 0), ("IN_QUEUE", 0, 0),
            ("IN_PROGRESS", None, 1), ("IN_PROGRESS", None, 2), ("COMPLETED", None, 2)]


def test_round_trip_with_exact_pixels(make, http):
    srv = make()
    r = submit(http, srv)
    assert r.status_code == 200 and r.headers["x-fal-request-id"] == r.json()["request_id"]
    sub = r.json()
    assert sub["status"] == "IN_QUEUE" and sub["logs"] is None and sub["queue_position"] == 0
    assert sub["status_url"] == f"{srv.url}/{EP}/requests/{sub['request_id']}/status"
    st = http.get(sub["status_url"], params={"logs": 1}, headers=KEY).json()
    assert st["status"] == "COMPLETED" and [x["message"] for x in st["logs"]] == list(srv.logs)
    assert st["metrics"] == {"inference_time": 0.0} and "error" not in st
    assert http.get(sub["status_url"], headers=KEY).json()["logs"] is None
    with http.get(sub["status_url"] + "/stream", headers=KEY, stream=True) as s:
        assert s.headers["Content-Type"] == "text/event-stream" and "Content-Length" not in s.headers
        assert [e["status"] for _, e in read_events(s)] == ["COMPLETED"]
    res = http.get(sub["response_url"], headers=KEY).json()
    assert res["prompt"] == "invert it" and res["has_nsfw_concepts"] == [False]
    image = res["images"][0]
    assert (image["width"], image["height"], image["content_type"]) == (7, 5, "image/png")
    got = http.get(image["url"])
    assert got.headers["Content-Type"] == "image/png" and len(got.content) == image["file_size"]
    assert np.array_equal(pixels(got.content), 255 - RGB)
    job = srv.jobs[sub["request_id"]]
    assert (srv.submissions, job.result_fetches, job.status_calls, job.endpoint) == (1, 1, 2, EP)
    assert srv.requests[0].method == "POST" and srv.requests[0].header("authorization") == "Key test-key"


def test_outputs_are_served_from_their_own_origin(make, http):
    """Like fal.media next to queue.fal.run: another origin, so a client's host check can tell."""
    srv = make()
    assert srv.cdn_url.startswith("http://127.0.0.1:") and srv.cdn_url != srv.url
    sub = submit(http, srv).json()
    url = http.get(sub["response_url"], headers=KEY).json()["images"][0]["url"]
    name = url.rsplit("/", 1)[1]
    assert url == f"{srv.cdn_url}/files/{name}" and http.get(url).status_code == 200
    # Only files live on the CDN; outputs are not on the queue host either.
    assert http.get(f"{srv.url}/files/{name}").status_code == 404
    assert http.get(sub["status_url"].replace(srv.url, srv.cdn_url), headers=KEY).status_code == 404
    assert http.post(f"{srv.cdn_url}/{EP}", json={}, headers=KEY).status_code == 404
    assert [(r.origin, r.path) for r in srv.requests[-4:]] == [
        (srv.cdn_url, f"/files/{name}"), (srv.url, f"/files/{name}"),
        (srv.cdn_url, sub["status_url"][len(srv.url):]), (srv.cdn_url, f"/{EP}")]
    assert len(srv.jobs) == 1
    again = result(http, srv, image_urls=[url])  # an earlier output is a valid input (chained edits)
    assert np.array_equal(pixels(http.get(again["images"][0]["url"]).content), RGB)


def test_auth_styles(make, http):
    srv = make()
    for headers in (BEARER, {}, {"Authorization": "Key wrong-key"}):
        assert answer(submit(http, srv, headers=headers)) == (401, {"detail": "Invalid authorization"})
    assert http.post(f"{srv.url}/storage/auth/token", headers=BEARER).status_code == 401
    gw = make(mode="gateway")
    assert submit(http, gw).status_code == 401
    sub = submit(http, gw, headers=BEARER).json()
    path = f"/{EP}/requests/{sub['request_id']}"
    for name, suffix in (("response_url", ""), ("status_url", "/status"), ("cancel_url", "/cancel")):
        assert sub[name] == "https://queue.fal.run" + path + suffix
    assert http.get(gw.url + path + "/status", headers=KEY).status_code == 401
    assert http.get(gw.url + path + "/status", headers=BEARER).json()["status"] == "COMPLETED"
    res = http.get(gw.url + path, headers=BEARER).json()
    assert http.get(res["images"][0]["url"]).status_code == 200  # CDN needs no auth
    assert http.get(f"{gw.url}/fal-ai/other-app/requests/{sub['request_id']}", headers=BEARER).status_code == 404
    assert http.get(gw.url + f"/{EP}/requests/unknown/status", headers=BEARER).status_code == 404


# Every field of fal-ai/qwen-image-edit-plus (FAL_PROTOCOL.md section 7): values fal refuses, and
# edge values it takes. Bad types are refused even where pydantic's lax mode would coerce them.
@pytest.mark.parametrize("how", ["poll", "sse", "sse_chunked"])
def test_timeline_and_completion_latency(make, http, how):
    srv = make(queue_time=0.2, run_time=0.2, queue_positions=3)
    srv.sse_chunked = how == "sse_chunked"
    # A full collection in the suite's process (torch loaded) pauses every thread for 50-100 ms,
    # longer than one step of this timeline: collect now, and not again until it is measured.
    gc.collect()
    gc.disable()
    try:
        sub = submit(http, srv).json()
        assert sub["queue_position"] == 2
        if how == "poll":
            events = []
            while not events or events[-1][1]["status"] != "COMPLETED":
                st = http.get(sub["status_url"] + "?logs=1", headers=KEY).json()
                events.append((time.monotonic(), st))
        else:
            with http.get(sub["status_url"] + "/stream?logs=1", headers=KEY, stream=True) as s:
                assert s.headers["Cache-Control"] == "no-cache" and s.headers["Connection"] == "close"
                events = read_events(s)
    finally:
        gc.enable()
    states = [(e["status"], e.get("queue_position"), len(e["logs"])) for _, e in events]
    if how == "poll":  # many polls per state; a stream must not repeat itself
        states = [x for i, x in enumerate(states) if not i or x != states[i - 1]]
    assert states == TIMELINE
    job = srv.jobs[sub["request_id"]]
    assert job.completed_at == pytest.approx(job.submitted_at + 0.4)
    if how == "poll":
        # Exact, whatever the machine's load: every poll the server received at or after
        # completed_at (srv.requests times, same clock) answered COMPLETED, so it flipped on time.
        received = [r.t for r in srv.requests if r.path.endswith("/status")]
        assert len(received) == len(events)
        assert all(e["status"] == "COMPLETED" for t, (_, e) in zip(received, events) if t >= job.completed_at)
    # A stream is pushed the instant things change, not on a polling tick.
    assert -0.001 <= events[-1][0] - job.completed_at < (0.5 if how == "poll" else 0.05)
    last = events[-1][1]
    assert last["metrics"] == {"inference_time": 0.2} and last["logs"][0]["source"] == "user"


def test_sse_keepalive_and_disabled(make, http):
    srv = make(run_time=0.3, logs=(), keepalive_interval=0.05)
    sub = submit(http, srv).json()
    with http.get(sub["status_url"] + "/stream", headers=KEY, stream=True) as s:
        events = [e for _, e in read_events(s)]
    assert events[0]["status"] == "IN_PROGRESS" and events[-1]["status"] == "COMPLETED"
    assert events.count("ping") >= 3
    srv.sse = False
    assert answer(http.get(sub["status_url"] + "/stream", headers=KEY)) == (404, {"detail": "Not Found"})


def test_cancel(make, http):
    srv = make(queue_time=5.0)
    sub = submit(http, srv).json()
    assert answer(http.get(sub["response_url"], headers=KEY)) == (400, {"detail": "Request is still in progress"})
    with http.get(sub["status_url"] + "/stream", headers=KEY, stream=True) as s:
        assert read_events(s, limit=1)[0][1]["status"] == "IN_QUEUE"
        assert answer(http.put(sub["cancel_url"], headers=KEY)) == (202, {"status": "CANCELLATION_REQUESTED"})
        last = read_events(s)[-1][1]  # the open stream ends with the cancellation
    assert (last["status"], last["error_type"]) == ("COMPLETED", "request_cancelled")
    st = http.get(sub["status_url"], headers=KEY).json()
    assert st["error"] == "Request was cancelled" and st["error_type"] == "request_cancelled"
    assert answer(http.get(sub["response_url"], headers=KEY)) == (400, {"detail": "Request was cancelled"})
    assert answer(http.put(sub["cancel_url"], headers=KEY)) == (400, {"status": "ALREADY_COMPLETED"})
    job = srv.jobs[sub["request_id"]]
    assert job.cancelled and [rid for rid, _ in srv.cancel_requests] == [sub["request_id"]] * 2
    srv.queue_time = 0.0
    done = submit(http, srv).json()
    assert http.put(done["cancel_url"], headers=KEY).status_code == 400
    assert not srv.jobs[done["request_id"]].cancelled


def test_cancel_while_running_unauthorized_and_unknown(make, http):
    srv = make(run_time=5.0)
    sub = submit(http, srv).json()
    assert http.get(sub["status_url"], headers=KEY).json()["status"] == "IN_PROGRESS"
    assert answer(http.get(sub["response_url"], headers=KEY)) == (400, {"detail": "Request is still in progress"})
    assert http.put(sub["cancel_url"], headers=BEARER).status_code == 401  # a wrong key cancels nothing
    assert not srv.jobs[sub["request_id"]].cancelled
    assert answer(http.put(sub["cancel_url"], headers=KEY)) == (202, {"status": "CANCELLATION_REQUESTED"})
    st = http.get(sub["status_url"], headers=KEY).json()
    assert (st["status"], st["error_type"]) == ("COMPLETED", "request_cancelled")
    unknown = sub["cancel_url"].replace(sub["request_id"], "no-such-request")
    assert http.put(unknown, headers=KEY).status_code == 404
    assert http.get(unknown[: -len("/cancel")], headers=KEY).status_code == 404


def test_storage_routes_and_uploaded_input(make, http):
    srv = make()
    tok = http.post(f"{srv.url}/storage/auth/token?storage_type=fal-cdn-v3", headers=KEY).json()
    assert tok["token_type"] == "Bearer" and tok["base_url"] == srv.url + "/cdn" and tok["expires_at"]
    png = base64.b64decode(data_uri(RGB).split(",", 1)[1])
    up = {"Content-Type": "image/png", "X-Fal-File-Name": "in.png"}
    r = http.post(tok["base_url"] + "/files/upload", data=png,
                  headers={**up, "Authorization": f"Bearer {tok['token']}"})
    url = r.json()["access_url"]
    assert url.startswith(srv.url + "/files/") and url.endswith(".png")
    assert http.post(tok["base_url"] + "/files/upload", data=png, headers={**up, **BEARER}).status_code == 401
    got = http.get(url)
    assert got.content == png and got.headers["Content-Type"] == "image/png"
    init = http.post(f"{srv.url}/storage/upload/initiate?storage_type=gcs", headers=KEY,
                     json={"file_name": "b.jpg", "content_type": "image/jpeg"}).json()
    assert http.get(init["file_url"]).status_code == 404
    assert http.put(init["upload_url"], data=b"jpegbytes", headers={"Content-Type": "image/jpeg"}).status_code == 200
    assert http.get(init["file_url"]).content == b"jpegbytes" and init["file_url"].endswith(".jpg")
    assert srv.uploads == [("upload", len(png)), ("put_upload", 9)]
    res = result(http, srv, image_urls=[url])
    assert np.array_equal(pixels(http.get(res["images"][0]["url"]).content), 255 - RGB)
    srv.storage_v3 = False
    assert http.post(f"{srv.url}/storage/auth/token?storage_type=fal-cdn-v3", headers=KEY).status_code == 404


def test_failed_jobs_and_nsfw(make, http):
    srv = make()
    sub = submit(http, srv, image_urls=["https://example.com/x.png"]).json()
    st = http.get(sub["status_url"], headers=KEY).json()
    assert st["error"] == "Failed to download image: https://example.com/x.png" and st["error_type"] == "job_failed"
    assert answer(http.get(sub["response_url"], headers=KEY)) == (500, {
        "detail": "Failed to download image: https://example.com/x.png", "error_type": "job_failed"})
    srv.fail_job = "GPU on fire"
    failed = submit(http, srv).json()
    assert answer(http.get(failed["response_url"], headers=KEY)) == (500, {"detail": "GPU on fire", "error_type": "job_failed"})
    srv.fail_job, srv.nsfw = None, True
    res = result(http, srv, num_images=2)
    assert res["has_nsfw_concepts"] == [True, True]
    assert not pixels(http.get(res["images"][1]["url"]).content).any()


def test_output_variants(make, http):
    srv = make()
    rgba = np.random.default_rng(2).integers(0, 256, (6, 4, 4), dtype=np.uint8)
    res = result(http, srv, image_urls=[data_uri(RGB), data_uri(rgba)], num_images=3,
                 image_size={"width": 4, "height": 6}, output_format="webp", seed=7,
                 endpoint="fal-ai/qwen-image-edit-2511")  # webp: 2511 has it, 2509 not
    assert res["seed"] == 7 and [i["content_type"] for i in res["images"]] == ["image/webp"] * 3
    imgs = [pixels(http.get(i["url"]).content) for i in res["images"]]
    assert [i.shape for i in imgs] == [(6, 4, 3), (6, 4, 4), (6, 4, 3)]
    assert np.array_equal(imgs[1][..., 3], rgba[..., 3]) and np.array_equal(imgs[1][..., :3], 255 - rgba[..., :3])
    image = result(http, srv, image_size="square", output_format="jpeg", sync_mode=True)["images"][0]
    assert image["url"].startswith("data:image/jpeg;base64,") and (image["width"], image["height"]) == (512, 512)
    assert Image.open(io.BytesIO(base64.b64decode(image["url"].split(",")[1]))).size == (512, 512)


@pytest.mark.skipif(importlib.util.find_spec("cryptography") is None and shutil.which("openssl") is None,
                    reason="needs cryptography or an openssl binary")
def test_tls_mode(make, http):
    srv = make(tls=True)
    assert srv.url.startswith("https://127.0.0.1:") and os.path.exists(srv.cert_path)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.url + "/files/x", timeout=5)  # not trusted without the cert
    v = srv.cert_path  # per request: a session's verify loses to REQUESTS_CA_BUNDLE
    sub = http.post(f"{srv.url}/{EP}", json={"prompt": "p", "image_urls": [data_uri(RGB)]},
                    headers=KEY, verify=v).json()
    res = http.get(sub["response_url"], headers=KEY, verify=v).json()
    got = http.get(res["images"][0]["url"], verify=v).content
    assert np.array_equal(pixels(got), 255 - RGB)
    srv.stop()
    assert not os.path.exists(srv.cert_path)


def test_keep_alive_then_max_lifetime_self_stop():
    srv = FakeFal(max_lifetime=0.3).start()
    try:
        conn, socks = httpclient.HTTPConnection(srv.url.split("//")[1], timeout=5), set()
        for path in ("/files/nope", "/nothing/here", "/files/nope"):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 404 and json.loads(resp.read())["detail"]
            socks.add(conn.sock)
        assert len(socks) == 1 and None not in socks  # one connection, kept open throughout
        assert srv.wait_stopped(timeout=3.0) and srv.stopped  # nobody called stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.url + "/files/x", timeout=5)
        with pytest.raises((ConnectionError, httpclient.HTTPException)):
            conn.request("GET", "/files/nope")  # stop() also closed the idle keep-alive socket
            conn.getresponse()
    finally:
        srv.stop()
        srv.stop()  # idempotent
