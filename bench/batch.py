"""Section 7, batch at scale: ``fal-qwen-edit --manifest`` with 1,000 edits of 256 x 256 against the
fake server (1 s jobs, concurrency 16).

The runner is a child process (``python bench/batch.py child STATS -- ARGS…``:
the CLI's ``main`` with its own peak memory, VmHWM, and CPU seconds written to
STATS as it exits), so its figures are the client's alone; the fake runs in the
bench process (https, throwaway certificate), on the same 2 cores. Runs:

* 100 edits, then 1,000: wall time against the ideal (edits / concurrency × 1 s),
  the client's CPU seconds per edit, peak memory at each size;
* 1,000 edits killed with SIGKILL once half of them are done, then the same
  command again: jobs submitted over both runs (must be 1,000: nothing paid
  twice), items done with their output file (must be 1,000: nothing lost) and
  jobs on the fake that no result names. A submit the kill cut off before fal's
  answer arrived is looked up in fal's request history (the fake's Platform API,
  by what was sent: edit/submits.py) and resumed; one the history cannot settle
  is reported, not resubmitted, and a third run with ``--retry-failed`` shows
  what submitting it again costs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONCURRENCY = 16
RUN_TIME = 1.0


def child(stats_path: str, argv: list[str]) -> int:
    from comfyui_fal_qwen_edit.nodes.fal.cli.main import main

    code = main(argv)
    times = os.times()
    with open("/proc/self/status", encoding="ascii") as handle:
        peak_kb = int(next(line.split()[1] for line in handle if line.startswith("VmHWM:")))
    Path(stats_path).write_text(json.dumps({"code": code, "cpu_s": times.user + times.system, "peak_kb": peak_kb}))
    return code


def make_inputs(folder: Path, count: int) -> Path:
    """``count`` distinct 256 x 256 photo-like PNGs and a manifest naming them."""
    from common import picture
    from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png

    (folder / "in").mkdir(parents=True)
    lines = []
    for i in range(count):
        (folder / "in" / f"{i:04d}.png").write_bytes(encode_png(picture(256, 256, seed=i)))
        lines.append(json.dumps({"images": [f"in/{i:04d}.png"], "prompt": "invert the colours", "name": f"e{i:04d}"}))
    manifest = folder / "edits.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


class Runs:
    def __init__(self, server, folder: Path):
        from common import KEY

        self.server, self.folder = server, folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
        self.env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=server.fake.url, FAL_REST_BASE=server.fake.url,
                        FAL_QWEN_EDIT_CONFIG="/nonexistent.ini", HOME=str(folder),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))

    def command(self, manifest: Path, out: Path, stats: Path) -> list[str]:
        return [sys.executable, str(HERE / "batch.py"), "child", str(stats), "--", "--manifest", str(manifest),
                "--concurrency", str(CONCURRENCY), "--out", str(out)]

    def start(self, manifest: Path, name: str, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
        out, stats = self.folder / name, self.folder / f"{name}.stats.json"
        env = dict(self.env, FAL_QWEN_EDIT_STATE_DIR=str(self.folder / f"{name}-state"))
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen(self.command(manifest, out, stats) + list(extra), env=env, stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL)
        log.close()
        return process, out, stats

    def timed(self, manifest: Path, name: str) -> dict:
        self.server.fake.forget()
        began = time.monotonic()
        process, out, stats = self.start(manifest, name)
        code = process.wait(timeout=1800)
        wall = time.monotonic() - began
        figures = json.loads(stats.read_text())
        if code != 0:
            raise RuntimeError(f"batch run {name} exited {code}; see {self.folder / (name + '.log')}")
        return {**figures, "wall_s": wall, "out": out}


def done_records(out: Path) -> dict[str, dict]:
    return {k: r for k, r in latest_records(out).items() if r["status"] == "done"}


def latest_records(out: Path) -> dict[str, dict]:
    latest = {}
    try:
        for raw in (out / "results.jsonl").read_text().splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            latest[record["key"]] = record
    except FileNotFoundError:
        pass
    return latest


def _killed_figures(report, name: str, fake, before: int, out: Path, big: int, note: str) -> None:
    done = done_records(out)
    complete = sum(1 for r in done.values() if all((out / f).is_file() for f in r["files"]))
    known = {r.get("request_id") for r in latest_records(out).values()}
    with fake._cond:
        orphans = sum(1 for request_id in fake.jobs if request_id not in known)
    report.add("7 batch", f"{name}: submits", "jobs", [fake.submissions - before], target=("<=", big), note=note)
    report.add("7 batch", f"{name}: results", "items", [complete], target=(">=", big),
               note="items done with their output file on disk")
    report.add("7 batch", f"{name}: paid jobs without a result", "jobs", [orphans], target=("<=", 0),
               note="jobs on the fake whose request id the results file does not name")


def run(report, quick: bool) -> None:
    from common import lighten_fake_outputs, start_server

    big, small = (200, 50) if quick else (1000, 100)
    label = f"batch {big}x{RUN_TIME:g}s conc{CONCURRENCY}"
    lighten_fake_outputs()
    server = start_server(RUN_TIME)
    folder = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        runs = Runs(server, folder)
        manifest = make_inputs(folder, big)
        small_manifest = folder / "small.jsonl"
        small_manifest.write_text("".join(manifest.read_text().splitlines(keepends=True)[:small]))
        ideal = big / CONCURRENCY * RUN_TIME

        at_small = runs.timed(small_manifest, "small")
        at_big = runs.timed(manifest, "big")
        report.add("7 batch", f"{label}: wall", "s", [at_big["wall_s"]], note=f"ideal {ideal:g} s")
        report.add("7 batch", f"{label}: wall / ideal", "x", [at_big["wall_s"] / ideal], target=("<=", 1.10))
        report.add("7 batch", f"{label}: client CPU per edit", "ms", [at_big["cpu_s"] / big * 1000],
                   note="the runner process's user + system CPU, start-up included, over the edits")
        report.add("7 batch", f"{label}: peak MB at {small}", "MB", [at_small["peak_kb"] / 1024])
        report.add("7 batch", f"{label}: peak MB at {big}", "MB", [at_big["peak_kb"] / 1024])
        report.add("7 batch", f"{label}: peak MB at {big} / at {small}", "x",
                   [at_big["peak_kb"] / at_small["peak_kb"]], target=("<=", 1.2))
        report.add("7 batch", f"batch {small}x{RUN_TIME:g}s conc{CONCURRENCY}: wall / ideal", "x",
                   [at_small["wall_s"] / (small / CONCURRENCY * RUN_TIME)])

        server.fake.forget()
        before = server.fake.submissions
        process, out, stats = runs.start(manifest, "killed")
        while len(done_records(out)) < big // 2 and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        at_kill = len(done_records(out))
        process, out, stats = runs.start(manifest, "killed")
        code = process.wait(timeout=1800)
        name = f"{label}, killed and resumed"
        latest = latest_records(out)
        lost = [r for r in latest.values() if r.get("uncertain")]
        resumed = sum(1 for r in latest.values() if r.get("source") == "resumed")
        found = (folder / "killed.log").read_text(errors="replace").count("found in fal's request history")
        _killed_figures(report, name, server.fake, before, out, big,
                        f"killed with {at_kill} done; the second run exited {code} and resumed {resumed} submitted "
                        f"jobs, {found} of them found in fal's request history (the kill had cut their submit off "
                        f"before fal's answer); {len(lost)} item(s) it could not settle (not resubmitted)")
        if lost:  # what the user does next: submit those again, knowingly
            process, out, stats = runs.start(manifest, "killed", "--retry-failed")
            code = process.wait(timeout=600)
            _killed_figures(report, f"{name}, then --retry-failed", server.fake, before, out, big,
                            f"exited {code}; a cut-off submit that reached fal is now paid twice")
        if server.fake.errors:
            report.notes.append(f"batch: the fake server reported {len(server.fake.errors)} internal error(s)")
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "child" and sys.argv[3] == "--":
        sys.exit(child(sys.argv[2], sys.argv[4:]))
    sys.exit("usage: bench/batch.py child STATS -- ARGS (bench/run.py --only batch runs it)")
