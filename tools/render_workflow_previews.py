"""Screenshot every example workflow in ComfyUI's real web frontend, and check that each one loads cleanly.

Starts a local fake fal server and ComfyUI (the folder ``COMFYUI_DIR`` names, as for the tests) with this
pack, opens the frontend in headless Chromium (/usr/bin/chromium, driven by Playwright), loads each
``example_workflows/*.json``, runs it once against the fake server so the SaveImage nodes show their
results, and writes ``example_workflows/<name>.jpg``: the frontend's template browser asks a custom node pack for
``/api/workflow_templates/<pack>/<name>.jpg`` (workflowTemplatesStore.ts: mediaSubtype 'jpg', in 1.27, 1.37
and 1.58), so a .png preview is never shown.
Exits 1 and lists the workflows the frontend complained about (missing nodes, rejected widget values,
dropped links, error dialogs or toasts, failed runs). Everything it starts is stopped at the end.

Needs: ``apt-get install chromium`` and ``pip install playwright`` (no ``playwright install``).
Usage: python tools/render_workflow_previews.py [--no-run] [--out DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from frontend_harness import WORKFLOWS, Frontend, comfyui_with_fake_fal, unavailable, workflow_files  # noqa: E402

MAX_BYTES = 400_000


def save_compressed(png: bytes, out: Path, name: str, fmt: str = "auto") -> Path:
    """Write an optimised PNG, or a JPEG when asked or when the PNG is too big or twice the JPEG's size."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    png_data = buffer.getvalue()
    for quality in (90, 85, 80, 70):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
        if len(buffer.getvalue()) <= MAX_BYTES:
            break
    jpg_data = buffer.getvalue()
    use_png = fmt == "png" or fmt == "auto" and len(png_data) <= MAX_BYTES and len(png_data) <= 2 * len(jpg_data)
    ext, data = (".png", png_data) if use_png else (".jpg", jpg_data)
    for stale in (".png", ".jpg"):
        (out / f"{name}{stale}").unlink(missing_ok=True)
    path = out / f"{name}{ext}"
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: all in example_workflows/)")
    parser.add_argument("--out", type=Path, default=WORKFLOWS, help="where the images go")
    parser.add_argument("--no-run", action="store_true", help="only load the workflows; do not run them")
    parser.add_argument("--format", choices=("auto", "png", "jpg"), default="jpg",
                        help="jpg (default): what the frontend's template browser asks for; auto: PNG unless "
                             "a JPEG is much smaller (for other pictures)")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"cannot render previews: {reason}", file=sys.stderr)
        return 2
    files = [f for f in workflow_files() if not args.names or f.stem in args.names]
    if not files:
        print("no matching workflows", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failures: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="workflow-previews-") as work, \
            comfyui_with_fake_fal(Path(work)) as comfy, \
            Frontend(comfy, args.width, args.height) as frontend:
        for path in files:
            problems = frontend.load(path)
            frontend.fit()
            if not args.no_run:
                problems += frontend.run()
                frontend.fit()
            image = save_compressed(frontend.screenshot(), args.out, path.stem, args.format)
            print(f"{path.stem}: {image} ({image.stat().st_size // 1024} KB)"
                  + ("" if not problems else f", {len(problems)} problem(s)"))
            if problems:
                failures[path.stem] = problems
    for name, problems in failures.items():
        print(f"\n{name}:", *(f"  - {p}" for p in problems), sep="\n", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
