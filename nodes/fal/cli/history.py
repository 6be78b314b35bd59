"""``fal-qwen-edit --history``: the jobs this machine made (and, with ``--from-fal``, fal's own list of
the key's requests to the Qwen edit endpoints, the last 24 h), newest first; ``--json`` for scripts.
A job only in fal's history is marked so: ``--result-of REQUEST_ID`` fetches it for free."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

from ..base.errors import FalError
from ..edit.connection import shared_history
from ..panel.jobs import JobsPanel
from ..wire.config import FalConfig, state_dir


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", action="store_true",
                   help="list the jobs this machine made: request id, status, model, cost, prompt (no new job)")
    p.add_argument("--from-fal", action="store_true",
                   help="with --history: also fal's own request history for your key (fal direct only)")
    p.add_argument("--json", action="store_true",
                   help="print JSON (an edit's info, request id, files and cost; --history's jobs) instead of text")
    p.add_argument("--limit", type=int, default=50, help="with --history: at most this many jobs (default 50)")


def _line(job: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job["submitted_at"])) if job.get("submitted_at") else "?"
    cost = (f"${job['cost_usd_billed']:.3f} billed" if job.get("cost_usd_billed") is not None else
            f"~${job['cost_usd_estimate']:.3f} est." if job.get("cost_usd_estimate") is not None else "-")
    where = "" if job["known_locally"] else "  (only in fal's history)"
    prompt = (job.get("prompt") or "").replace("\n", " ")[:60]
    return f"{job['request_id']}  {when}  {job['status']:<9} {job.get('model') or job.get('endpoint') or '':<20} " \
           f"{cost:<14} {prompt}{where}"


def print_history(args: argparse.Namespace, make_config: Callable[[], FalConfig], environ: dict) -> int:
    """This machine's jobs need no key (a first run without one lists them, or says there are none);
    only fal's own history (``--from-fal``) asks fal, with the key."""
    from ..edit.connection import persistent_client
    clients: list = []

    def client(connection=None):
        if not clients:
            clients.append(persistent_client(make_config(), state_dir(environ)))
        return clients[0]

    panel = JobsPanel(shared_history(state_dir(environ)), clients=client)
    source = "all" if args.from_fal else "local"
    if args.from_fal:
        try:
            client()
        except FalError as exc:
            print(f"note: fal's own history needs a working key ({exc}); listing this machine's jobs only",
                  file=sys.stderr)
            source = "local"
    try:
        page = panel.list(args.limit, None, source)
    except FalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(page, indent=1))
        return 0
    for job in page["jobs"]:
        print(_line(job))
    if not page["jobs"]:
        print("no jobs yet", file=sys.stderr)
    if args.from_fal and not page["fal_history"]["available"]:
        print(f"note: {page['fal_history']['reason']}", file=sys.stderr)
    return 0
