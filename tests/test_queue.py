"""Queue client against the fake fal server: SSE, polling, auth styles, gateway routing, cancel."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (AuthError, CancelledError, FalError, FalTimeoutError,
                                                    HTTPStatusError, JobFailedError, RateLimitError,
                                                    SubmitUncertainError, TransportError, ValidationError)
from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from comfyui_fal_qwen_edit.nodes.fal.media.storage import data_uri
from comfyui_fal_qwen_edit.nodes.fal.wire.transport import RetryPolicy

from conftest import KEY, gradient

ENDPOINT = "fal-ai/qwen-image-edit-plus"


def arguments(**extra):
    return {"prompt": "invert", "image_urls": [data_uri(encode_png(gradient(8, 8)), "image/png")], **extra}


def paths(server, suffix):
    return [r.path for r in server.requests if r.path.endswith(suffix)]


def test_sse_wait_reports_progress_and_returns_result(fake_fal, make_client, key_scan):
    fake_fal.queue_time, fake_fal.queue_positions, fake_fal.run_time = 0.3, 3, 0.3
    fake_fal.logs = ("loading", "step 1", "step 2")
    client = make_client(fake_fal)
    updates = []
    handle = client.queue.submit(ENDPOINT, arguments(seed=11))
    result = client.queue.wait(handle, on_progress=updates.append)
    assert result["seed"] == 11 and len(result["images"]) == 1
    assert fake_fal.submissions == 1
    assert {u.via for u in updates} == {"sse"}
    assert not paths(fake_fal, "/status")  # the stream alone was enough: no polling
    positions = [u.queue_position for u in updates if u.status == "IN_QUEUE"]
    assert positions[0] == 2 and positions[-1] == 0 and positions == sorted(positions, reverse=True)
    logs = [line for u in updates for line in u.new_logs]
    assert logs == ["loading", "step 1", "step 2"]  # each line once, in order
    assert updates[-1].status == "COMPLETED"
    key_scan()


def test_polls_when_stream_is_not_offered(fake_fal, make_client):
    fake_fal.sse = False
    fake_fal.run_time, fake_fal.logs = 0.4, ("a", "b")
    client = make_client(fake_fal)
    updates = []
    handle = client.queue.submit(ENDPOINT, arguments())
    client.queue.wait(handle, on_progress=updates.append)
    assert {u.via for u in updates} == {"poll"}
    assert [line for u in updates for line in u.new_logs] == ["a", "b"]
    # 0.4 s of work with intervals growing from 0.1 s: a handful of polls, not dozens.
    assert 2 <= len(paths(fake_fal, "/status")) <= 6


def test_polling_only_when_stream_disabled(fake_fal, make_client):
    client = make_client(fake_fal, use_sse=False)
    handle = client.queue.submit(ENDPOINT, arguments())
    client.queue.wait(handle)
    assert not paths(fake_fal, "/status/stream") and paths(fake_fal, "/status")


def test_gateway_reroutes_fal_urls_through_base_with_bearer(gateway_fal, make_client, key_scan):
    gateway_fal.run_time = 0.1
    client = make_client(gateway_fal, mode="gateway")
    handle = client.queue.submit(ENDPOINT, arguments())
    assert handle.status_url.startswith(gateway_fal.url + "/fal-ai/qwen-image-edit-plus/requests/")
    assert client.queue.wait(handle)["images"]
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in gateway_fal.requests)
    assert paths(gateway_fal, "/status/stream") and gateway_fal.jobs[handle.request_id].result_fetches == 1
    key_scan()


@pytest.mark.parametrize("server_mode, client_mode", [("fal", "gateway"), ("gateway", "fal")])
def test_wrong_auth_style_is_a_clear_401(server_mode, client_mode, make_client, key_scan):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    with FakeFal(key=KEY, mode=server_mode, max_lifetime=60).start() as server:
        client = make_client(server, mode=client_mode)
        with pytest.raises(AuthError) as info:
            client.queue.submit(ENDPOINT, arguments())
        assert "401" in str(info.value) and "refused the key" in str(info.value)
        assert server.submissions == 0
        key_scan(str(info.value))


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def cancel_after(seconds):
    flag = threading.Event()
    timer = threading.Timer(seconds, flag.set)
    timer.start()
    return flag, timer


@pytest.mark.parametrize("phase, use_sse", [("queued", True), ("running", True), ("queued", False),
                                            ("running", False)])
def test_cancel_reaches_fal_within_a_second(phase, use_sse, fake_fal, make_client):
    fake_fal.queue_time, fake_fal.run_time = (30.0, 0.0) if phase == "queued" else (0.0, 30.0)
    client = make_client(fake_fal, use_sse=use_sse)
    handle = client.queue.submit(ENDPOINT, arguments())
    flag, timer = cancel_after(0.3)
    pressed = time.monotonic() + 0.3
    with pytest.raises(CancelledError) as info:
        client.queue.wait(handle, should_cancel=flag.is_set)
    timer.cancel()
    assert handle.request_id in str(info.value) and "CANCELLATION_REQUESTED" in str(info.value)
    assert info.value.by_user is True and info.value.fal_answer == "CANCELLATION_REQUESTED"
    [(request_id, seen_at)] = fake_fal.cancel_requests
    assert request_id == handle.request_id
    assert seen_at - pressed < 0.5  # checked every 250 ms, plus one PUT
    assert fake_fal.jobs[handle.request_id].cancelled


def test_timeout_names_request_id_and_does_not_cancel(fake_fal, make_client):
    fake_fal.run_time = 10.0
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    started = time.monotonic()
    with pytest.raises(FalTimeoutError) as info:
        client.queue.wait(handle, timeout=0.4)
    assert 0.35 < time.monotonic() - started < 1.0
    assert handle.request_id in str(info.value)
    assert not fake_fal.cancel_requests


@pytest.mark.parametrize("route", ["status", "result", "cancel"])
@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_reads_retry_transient_statuses(route, code, fake_fal, make_client):
    fake_fal.run_time = 0.2 if route == "status" else 0.0
    fake_fal.add_fault(Fault(route, "status", code=code, times=2, headers={"Retry-After": "0"}))
    client = make_client(fake_fal, use_sse=False)
    handle = client.queue.submit(ENDPOINT, arguments())
    if route == "cancel":
        fake_fal.run_time = 5.0
        handle = client.queue.submit(ENDPOINT, arguments())
        assert client.queue.cancel(handle) == "CANCELLATION_REQUESTED"
        assert len(fake_fal.cancel_requests) == 3  # two faults, then the real one
        return
    assert client.queue.wait(handle)["images"]
    assert fake_fal.submissions == 1


def test_submit_429_honours_retry_after_and_submits_once(fake_fal, make_client):
    fake_fal.add_fault(Fault("submit", "status", code=429, times=1, headers={"Retry-After": "0.3"}))
    client = make_client(fake_fal)
    started = time.monotonic()
    handle = client.queue.submit(ENDPOINT, arguments())
    assert time.monotonic() - started >= 0.3
    assert client.queue.wait(handle)["images"] and fake_fal.submissions == 1


def test_status_429_honours_retry_after(fake_fal, make_client):
    fake_fal.run_time = 0.1
    fake_fal.add_fault(Fault("status", "status", code=429, times=1, headers={"Retry-After": "0.3"}))
    client = make_client(fake_fal, use_sse=False)
    handle = client.queue.submit(ENDPOINT, arguments())
    started = time.monotonic()
    assert client.queue.wait(handle)["images"]
    assert time.monotonic() - started >= 0.3


def test_submit_ingress_503_is_retried_once_safe(fake_fal, make_client):
    fake_fal.add_fault(Fault("submit", "status", code=503, times=2))
    client = make_client(fake_fal)
    client.queue.wait(client.queue.submit(ENDPOINT, arguments()))
    assert fake_fal.submissions == 1
    assert len(paths(fake_fal, "/qwen-image-edit-plus")) == 3


@pytest.mark.parametrize("code, headers", [(503, {"x-fal-request-id": "abc123"}), (502, None), (504, None),
                                           (500, None)])
def test_submit_errors_that_may_have_reached_the_app_are_not_retried(code, headers, fake_fal, make_client):
    fake_fal.add_fault(Fault("submit", "status", code=code, headers=headers))
    client = make_client(fake_fal)
    with pytest.raises(HTTPStatusError) as info:
        client.queue.submit(ENDPOINT, arguments())
    assert info.value.status == code
    assert len(paths(fake_fal, "/qwen-image-edit-plus")) == 1


@pytest.mark.parametrize("kind, accepted", [("reset", 0), ("reset_after", 1)])
def test_submit_reset_is_never_resent(kind, accepted, fake_fal, make_client, key_scan):
    fake_fal.add_fault(Fault("submit", kind))
    client = make_client(fake_fal)
    with pytest.raises(SubmitUncertainError) as info:
        client.queue.submit(ENDPOINT, arguments())
    assert "may have been accepted" in str(info.value)
    assert fake_fal.submissions == accepted
    assert len(paths(fake_fal, "/qwen-image-edit-plus")) == 1
    key_scan(str(info.value))


def test_connection_refused_submit_is_retried_until_the_server_is_up(make_client):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    port = free_port()
    server = FakeFal(key=KEY, port=port, max_lifetime=60)
    server.url = f"http://127.0.0.1:{port}"  # the client is built before the server listens
    client = make_client(server, retry=RetryPolicy(attempts=8, base_delay=0.1, max_delay=0.2))
    starter = threading.Timer(0.3, server.start)
    starter.start()
    try:
        handle = client.queue.submit(ENDPOINT, arguments())
        assert client.queue.wait(handle)["images"] and server.submissions == 1
    finally:
        starter.join(5.0)  # so stop() cannot run before start() and leave a server behind
        server.stop()


def test_connection_refused_everywhere_gives_transport_error(make_client):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    server = FakeFal(key=KEY, max_lifetime=60).start()
    server.stop()  # nothing listens on that port any more
    client = make_client(server)
    with pytest.raises(TransportError, match="network error after 5 tries") as info:
        client.queue.submit(ENDPOINT, arguments())
    # the URL it could not reach is named, so a wrong base URL shows at once
    assert f"could not reach {server.url}/{ENDPOINT} (ConnectionError)" in str(info.value)


@pytest.mark.parametrize("kind", ["stall", "drop"])
def test_broken_stream_still_finds_completion(kind, fake_fal, make_client):
    fake_fal.run_time = 0.5
    fake_fal.add_fault(Fault("stream", kind, delay=10.0, times=None))
    client = make_client(fake_fal, stream_idle_check=0.3)
    started = time.monotonic()
    handle = client.queue.submit(ENDPOINT, arguments())
    assert client.queue.wait(handle, timeout=5)["images"]
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("kind", ["flap", "malformed"])
def test_flapping_or_garbled_status_is_survived(kind, fake_fal, make_client):
    fake_fal.run_time = 0.4
    fake_fal.add_fault(Fault("status", kind, times=2))
    client = make_client(fake_fal, use_sse=False)
    assert client.queue.wait(client.queue.submit(ENDPOINT, arguments()))["images"]
    assert fake_fal.submissions == 1


def test_422_names_the_fields(fake_fal, make_client, key_scan):
    client = make_client(fake_fal)
    with pytest.raises(ValidationError) as info:
        client.queue.submit(ENDPOINT, arguments(image_size="gigantic", num_images=9))
    assert set(info.value.fields) == {"image_size", "num_images"}
    assert "image_size" in str(info.value) and fake_fal.submissions == 0
    key_scan(str(info.value))


def test_failed_job_reports_fal_error_and_request_id(fake_fal, make_client):
    fake_fal.fail_job = "CUDA out of memory"
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    with pytest.raises(JobFailedError) as info:
        client.queue.wait(handle)
    assert "CUDA out of memory" in str(info.value) and handle.request_id in str(info.value)


def test_malformed_result_is_reported(fake_fal, make_client):
    fake_fal.add_fault(Fault("result", "malformed", times=None))
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    with pytest.raises(FalError, match="malformed JSON") as info:
        client.queue.wait(handle)
    assert handle.request_id in str(info.value)


def test_resume_by_request_id(fake_fal, make_client):
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments(seed=5))
    again = client.queue.handle_for(ENDPOINT, handle.request_id)
    assert again.response_url == handle.response_url
    assert client.queue.wait(again)["seed"] == 5 and fake_fal.submissions == 1
    with pytest.raises(FalError, match="request id"):
        client.queue.handle_for(ENDPOINT, "../../etc")
    with pytest.raises(FalError, match="Endpoint id"):
        client.queue.submit("not an endpoint", arguments())


def test_job_cancelled_elsewhere_is_not_a_user_cancel(fake_fal, make_client):
    fake_fal.run_time = 30.0
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    remote = threading.Thread(target=lambda: client.queue.cancel(handle))
    remote.start()  # e.g. from fal's dashboard: this client never asked for it
    with pytest.raises(CancelledError) as info:
        client.queue.wait(handle, timeout=10)
    remote.join()
    assert info.value.by_user is False and info.value.fal_answer is None
    assert CancelledError("x").by_user is False


@pytest.mark.parametrize("code", [502, 503, 504])
def test_result_gateway_errors_are_transient_not_job_failures(code, fake_fal, make_client):
    fake_fal.add_fault(Fault("result", "status", code=code, times=None, headers={"Retry-After": "0"}))
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    with pytest.raises(HTTPStatusError) as info:
        client.queue.wait(handle)
    assert not isinstance(info.value, JobFailedError) and info.value.status == code
    assert handle.request_id in str(info.value) and "failed on fal" not in str(info.value)
    assert fake_fal.jobs[handle.request_id].result_fetches == 0  # every answer came from the fault
    assert len(paths(fake_fal, handle.request_id)) >= 5  # the transport retried first


def test_result_500_with_the_jobs_error_is_a_job_failure(fake_fal, make_client):
    fake_fal.add_fault(Fault("result", "status", code=500, body={"detail": "NSFW input rejected"}))
    client = make_client(fake_fal)
    with pytest.raises(JobFailedError, match="NSFW input rejected"):
        client.queue.wait(client.queue.submit(ENDPOINT, arguments()))


def test_server_echoing_the_key_is_redacted_in_detail(fake_fal, make_client, key_scan):
    echo = {"detail": f"no such request; you sent Authorization: Key {KEY}", "raw": [KEY]}
    fake_fal.add_fault(Fault("result", "status", code=404, body=echo))
    client = make_client(fake_fal)
    with pytest.raises(HTTPStatusError) as info:
        client.queue.wait(client.queue.submit(ENDPOINT, arguments()))
    assert info.value.status == 404
    assert KEY not in repr(info.value.detail) and KEY.split(":")[1] not in repr(info.value.detail)
    assert "no such request" in repr(info.value.detail)
    key_scan(str(info.value), repr(info.value.detail))


@pytest.mark.parametrize("route", ["submit", "status"])
def test_403_is_the_typed_auth_error(route, fake_fal, make_client, key_scan):
    fake_fal.add_fault(Fault(route, "status", code=403, body={"detail": "Forbidden"}))
    client = make_client(fake_fal, use_sse=False)
    with pytest.raises(AuthError) as info:
        client.queue.wait(client.queue.submit(ENDPOINT, arguments()))
    assert info.value.status == 403 and "refused the key" in str(info.value)
    assert fake_fal.submissions == (0 if route == "submit" else 1)
    key_scan(str(info.value))


def test_retry_after_as_an_http_date_is_honoured(fake_fal, make_client):
    import email.utils
    fake_fal.run_time = 0.1
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s away
    fault = fake_fal.add_fault(Fault("status", "status", code=429, headers={"Retry-After": when}))
    client = make_client(fake_fal, use_sse=False)
    handle = client.queue.submit(ENDPOINT, arguments())
    started = time.monotonic()
    assert client.queue.wait(handle)["images"]
    assert fault.fired == 1 and 0.9 <= time.monotonic() - started < 3.0


def test_retry_after_above_the_cap_is_reported_not_slept(fake_fal, make_client):
    fault = fake_fal.add_fault(Fault("status", "status", code=429, headers={"Retry-After": "3600"}))
    client = make_client(fake_fal, use_sse=False)
    handle = client.queue.submit(ENDPOINT, arguments())
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        client.queue.wait(handle)
    assert time.monotonic() - started < 1.0 and fault.fired == 1
    assert len(paths(fake_fal, "/status")) == 1 and handle.request_id in str(info.value)


@pytest.mark.parametrize("reply", [dict(code=405, body={"detail": "Method Not Allowed"}),
                                   dict(code=200, body={"status": "IN_PROGRESS"})])
def test_stream_not_offered_falls_back_to_polling(reply, fake_fal, make_client):
    fake_fal.run_time = 0.3
    fake_fal.add_fault(Fault("stream", "status", times=None, **reply))  # 200 here is JSON, not SSE
    client = make_client(fake_fal)
    updates = []
    handle = client.queue.submit(ENDPOINT, arguments())
    assert client.queue.wait(handle, on_progress=updates.append)["images"]
    assert len(paths(fake_fal, "/status/stream")) == 1 and paths(fake_fal, "/status")
    assert {u.via for u in updates} == {"poll"} and updates[-1].status == "COMPLETED"


def test_untrusted_certificate_on_submit_is_never_connected(make_client, key_scan):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    with FakeFal(key=KEY, tls=True, max_lifetime=60).start() as server:
        client = make_client(server)  # verifies against the system CAs, which never signed the fake's cert
        with pytest.raises(TransportError, match=r"network error after 5 tries: could not reach https://127\.0\.0\.1:\d+/\S+ \(SSLError\)") as info:
            client.queue.submit(ENDPOINT, arguments())
        assert not isinstance(info.value, SubmitUncertainError)
        assert server.submissions == 0 and not server.requests
        key_scan(str(info.value))


def test_unreachable_proxy_on_submit_is_never_connected(fake_fal, make_client):
    port = free_port()  # nothing listens there: the proxy refuses every connection
    client = make_client(fake_fal)
    client.transport.session.trust_env = False  # NO_PROXY from the environment must not bypass it
    client.transport.session.proxies = {"http": f"http://127.0.0.1:{port}"}
    with pytest.raises(TransportError, match="ProxyError"):
        client.queue.submit(ENDPOINT, arguments())
    assert fake_fal.submissions == 0

