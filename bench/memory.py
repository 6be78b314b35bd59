"""Section 5: peak RSS while decoding 4 outputs of 2 MP each.

Each measurement is a fresh child process (``python bench/memory.py MODE DIR``)
that imports what it needs, loads the four PNGs as the data URIs a result
would carry, records ``ru_maxrss`` as its baseline, decodes, and records
``ru_maxrss`` again. Modes:

* ``pack``: one edit with num_images=4, decoded the way the pipeline does it:
  ``download_images`` (fetch every URL, then decode each) and ``stack_batch``;
* ``pack-per-frame``: four edits of one output each, then ``combine``, as the
  node does for "one edit per frame" batches;
* ``minimal``: decode each PNG straight into a preallocated IMAGE batch
  (the floor: the IMAGE itself plus one image's uint8 pixels).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile

MODES = ("pack", "pack-per-frame", "minimal")


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _hwm_kb() -> int:
    """VmHWM, the kernel's per-address-space peak: a cross-check of ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            return int(next(l.split()[1] for l in handle if l.startswith("VmHWM:")))
    except (OSError, StopIteration, ValueError):
        return -1


def child(mode: str, directory: str) -> dict:
    import io
    import types

    import numpy as np
    from PIL import Image

    from comfyui_fal_qwen_edit.nodes.fal.media.downloads import download_images
    from comfyui_fal_qwen_edit.nodes.fal.media.images import stack_batch
    from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import combine
    from comfyui_fal_qwen_edit.nodes.fal.wire.transport import Transport

    blobs = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(directory, "*.png")))]
    uris = ["data:image/png;base64," + base64.b64encode(b).decode("ascii") for b in blobs]
    transport = Transport(None)
    baseline = _rss_kb()
    if mode == "pack":
        images, mask = stack_batch(download_images(transport, uris))
    elif mode == "pack-per-frame":
        outcomes = []
        for uri in uris:
            batch, m = stack_batch(download_images(transport, [uri]))
            outcomes.append(types.SimpleNamespace(images=batch, mask=m))
        images, mask = combine(outcomes)
    elif mode == "minimal":
        first = Image.open(io.BytesIO(blobs[0]))
        width, height = first.size
        images = np.empty((len(blobs), height, width, 3), dtype=np.float32)
        mask = np.zeros((len(blobs), height, width), dtype=np.float32)  # opaque: untouched zero pages
        for i, blob in enumerate(blobs):
            pixels = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
            np.multiply(pixels, np.float32(1.0 / 255.0), out=images[i])
            del pixels
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    peak = _rss_kb()
    return {"mode": mode, "baseline_kb": baseline, "peak_kb": peak, "vmhwm_kb": _hwm_kb(), "shape": list(images.shape),
            "image_mb": images.nbytes / 2**20, "mask_mb": mask.nbytes / 2**20}


def measure(report, rounds: int) -> None:
    """Run each mode ``rounds`` times in fresh children; report MB above baseline and absolute."""
    import numpy as np

    from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png

    from common import SIZES, picture

    width, height = SIZES[2.0]
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as directory:
        for i in range(4):
            with open(os.path.join(directory, f"out{i}.png"), "wb") as handle:
                handle.write(encode_png(picture(width, height, seed=40 + i)))
        results = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode in MODES:
                # Through a small launcher: a child started straight from this (large)
                # process by vfork+exec inherits its ru_maxrss, which would hide the decode.
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--spawn", mode, directory],
                                      capture_output=True, text=True, timeout=120)
                if proc.returncode != 0:
                    raise RuntimeError(f"memory child {mode} failed: {proc.stderr[-800:]}")
                results[mode].append(json.loads(proc.stdout))
    floor = results["minimal"][0]
    for mode in MODES:
        rows = results[mode]
        above = [(r["peak_kb"] - r["baseline_kb"]) / 1024 for r in rows]
        absolute = [r["peak_kb"] / 1024 for r in rows]
        base = float(np.median([r["baseline_kb"] / 1024 for r in rows]))
        note = ""
        if mode == "minimal":
            note = (f"output IMAGE {floor['image_mb']:.0f} MB + MASK {floor['mask_mb']:.0f} MB "
                    f"({width}x{height} x4, float32)")
        report.add("5 memory", f"peak RSS above baseline, {mode}", "MB", above, note=note)
        hwm = float(np.median([r["vmhwm_kb"] / 1024 for r in rows]))
        report.add("5 memory", f"peak RSS absolute, {mode}", "MB", absolute,
                   note=f"child baseline {base:.0f} MB (imports + the 4 data URIs); VmHWM {hwm:.0f} MB")


if __name__ == "__main__":
    if sys.argv[1] == "--spawn":
        run = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[2:]],
                             capture_output=True, text=True, timeout=110)
        sys.stdout.write(run.stdout)
        sys.stderr.write(run.stderr)
        sys.exit(run.returncode)
    print(json.dumps(child(sys.argv[1], sys.argv[2])))
