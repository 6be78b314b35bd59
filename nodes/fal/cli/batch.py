"""``fal-qwen-edit --manifest FILE`` and ``--each DIR``: the batch runner (nodes/fal/runner/) from a terminal.

    fal-qwen-edit --manifest edits.jsonl --concurrency 8 --out edited/
    fal-qwen-edit --each photos/ --prompt "put the product on a white background" --ref logo.png --out white/

The command's other options (--model, --seed, --steps …) are every line's defaults; a line's own
fields win. Exit codes: 0 every item done; 1 some failed, were skipped as failed, or were not
started (cap); 2 nothing was submitted (a bad line, the cap or a gateway's balance, a busy folder); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Callable

from ..base.errors import FalError
from ..edit.connection import persistent_client
from ..models.endpoints import spec_for
from ..models.qwen import QwenEditRequest
from ..queue.client import WaitSettings
from ..runner.batch import run_batch
from ..runner.manifest import ManifestError, folder_lines, read_manifest
from ..runner.plan import BatchOverBalanceError, BatchOverCapError
from ..runner.results import FolderBusyError
from ..runner.scheduler import RunSettings
from ..runner.sources import URL_PREFIXES
from ..wire.config import FalConfig, budget_cap, input_defaults, state_dir
from ..wire.guards import resolve_guards

MAX_CONCURRENCY = 40  # fal's largest account concurrency; above the account's own, fal queues the rest


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("batch (one command, many edits; resumable)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--manifest", type=Path, metavar="FILE",
                       help="one edit per line: JSON Lines ({\"images\": [...], \"prompt\": ..., \"name\": ..., "
                            "any fal field}) or .csv with the same columns (images separated by ';'); paths "
                            "relative to it")
    where.add_argument("--each", type=Path, metavar="DIR",
                       help="one edit per image file in DIR, with --prompt and any --ref images")
    group.add_argument("--ref", action="append", default=[], metavar="IMAGE",
                       help="with --each: a reference image (file or URL) sent after each folder image; repeatable")
    group.add_argument("--concurrency", type=int, default=4, metavar="N",
                       help=f"jobs on fal at once (default 4, at most {MAX_CONCURRENCY}); the next items are "
                            "prepared and uploaded while they run")
    group.add_argument("--retry-failed", action="store_true",
                       help="also run again the items an earlier run of this batch recorded as failed")


def wants_batch(args: argparse.Namespace) -> bool:
    return bool(args.manifest or args.each)


def usage_problem(args: argparse.Namespace) -> str | None:
    if args.images:
        return "with --manifest or --each, the inputs come from the manifest or the folder, not the command line"
    if args.result_of:
        return "--result-of fetches one request; it does not combine with --manifest or --each"
    if args.each and not args.prompt:
        return "--each needs --prompt (what should change in every image?)"
    if args.ref and not args.each:
        return "--ref goes with --each (in a manifest, list the references in each line's images)"
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        return f"--concurrency takes 1-{MAX_CONCURRENCY}"
    return None


def edit_options(args: argparse.Namespace, environ: dict[str, str]) -> dict:
    """Options of the single edit that also reach every batch edit: fal's queue guards
    (``--start-timeout``, ``--priority``, else their FAL_… / config.ini defaults), as a single edit gets them."""
    start_timeout, priority = resolve_guards(args.start_timeout, args.priority, environ, "--start-timeout")
    return {"start_timeout": start_timeout, "priority": priority}


def run_batch_command(args: argparse.Namespace, base: QwenEditRequest, environ: dict[str, str],
                      make_config: Callable[[], FalConfig], cancel: threading.Event) -> int:
    problem = usage_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        config = make_config()
        default_resize, default_format = input_defaults(environ)
        spec = spec_for(args.model, args.endpoint)
        if args.manifest:
            lines, what = read_manifest(args.manifest), str(args.manifest)
        else:
            references = [ref if ref.startswith(URL_PREFIXES) else str(Path(ref).resolve()) for ref in args.ref]
            lines, what = folder_lines(args.each, references), str(args.each)
        options = edit_options(args, environ)
    except (FalError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = RunSettings(concurrency=args.concurrency, input_resize=args.input_resize or default_resize,
                           upload_format=args.upload_format or default_format, timeout=args.timeout,
                           fresh=args.fresh, edit_options=options)
    cap = args.budget_usd if args.budget_usd is not None else budget_cap(environ)
    try:
        # Each job in flight holds a status stream while as many items behind it upload: keep that many.
        with persistent_client(config, state_dir(environ), budget_usd=cap, pool_size=max(32, 2 * args.concurrency + 8),
                               wait_settings=WaitSettings(use_sse=not args.no_stream)) as client:
            summary = run_batch(client, lines, base, spec, args.out, settings, should_cancel=cancel.is_set,
                                retry_failed=args.retry_failed, what=what)
    except (ManifestError, BatchOverCapError, BatchOverBalanceError, FolderBusyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nQuit at once: the jobs in flight were left running on fal and stay in the journal; run the "
              "same command again to fetch them without new jobs.", file=sys.stderr)
        return 130
    except FalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.text(), file=sys.stderr)
    print(json.dumps(summary.to_json(), indent=2))
    if summary.stopped == "cancelled":
        return 130
    return 0 if summary.complete else 1
