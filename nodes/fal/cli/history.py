"""``fal-qwen-edit --history``: the jobs this machine made (and, with ``--from-fal``, fal's own list of
the key's requests to the Qwen edit endpoints, the last 24 h), newest first; ``--json`` for scripts.
A job only in fal's history is marked so: ``--result-of REQUEST_ID`` fetches it for free."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..base.errors import FalError
from ..edit.connection import shared_history
from ..panel.jobs import JobsPanel
from ..wire.config import FalConfig, state_dir


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", action="store_true",
                   help="list the jobs this machine made: request id, status, model, cost, prompt (no new job)")
    p.add_argument("--from-fal", action="store_true",
                   help="with --history: also fal's own request history for your key (fal direct only)")
    p.add_argument("--json", action="store_true", help="with --history: print JSON")
    p.add_argument("--limit", type=int, default=50, help="with --history: at most this many jobs (default 50)")


def _line(job: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job["submitted_at"])) if job.get("submitted_at") else "?"
    cost = (f"${job['cost_usd_billed']:.3f} billed" if job.get("cost_usd_billed") is not None else
            f"~${job['cost_usd_estimate']:.3f} est." if job.get("cost_usd_estimate") is not None else "-")
    where = "" if job["known_locally"] else "  (only in fal's history)"
    prompt = (job.get("prompt") or "").replace("\n", " ")[:60]
    return f"{job['request_id']}  {when}  {job['status']:<9} {job.get('model') or job.get('endpoint') or '':<20} " \
           f"{cost:<14} {prompt}{where}"


def print_history(args: argparse.Namespace, config: FalConfig, environ: dict) -> int:
    from ..edit.connection import persistent_client
    client = persistent_client(config, state_dir(environ))
    panel = JobsPanel(shared_history(state_dir(environ)), clients=lambda connection: client)
    try:
        page = panel.list(args.limit, None, "all" if args.from_fal else "local")
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
