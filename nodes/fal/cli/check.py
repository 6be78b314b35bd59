"""``fal-qwen-edit --check``: is this connection usable? Answered without submitting anything.

* which mode and hosts are in use, and where the key comes from (never the key);
* whether the key (or token) is accepted: a GET of the status and of the result
  of a made-up request id. 401/403 means refused; a 404 for the made-up request
  means the server got past the key and looked for the request. Which host
  answered is said: fal's backup host when ``queue.fal.run`` could not be reached;
* through a gateway, its balance, where it answers a balance call (platform/balance.py);
* whether storage uploads work, where the mode uploads: a 1×1 PNG (67 bytes).

Nothing here costs anything: no job is submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from ..wire.config import FalConfig
from ..base.errors import AuthError, FalError, HTTPStatusError, TransportError
from ..media.images import encode_png
from ..queue.client import QueueClient
from ..media.storage import Uploader
from ..platform.balance import GatewayBalance
from ..wire.transport import RetryPolicy, Transport
from ..queue.way_memory import WayMemory

MADE_UP_REQUEST = "00000000-0000-4000-8000-000000000000"
QUICK = RetryPolicy(attempts=2, base_delay=0.2, max_delay=0.5)  # a check should answer in seconds


@dataclass
class Check:
    name: str
    ok: bool | None  # None: information, not a pass or fail
    text: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "    "}[self.ok]
        return f"{mark} {self.name}: {self.text}"


def describe(config: FalConfig) -> str:
    key = config.key_source or "none"
    inputs = "fal storage uploads" if config.uses_storage else "inline data URIs"
    if config.mode == "proxy":
        return (f"proxy {config.proxy_url} (fal's server proxy) for {config.queue_base} and {config.rest_base}; "
                f"token: {key}; inputs: {inputs}")
    if config.mode == "gateway":
        return f"gateway {config.queue_base} with a Bearer token from {key}; inputs: {inputs}"
    backup = f" (backup {config.queue_backup_base})" if config.queue_backup_base else ""
    store = "" if config.store_io else "; keep_on_fal off (X-Fal-Store-IO: 0)"
    return (f"fal direct: queue {config.queue_base}{backup}, storage {config.rest_base}, key from {key}; "
            f"inputs: {inputs}{store}")


def check_key(queue: QueueClient, endpoint: str) -> Check:
    handle = queue.handle_for(endpoint, MADE_UP_REQUEST)
    host = urlsplit(queue.config.proxy_url or queue.config.queue_base).netloc
    answers, answered = [], set()
    for name, url in (("status", handle.status_url), ("result", handle.response_url)):
        try:
            resp = queue.transport.request("GET", url, what=f"{name} of a made-up request",
                                           ok=(200, 201, 202, 400, 404, 405, 422, 501))
            answers.append(f"{name} HTTP {resp.status_code}")
            answered.add(urlsplit(resp.url).netloc)
            resp.close()
        except AuthError as exc:
            if exc.verdict:  # a gateway's answer in its own words, with what to do about it
                return Check("key", False, str(exc))
            return Check("key", False, f"{host} refused it with HTTP {exc.status}: check the key "
                                       f"({queue.config.key_source or 'none sent'}) and the mode")
        except TransportError as exc:
            backup = urlsplit(queue.config.queue_backup_base).netloc
            return Check("reach", False, f"cannot reach {host}{f' nor its backup {backup}' if backup else ''}: {exc}")
        except HTTPStatusError as exc:
            return Check("key", False, f"{host} answered HTTP {exc.status} for {name}: {exc}")
    told = ", ".join(answers)
    if answered and host not in answered:  # the transport went to fal's backup host
        host = f"{', '.join(sorted(answered))}, the backup host ({host} could not be reached)"
    if any(answer.endswith(("404", "400", "422")) for answer in answers):
        return Check("key", True, f"accepted by {host} (a made-up request id gets {told}: "
                                  "the server looked for the request)")
    return Check("key", True, f"not refused by {host} ({told})")


def check_balance(balance: GatewayBalance) -> Check | None:
    """A gateway's credit left, where it answers a balance call (None for fal direct and the proxy).
    A known empty balance fails the check: every edit would be refused."""
    found = balance.current()
    if found is None:
        return None
    if not found.known:
        return Check("balance", None, found.text())
    return Check("balance", found.unlimited or found.usd > 0, found.text() + ("" if found.unlimited or found.usd > 0
                 else ": top it up in the gateway's console"))


def check_storage(uploader: Uploader) -> Check:
    config = uploader.config
    if not config.uses_storage:
        return Check("storage", True, "not used: inputs travel inline as data URIs")
    try:
        url = uploader.url_for(encode_png(np.zeros((1, 1, 3), dtype=np.float32)), "image/png")
    except AuthError as exc:
        return Check("storage", False, f"the upload was refused (HTTP {exc.status}): {exc}")
    except HTTPStatusError as exc:
        if exc.status in (400, 404, 405, 501):
            return Check("storage", False, f"not offered here (HTTP {exc.status}); use upload = data_uri "
                                           "(FAL_UPLOAD=data_uri, or the Connection node's upload)")
        return Check("storage", False, str(exc))
    except FalError as exc:
        return Check("storage", False, str(exc))
    return Check("storage", True, f"a 1×1 PNG uploaded to {urlsplit(url).netloc}")


def run_checks(config: FalConfig, endpoint: str, ways: WayMemory | None = None,
               verify: bool | str = True) -> list[Check]:
    transport = Transport(config, retry=QUICK, timeout=(5.0, 15.0), verify=verify)
    try:
        queue = QueueClient(config, transport, ways=ways)
        checks = [Check("connection", None, describe(config))]
        remembered = queue.ways.first_way(queue.way_key(endpoint))
        if remembered:
            checks.append(Check("waiting", None, f"by {remembered} (learned from an earlier job)"))
        checks.append(check_key(queue, endpoint))
        balance = check_balance(GatewayBalance(config, transport))
        if balance is not None:
            checks.append(balance)
        checks.append(check_storage(Uploader(transport)))
        return checks
    finally:
        transport.close()

