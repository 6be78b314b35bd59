"""The fake fal server's model of fal's guards, over raw HTTP: a job past its start deadline is
dropped unrun with fal's 504, X-Fal-Store-IO: 0 results expire, cancel names its three answers,
and an unreachable primary host stands beside the live fake."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from fake_http import EP, KEY, answer, read_events, submit


def wait_done(http, status_url, limit=5.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        body = http.get(status_url, headers=KEY).json()
        if body["status"] == "COMPLETED":
            return body
        time.sleep(0.05)
    raise AssertionError("never completed")


def test_a_job_past_its_start_deadline_is_dropped_unrun(make, http):
    srv = make(key="test-key", queue_time=5.0, run_time=0.1)
    sub = submit(http, srv, headers={**KEY, "X-Fal-Request-Timeout": "0.4"}).json()
    job = srv.jobs[sub["request_id"]]
    assert job.start_deadline == 0.4 and job.dropped
    with http.get(sub["status_url"] + "/stream", headers=KEY, stream=True) as stream:
        events = [e for _, e in read_events(stream)]
    assert events[0]["status"] == "IN_QUEUE" and events[-1]["status"] == "COMPLETED"
    assert events[-1]["error_type"] == "startup_timeout"
    r = http.get(sub["response_url"], headers=KEY)
    assert r.status_code == 504 and r.headers["X-Fal-Request-Timeout-Type"] == "user"
    assert r.json()["error_type"] == "startup_timeout" and r.headers["x-fal-request-id"] == sub["request_id"]
    assert srv.submissions == 1 and srv.runs == 0 and job.result is None  # never run, nothing made
    assert answer(http.put(sub["cancel_url"], headers=KEY)) == (400, {"status": "ALREADY_COMPLETED"})


def test_a_job_that_starts_in_time_runs(make, http):
    srv = make(key="test-key", queue_time=0.1, run_time=0.1)
    sub = submit(http, srv, headers={**KEY, "X-Fal-Request-Timeout": "5.0", "X-Fal-Queue-Priority": "low"}).json()
    assert "error" not in wait_done(http, sub["status_url"])
    assert http.get(sub["response_url"], headers=KEY).json()["images"]
    assert srv.runs == 1 and srv.jobs[sub["request_id"]].priority == "low"


@pytest.mark.parametrize("headers, text", [({"X-Fal-Request-Timeout": "soon"}, "Invalid X-Fal-Request-Timeout"),
                                           ({"X-Fal-Request-Timeout": "0.05"}, "more than 0.1"),
                                           ({"X-Fal-Queue-Priority": "urgent"}, "normal or low")])
def test_bad_guard_headers_are_refused_as_fal_does(headers, text, make, http):
    srv = make(key="test-key")
    r = submit(http, srv, headers={**KEY, **headers})
    assert r.status_code == 400 and text in r.json()["detail"] and srv.submissions == 0


def test_store_io_0_results_expire_after_the_short_retention(make, http):
    srv = make(key="test-key")
    srv.store_io_retention = srv.store_io_retention_large = 0.3
    kept = submit(http, srv).json()
    forgotten = submit(http, srv, headers={**KEY, "X-Fal-Store-IO": "0"}).json()
    assert http.get(forgotten["response_url"], headers=KEY).status_code == 200  # fetchable at first
    time.sleep(0.5)
    for url in (forgotten["response_url"], forgotten["status_url"]):
        assert http.get(url, headers=KEY).status_code == 404
    assert answer(http.put(forgotten["cancel_url"], headers=KEY))[1]["status"] == "NOT_FOUND"
    assert http.get(kept["response_url"], headers=KEY).status_code == 200  # 30 days for the rest


def test_cancel_names_its_three_answers(make, http):
    srv = make(key="test-key", queue_time=30.0)
    sub = submit(http, srv).json()
    assert answer(http.put(sub["cancel_url"], headers=KEY)) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert answer(http.put(sub["cancel_url"], headers=KEY)) == (400, {"status": "ALREADY_COMPLETED"})
    code, body = answer(http.put(f"{srv.url}/{EP}/requests/{'0' * 32}/cancel", headers=KEY))
    assert (code, body["status"]) == (404, "NOT_FOUND")
    srv.cancel_offered = False
    assert http.put(sub["cancel_url"], headers=KEY).json() == {"detail": "Not Found"}  # no route: a plain 404


def test_the_unreachable_primary_refuses_every_connection(make):
    srv = make(key="test-key")
    parts = urlsplit(srv.unreachable_url)
    assert parts.port not in (urlsplit(srv.url).port, None) and srv.unreachable_url == srv.unreachable_url
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.unreachable_url + "/x", timeout=2)
