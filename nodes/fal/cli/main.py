"""``fal-qwen-edit``: the same edit as the ComfyUI node, from a terminal.

    fal-qwen-edit photo.png car.png --prompt "put the woman in front of the car" --out edited/
    fal-qwen-edit --demo --out edited/      # offline: a fake fal server on 127.0.0.1
    fal-qwen-edit --result-of REQUEST_ID --out edited/   # outputs of an earlier job, free
    fal-qwen-edit --check                    # mode, hosts, key and storage: no job, no cost
    fal-qwen-edit --list-models              # the Qwen edit endpoints, their LoRA support and price
    fal-qwen-edit --history [--from-fal]     # the jobs made here (and fal's own list), their cost
    fal-qwen-edit in.png -p "…" --model qwen-edit-2511-lora --lora https://…/x.safetensors:0.8
    fal-qwen-edit --manifest edits.jsonl --concurrency 8 --out edited/   # many edits, resumable (batch.py)

Keys come from the environment or config.ini (see config.py), never from the
command line, so they stay out of shell history and process lists.
Ctrl-C cancels the job on fal (a second Ctrl-C quits at once).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import numpy as np

from .batch import add_batch_arguments, run_batch_command, wants_batch
from . import models_table
from .check import run_checks
from .history import add_history_arguments, print_history
from .places import where_things_live
from ..wire.config import DEFAULT_UPLOAD_EXPIRY, UPLOAD_EXPIRIES, budget_cap, input_defaults, load_config, state_dir
from ..models.endpoints import BY_ENDPOINT, DEFAULT_ENDPOINT, MODEL_NAMES, spec_for
from ..platform.price_book import PriceBook
from ..edit.connection import persistent_client
from ..base.errors import CancelledError, FalError
from ..media.images import decode_image, encode_png
from ..edit.pipeline import DEFAULT_TIMEOUT
from ..media.inputs import UPLOAD_FORMATS, check_modes, estimate_run
from ..models.sizing import RESIZE_MODES
from ..models.qwen import ACCELERATIONS, IMAGE_SIZE_PRESETS, OUTPUT_FORMATS, QwenEditRequest, parse_lora
from ..queue.client import Progress, WaitSettings
from ..queue.way_memory import WayMemory
from ..wire.guards import PRIORITIES, resolve_guards

DEMO_PROMPT = "invert the colours"  # what the fake server's stand-in model actually does


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fal-qwen-edit", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="*", type=Path, help="input image files (1-3 recommended)")
    p.add_argument("--prompt", "-p", help="what to change")
    p.add_argument("--negative-prompt")
    p.add_argument("--image-size", choices=IMAGE_SIZE_PRESETS + ("auto",), default="auto",
                   help="output size preset; 'auto' lets fal derive it from the inputs")
    p.add_argument("--width", type=int, help="custom output width (with --height)")
    p.add_argument("--height", type=int, help="custom output height (with --width)")
    p.add_argument("--steps", type=int, help="num_inference_steps (the model's range: see --list-models)")
    p.add_argument("--guidance", type=float, help="guidance_scale (the model's range: see --list-models)")
    p.add_argument("--num-images", type=int, default=1, help="outputs per job (the model's range: see --list-models)")
    p.add_argument("--seed", type=int, help="fixed seed; omit to let fal choose")
    p.add_argument("--no-safety-checker", action="store_true")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output_format (fal default png)")
    p.add_argument("--sync", action="store_true", help="sync_mode: images inline, not kept in fal's history")
    p.add_argument("--acceleration", choices=ACCELERATIONS)
    p.add_argument("--prompt-expansion", choices=("on", "off"),
                   help="enable_prompt_expansion: fal rewrites the prompt with an LLM first (Qwen-Image-2, 2 Pro and "
                        "Max; their default on); refused on a model that does not take it")
    p.add_argument("--model", choices=MODEL_NAMES, help=f"which Qwen edit endpoint (--list-models); default "
                   f"{BY_ENDPOINT[DEFAULT_ENDPOINT].name}")
    p.add_argument("--endpoint", help="any other fal endpoint id (generic rules; --model is for the known ones)")
    p.add_argument("--lora", action="append", default=[], metavar="URL[:SCALE]",
                   help="a LoRA (.safetensors URL from Hugging Face, Civitai or fal storage; scale 0-4, default "
                        "1); repeat for up to 3, on a model that takes LoRAs")
    p.add_argument("--input-resize", type=lambda text: text.replace("-", " "), choices=RESIZE_MODES,
                   help="fit-model (default): downscale inputs larger than the model reads (about 1 MP), keeping "
                        "the output size; off: send every pixel")
    p.add_argument("--upload-format", choices=UPLOAD_FORMATS,
                   help="how inputs are encoded: png (default, lossless), webp_lossless, jpeg_95")
    p.add_argument("--upload-expiry", choices=tuple(UPLOAD_EXPIRIES),
                   help=f"how long fal storage keeps uploaded inputs (default {DEFAULT_UPLOAD_EXPIRY}; "
                        "never: fal's own retention)")
    p.add_argument("--no-store", action="store_true",
                   help="keep_on_fal off: ask fal not to keep the request (X-Fal-Store-IO: 0); the outputs are "
                        "kept in the state folder, where --result-of finds them (fal itself: 1 hour at most)")
    p.add_argument("--budget-usd", type=float, metavar="N",
                   help="daily spending cap for this run (overrides FAL_DAILY_BUDGET_USD / [budget] daily_usd)")
    p.add_argument("--list-models", action="store_true",
                   help="print the schema snapshot's date and the known models: name, endpoint id, images, "
                        "LoRAs, price rule, source")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--gateway", metavar="BASE_URL",
                       help="use a gateway with a Bearer token (FAL_GATEWAY_TOKEN) instead of fal direct; "
                            "gateways with only submit + result (no /status) work too")
    where.add_argument("--proxy", metavar="URL",
                       help="send every fal call through fal's server proxy at URL (x-fal-target-url); the "
                            "proxy holds the key (FAL_PROXY_TOKEN only if your proxy checks a token of its own)")
    p.add_argument("--key-env", metavar="NAME", help="environment variable holding the key or token")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for the whole edit")
    p.add_argument("--start-timeout", metavar="SECONDS",
                   help="fal drops the job, unrun and unbilled, if it has not started within SECONDS of the "
                        "submit (X-Fal-Request-Timeout, more than 1); 0: no deadline; default auto: what is left "
                        "of --timeout (FAL_START_TIMEOUT / [queue] start_timeout override it)")
    p.add_argument("--priority", choices=PRIORITIES,
                   help="fal's queue priority (X-Fal-Queue-Priority; default normal, or FAL_QUEUE_PRIORITY / "
                        "[queue] priority): low yields to interactive work")
    p.add_argument("--no-stream", action="store_true", help="poll the status instead of the SSE stream")
    p.add_argument("--fresh", action="store_true",
                   help="submit a new job even if this exact edit is cached or journalled")
    p.add_argument("--result-of", metavar="REQUEST_ID",
                   help="download the outputs of an earlier request instead of editing (no new job)")
    p.add_argument("--check", action="store_true",
                   help="check the connection without submitting anything (mode, hosts, key, storage upload); "
                        "exit code 0 only when every check passes")
    p.add_argument("--out", "-o", type=Path, default=Path("edited"), help="output folder (default ./edited)")
    p.add_argument("--demo", action="store_true",
                   help="run offline against a fake fal server on 127.0.0.1 (its 'model' inverts colours)")
    p.add_argument("--verbose", "-v", action="store_true")
    add_batch_arguments(p)
    add_history_arguments(p)
    return p


def demo_input() -> np.ndarray:
    """A small synthetic picture, so --demo needs no files."""
    h, w = 384, 512
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 40.0) * np.cos(y / 40.0)], axis=-1)
    disc = (x - 300) ** 2 + (y - 180) ** 2 < 90 ** 2
    image[disc] = [0.95, 0.85, 0.2]
    return image.astype(np.float32)


class Terminal:
    """Progress lines on stderr, one per state change or log line; each job's request id first,
    so a paid job can be found again even if this terminal is closed."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.seen: set[str] = set()

    def __call__(self, progress: Progress) -> None:
        if progress.request_id not in self.seen:
            self.seen.add(progress.request_id)
            self.stream.write(f"request {progress.request_id}\n")
        where = f" (queue position {progress.queue_position})" if progress.status == "IN_QUEUE" \
            and progress.queue_position is not None else ""
        self.stream.write(f"[{progress.elapsed:6.1f}s] {progress.status}{where}\n")
        for line in progress.new_logs:
            self.stream.write(f"           fal: {line}\n")
        self.stream.flush()


def _request_from(args: argparse.Namespace) -> QwenEditRequest:
    size = args.image_size if args.image_size != "auto" else None
    if args.width is not None or args.height is not None:
        size = (args.width, args.height)
    return QwenEditRequest(
        prompt=args.prompt or "", negative_prompt=args.negative_prompt, image_size=size,
        num_inference_steps=args.steps, guidance_scale=args.guidance, num_images=args.num_images,
        seed=args.seed, enable_safety_checker=False if args.no_safety_checker else None,
        output_format=args.format, sync_mode=True if args.sync else None, acceleration=args.acceleration,
        loras=[parse_lora(text) for text in args.lora],
        enable_prompt_expansion=None if args.prompt_expansion is None else args.prompt_expansion == "on")


def list_models(environ: dict[str, str]) -> int:
    prices = PriceBook(state_dir(environ) / "prices.json")  # read only: what fal's pricing API told this machine
    for line in models_table.list_lines(models_table.today(), prices.price_for):
        print(line)
    return 0


def _install_cancel_handler() -> threading.Event:
    cancel = threading.Event()

    def on_sigint(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        sys.stderr.write("\nCancelling (Ctrl-C again to quit at once)…\n")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
    return cancel


def demo_environment(stack: ExitStack, args: argparse.Namespace) -> dict[str, str]:
    """Start the fake fal server and return an environment that points only at it.

    Built from scratch, so no FAL_* variable, --key-env or config.ini of this machine can send the
    demo (or a real key) anywhere but 127.0.0.1."""
    from ...fakefal import FakeFal  # only the demo needs the fake server
    mode = "gateway" if args.gateway else "proxy" if args.proxy else "fal"
    server = stack.enter_context(FakeFal(key="demo-key", mode=mode,
                                         queue_time=1.0, queue_positions=3, run_time=1.5,
                                         logs=("loading Qwen-Image-Edit-Plus (fake)", "denoising",
                                               "decoding")).start())
    home = stack.enter_context(tempfile.TemporaryDirectory(prefix="fal-qwen-demo-"))
    if args.gateway:
        args.gateway = server.url
    if args.proxy:
        args.proxy = server.proxy_url  # its targets stay fal's own hosts, which the fake proxy answers for
    if args.key_env:
        print("demo: --key-env is ignored; the demo never uses a real key", file=sys.stderr)
    print(f"demo: fake fal server on {server.url} (its stand-in model inverts colours)", file=sys.stderr)
    environ = {"HOME": home, "FAL_QWEN_EDIT_CONFIG": os.path.join(home, "none.ini"),
               "FAL_QWEN_EDIT_STATE_DIR": home, "FAL_KEY": "demo-key", "FAL_GATEWAY_TOKEN": "demo-key"}
    if not args.proxy:
        environ.update(FAL_QUEUE_BASE=server.url, FAL_REST_BASE=server.url)
    return environ


def _config(args: argparse.Namespace, environ: dict[str, str]):
    mode = "gateway" if args.gateway else "proxy" if args.proxy else ("fal" if args.demo else None)
    return load_config(mode=mode, base_url=args.gateway or args.proxy,
                       key_env=None if args.demo else args.key_env, upload="auto" if args.demo else None,
                       upload_expiry=args.upload_expiry, keep_on_fal="off" if args.no_store else None,
                       environ=environ, from_user=True)  # the options typed here are this machine's own words


def check(args: argparse.Namespace) -> int:
    """``--check``: print each check on its own line; 0 only when all pass."""
    environ = dict(os.environ)
    for line in where_things_live(environ):
        print(line)
    try:
        config = _config(args, environ)
    except FalError as exc:
        print(f"FAIL connection: {exc}")
        return 1
    checks = run_checks(config, spec_for(args.model, args.endpoint).endpoint, WayMemory(state_dir(environ) / "ways.json"))
    checks.append(models_table.snapshot_check(models_table.today()))
    for item in checks:
        print(item.line())
    return 0 if all(item.ok is not False for item in checks) else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.demo and not args.prompt:
        args.prompt = DEMO_PROMPT
    if args.check:
        return check(args)
    if args.list_models:
        return list_models(dict(os.environ))
    if args.history:
        environ = dict(os.environ)
        return print_history(args, lambda: _config(args, environ), environ)
    if wants_batch(args):
        cancel = _install_cancel_handler()
        with ExitStack() as stack:
            environ = demo_environment(stack, args) if args.demo else dict(os.environ)
            return run_batch_command(args, _request_from(args), environ, lambda: _config(args, environ), cancel)
    if not args.prompt and not args.result_of:
        print("error: --prompt is required (what should change in the image?)", file=sys.stderr)
        return 2
    if not args.images and not args.demo and not args.result_of:
        print("error: give at least one input image file", file=sys.stderr)
        return 2
    cancel = _install_cancel_handler()

    with ExitStack() as stack:
        environ = dict(os.environ)
        if args.demo:
            environ = demo_environment(stack, args)
        try:
            config = _config(args, environ)
            default_resize, default_format = input_defaults(environ)
            args.input_resize, args.upload_format = args.input_resize or default_resize, \
                args.upload_format or default_format
            start_timeout, priority = resolve_guards(args.start_timeout, args.priority, environ, "--start-timeout")
            request = _request_from(args)
            spec = spec_for(args.model, args.endpoint)
            if not args.result_of:
                request.validate(spec, images_to_come=None)
            inputs = [decode_image(path.read_bytes(), source=str(path)) for path in args.images] \
                if args.images or args.result_of else [demo_input()]
            if not args.result_of:
                request.validate(spec, images_to_come=len(inputs))
                check_modes(args.input_resize, args.upload_format)
                cost = estimate_run(spec, request, [(i.shape[1], i.shape[0]) for i in inputs], args.input_resize,
                                    price_of=PriceBook(state_dir(environ) / "prices.json").price_for)
                print(f"{spec.name}: {cost.text()}" + (", an estimate" if cost.known else ""), file=sys.stderr)
        except (FalError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

        try:
            client = stack.enter_context(persistent_client(
                config, state_dir(environ), budget_usd=args.budget_usd if args.budget_usd is not None else
                budget_cap(environ), wait_settings=WaitSettings(use_sse=not args.no_stream)))
            if args.result_of:
                outcome = client.result_by_id(args.result_of, endpoint=spec.endpoint, on_progress=Terminal(),
                                              should_cancel=cancel.is_set, timeout=args.timeout)
            else:
                outcome = client.edit(request, [img[None] for img in inputs], endpoint=spec.endpoint,
                                      input_resize=args.input_resize, upload_format=args.upload_format,
                                      on_progress=Terminal(), should_cancel=cancel.is_set,
                                      timeout=args.timeout, fresh=args.fresh, start_timeout=start_timeout,
                                      priority=priority)
            if outcome.note:
                print(f"note: {outcome.note}", file=sys.stderr)
            run = {"cost_usd_estimate": outcome.cost_usd_estimate, "spent_24h_usd": client.budget.spent(),
                   "daily_cap_usd": client.budget.cap_usd}
        except CancelledError as exc:
            print(f"cancelled: {exc}", file=sys.stderr)
            return 130
        except FalError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    args.out.mkdir(parents=True, exist_ok=True)
    if args.demo and not args.images:
        (args.out / "demo-input.png").write_bytes(encode_png(inputs[0]))
    written = []
    for i, frame in enumerate(outcome.images):
        path = args.out / f"edit-{outcome.handle.request_id[:8]}-{i}.png"
        path.write_bytes(encode_png(frame))
        written.append(str(path))
    if args.json:
        print(json.dumps({**outcome.info(), "files": written, "run": run}, indent=2))
        return 0
    info = outcome.info()
    cost_text = f"~${run['cost_usd_estimate']:.4f}" if run["cost_usd_estimate"] is not None else "price unknown"
    print(f"request {info.get('request_id')} ({info.get('source', 'new')}), seed {info.get('seed')}, {cost_text}; "
          f"details: --json", file=sys.stderr)
    if args.demo and not args.images:
        print(f"input:  {args.out / 'demo-input.png'}", file=sys.stderr)
    for path in written:
        print(path)  # stdout holds only the edited files' paths, for scripts that take them
    return 0


if __name__ == "__main__":
    sys.exit(main())
