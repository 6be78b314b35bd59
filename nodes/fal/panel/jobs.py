"""The jobs as the fal panel (and any script) reads them: list, one job, cancel, fetch, spend, a gateway's balance.

The routes (nodes/routes/panel.py) are thin over this. Nothing here submits a job: Fetch reads a finished
job's result by its request id (no cost), Cancel sends fal's cancel. A request id is checked to be a
UUID before it reaches a URL or a path; an endpoint id, against fal's id pattern; the host is always
the connection's own. No answer carries a key: a job's connection is its kind and host.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

from ..base.errors import FalError
from ..edit.connection import ConnectionSettings, client_for, shared_history
from ..edit.pipeline import FalEditClient
from ..models.endpoints import ANGLES, ENDPOINTS
from ..platform.client import PlatformClient, unreachable_reason
from ..queue.client import check_endpoint
from ..state.history import JobHistory, is_request_id
from ..state.result_cache import ResultCache, kept_key

PREFIX = "/fal_qwen_edit"
Clients = Callable[[dict | None], FalEditClient]


class BadRequest(FalError):
    """What a route was sent cannot be used; the message says what to send."""


class NotFound(FalError):
    """No such job here (and, for fal's history, none known to fal through this connection)."""


class Conflict(FalError):
    """The job is in a state that does not allow this (e.g. fetching one that still runs)."""


def checked_id(request_id: str) -> str:
    if not is_request_id(request_id):
        raise BadRequest("A request id is a UUID like 9c08e7d8-312c-402d-a691-c207a9cb8121.")
    return request_id.lower()


def client_of(connection: dict | None) -> FalEditClient:
    """The client for the connection a job was made through (None: the default one)."""
    if not connection or connection.get("kind") in (None, "fal") and not connection.get("key_env"):
        return client_for(None)
    return client_for(ConnectionSettings(mode=connection.get("kind") or "auto",
                                         base_url=connection.get("base_url") or "",
                                         key_env=connection.get("key_env") or ""))


class JobsPanel:
    def __init__(self, history: JobHistory | None = None, clients: Clients = client_of):
        self.history = history or shared_history()
        self.clients = clients

    # -- views -------------------------------------------------------------------------------
    def view(self, job: dict, known_locally: bool = True, default: tuple | None | bool = False) -> dict[str, Any]:
        """``default``: the machine's default connection when the caller knows it (a page of jobs)."""
        rid = job["request_id"]
        count = int(job.get("thumbnails") or 0)
        thumbs = [f"{PREFIX}/jobs/{rid}/thumbnails/{i}.webp" for i in range(count)
                  if self.history.thumbnail_path(rid, i) is not None]
        billed, estimate = job.get("cost_usd_billed"), job.get("cost_usd_estimate")
        connection = job.get("connection") or {}
        default = self.default_connection() if default is False else default
        return {"request_id": rid, "status": job.get("status", "unknown"), "endpoint": job.get("endpoint"),
                "model": job.get("model"), "prompt": job.get("prompt"), "submitted_at": job.get("submitted_at"),
                "finished_at": job.get("finished_at"), "cost_usd_estimate": estimate, "cost_usd_billed": billed,
                "cost_source": "billed" if billed is not None else "estimate" if estimate is not None else None,
                "price_source": job.get("price_source"), "thumbnails": thumbs, "known_locally": known_locally,
                "num_outputs": job.get("num_outputs"), "error": job.get("error"),
                "connection": {"kind": connection.get("kind"), "host": connection.get("host")}
                if connection else None,
                # whether a Result by Request ID node reaches the job with this machine's settings alone
                "default_connection": None if default is None or not connection else
                not connection.get("key_env") and (connection.get("kind"), connection.get("host")) == default}

    def _stored(self, request_id: str, job: dict) -> list[tuple[ResultCache, str]]:
        """Where the result cache of the job's connection may hold its outputs (none without a cache)."""
        cache = self.clients(job.get("connection")).cache
        if cache is None:
            return []
        return [(cache, key) for key in (job.get("cache_key"), kept_key(request_id)) if key]

    def outputs(self, request_id: str) -> list[bytes] | None:
        """The job's full output images as stored on this machine, or None."""
        for cache, key in self._stored(request_id, self.history.get(checked_id(request_id)) or {}):
            found = cache.get(key)
            if found is not None:
                return found.blobs
        return None

    def _stored_count(self, request_id: str, job: dict) -> int | None:
        """How many outputs the result cache holds for the job, without reading the images; None: none."""
        for cache, key in self._stored(request_id, job):
            count = cache.count(key)
            if count is not None:
                return count
        return None

    def job(self, request_id: str) -> dict[str, Any]:
        job = self.history.get(checked_id(request_id))
        if job is None:
            raise NotFound(f"No job {request_id} in this machine's history; list source=fal to find it in fal's.")
        count = self._stored_count(request_id, job) or 0
        return {**self.view(job), "outputs": [f"{PREFIX}/jobs/{request_id}/outputs/{i}.png" for i in range(count)]}

    def default_connection(self) -> tuple[str | None, str | None] | None:
        """(kind, host) of the connection this machine's settings give, or None when they give none yet."""
        try:
            connection = self.clients(None).records.connection or {}
        except FalError:
            return None
        return connection.get("kind"), connection.get("host")

    # -- the list ----------------------------------------------------------------------------
    def fal_history(self) -> tuple[PlatformClient | None, str | None]:
        try:
            client = self.clients(None)
        except FalError as exc:  # no key or gateway set up yet
            return None, f"fal's request history needs a fal key: {exc}"
        reason = unreachable_reason(client.config)
        return (None, reason) if reason else (client.platform, None)

    def list(self, limit: int = 30, cursor: str | None = None, source: str = "local") -> dict[str, Any]:
        if source not in ("local", "fal", "all"):
            raise BadRequest("source is local, fal or all.")
        limit = max(1, min(100, int(limit)))
        at = _read_cursor(cursor)
        # whether fal's own history can be listed here at all (the panel offers it only then); no request
        platform, reason = self.fal_history()
        default = self.default_connection()
        jobs: list[dict[str, Any]] = []
        next_at: dict[str, str | None] = {}
        fal_state: dict[str, Any] = {"available": platform is not None, "reason": reason}
        if source in ("local", "all") and at.get("local", "") is not None:
            local, next_at["local"] = self.history.page(limit, at.get("local") or None)
            jobs += [self.view(job, default=default) for job in local]
        if source in ("fal", "all") and at.get("fal", "") is not None:
            found: list[dict] = []
            try:
                if platform is not None:
                    endpoints = [spec.endpoint for spec in (*ENDPOINTS, ANGLES)]  # every node's models
                    found, next_at["fal"] = platform.requests(endpoints, limit=limit, cursor=at.get("fal") or None)
            except FalError as exc:  # fal's side is down: this machine's jobs still list
                fal_state = {"available": False, "reason": f"fal's request history could not be read: {exc}"}
            if found:
                known = {job["request_id"] for job in jobs}
                by_id = {job["request_id"]: job for job in self.history.jobs()}  # one read for the page
                for item in found:
                    if item["request_id"] not in known:
                        mine = by_id.get(item["request_id"])
                        jobs.append(self.view(mine, default=default) if mine else
                                    self.view(item, known_locally=False, default=default))
        jobs.sort(key=lambda j: j.get("submitted_at") or 0, reverse=True)
        more = {k: v for k, v in next_at.items() if v}
        nxt = None if not more else _write_cursor({"local": more.get("local"), "fal": more.get("fal")})
        return {"jobs": jobs, "next_cursor": nxt, "fal_history": fal_state}

    # -- actions -----------------------------------------------------------------------------
    def cancel(self, request_id: str) -> dict[str, Any]:
        job = self.history.get(checked_id(request_id))
        if job is None:
            raise NotFound(f"No job {request_id} in this machine's history: only jobs made here can be cancelled.")
        if job.get("status") != "running":
            raise Conflict(f"Job {request_id} is {job.get('status')}, not running: nothing to cancel.")
        client = self.clients(job.get("connection"))
        answer = client.queue.cancel(client.queue.handle_for(job["endpoint"], request_id))
        status, message = {
            "CANCELLATION_REQUESTED": ("cancelled", "fal took the cancel: a queued job is removed unbilled; "
                                       "one already running may still finish and be billed."),
            "ALREADY_COMPLETED": ("done", "fal had already finished this job (it is paid for): use Fetch "
                                  "outputs to get its result, free."),
            "NOT_FOUND": ("unknown", "fal knows no such job through this connection."),
        }.get(answer, ("running", "This server has no cancel: the job may run to its end; its result stays "
                                  "fetchable by request id."))
        self.history.record(request_id, status=status, error=None if status == "done" else message)
        updated = self.history.get(request_id)
        if updated is None:  # pruned from the history this very moment
            raise NotFound(f"No job {request_id} in this machine's history any more.")
        return {"job": self.view(updated), "answer": answer, "message": message}

    def fetch(self, request_id: str, endpoint: str | None = None) -> dict[str, Any]:
        job = self.history.get(checked_id(request_id)) or {}
        if job.get("status") == "running":
            raise Conflict(f"Job {request_id} is still running; Fetch works once it is done.")
        endpoint = check_endpoint(job.get("endpoint") or endpoint or ENDPOINTS[0].endpoint)
        client = self.clients(job.get("connection"))
        client.result_by_id(request_id, endpoint=endpoint, keep=True, timeout=60.0)  # no job, no cost
        return {**self.job(request_id), "message": "Fetched from fal by request id: no new job, no cost."}

    def balance(self) -> dict[str, Any]:
        """The default connection's gateway balance (platform/balance.py: asked at most once a minute);
        for fal direct and the proxy only the mode, and the panel shows no balance line."""
        client = self.clients(None)
        found = client.balance.current()
        return {"mode": client.config.mode, **(found.to_json() if found is not None else {})}

    def spend(self) -> dict[str, Any]:
        budget = self.clients(None).budget
        spent, cap = budget.spent(), budget.cap_usd
        return {"spent_24h_usd": spent, "daily_cap_usd": cap,
                "remaining_usd": None if cap is None else round(max(cap - spent, 0.0), 4)}


def _read_cursor(cursor: str | None) -> dict:
    if not cursor:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("cursor takes the next_cursor of an earlier answer.") from None
    if not isinstance(value, dict) or any(v is not None and not isinstance(v, str) for v in value.values()):
        raise BadRequest("cursor takes the next_cursor of an earlier answer.")
    return value


def _write_cursor(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
