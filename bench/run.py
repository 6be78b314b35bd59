"""Benchmark of the fal Qwen edit node pack against the bundled fake fal server.

    .venv/bin/python bench/run.py [--quick] [--latency 1.0] [--json bench.json]

Sections: 1 PNG encode, 2 client overhead of one edit (this pack vs a bare
``requests`` client vs fal-client), 3 completion detection, 4 fan-out,
5 peak RSS of decoding, 6 real photos over a throttled uplink (uplink.py),
7 the batch runner at scale (batch.py: 1,000 edits, one killed and resumed).
Prints one table and writes the same figures as JSON.
Everything runs on 127.0.0.1; fal-client (the ``bench`` extra) is optional.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from figures import Report, table, write_json  # noqa: E402

SECTIONS = ("encode", "overhead", "detect", "fanout", "memory", "uplink", "batch")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="few repetitions: a smoke test (~1 min)")
    parser.add_argument("--latency", type=float, default=1.0, metavar="SECONDS",
                        help="server-side run time of a job for the overhead and detection figures "
                             "(default 1.0; fan-out always uses 1 s jobs)")
    parser.add_argument("--pillow-fake", action="store_true",
                        help="keep the fake server's own (Pillow, ~180 ms per 1 MP) output encoder; by "
                             "default the bench swaps in the pack's fast one so the in-process fake does "
                             "not take the 2 cores from the client under test")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if args.latency <= 0:
        parser.error("--latency must be positive")
    return args


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    packages = ("comfyui-fal-qwen-edit", "numpy", "pillow", "torch", "requests", "urllib3",
                "fal-client", "httpx", "cryptography")
    return {"cores": os.cpu_count(), "usable_cores": usable, "cpu": model, "platform": platform.platform(),
            "python": platform.python_version(), "versions": {p: _version(p) for p in packages}}


def plan(quick: bool) -> dict:
    if quick:
        return dict(encode_rounds=3, overhead_rounds=2, detect_samples=4, comfy_samples=2,
                    fanout_rounds=1, memory_rounds=1)
    return dict(encode_rounds=9, overhead_rounds=6, detect_samples=12, comfy_samples=6,
                fanout_rounds=3, memory_rounds=3)


def build_clients(server, report: Report):
    """The overhead clients (a)-(c); a client that cannot run is skipped with its reason."""
    from clients import FalClientClient, PackClient, ReferenceClient, Skip, pillow_png

    clients = {"pack (data URIs)": PackClient(server, "data_uri"),
               "pack (storage, default)": PackClient(server, "storage"),
               "ref (b)": ReferenceClient(server),
               "ref (b) + Pillow PNG": ReferenceClient(server, encoder=pillow_png)}
    try:
        clients["fal-client (c)"] = FalClientClient(server)
    except Skip as exc:
        report.skip("2 overhead", "fal-client (c)", str(exc))
        report.skip("3 detect", "fal-client", str(exc))
    return clients


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("fal_qwen_edit").setLevel(logging.WARNING)
    began = time.monotonic()
    settings = plan(args.quick)
    meta = {"machine": machine(), "latency_s": args.latency, "quick": args.quick, "plan": settings,
            "sections": args.only, "fake_output_encoder": "pillow" if args.pillow_fake else "pack"}
    m = meta["machine"]
    print(f"machine: {m['cores']} cores ({m['usable_cores']} usable) {m['cpu']} | {m['platform']}")
    print(f"python {m['python']} | " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    print(f"server-side latency {args.latency:g} s | {'quick' if args.quick else 'full'} run | "
          f"sections {','.join(args.only)}", flush=True)

    report = Report()
    meter = CpuMeter()
    import speed
    from common import lighten_fake_outputs, start_server

    if "encode" in args.only:
        meter.step("1 encode")
        speed.encode(report, settings["encode_rounds"])
        speed.zlib_sweep(report, settings["encode_rounds"])
    server = None
    if {"overhead", "detect", "fanout"} & set(args.only):
        if not args.pillow_fake:
            lighten_fake_outputs()
            report.notes.append("the in-process fake encodes outputs with the pack's PNG encoder "
                                "(--pillow-fake keeps its Pillow encoder)")
        server = start_server(args.latency)
        meta["server"] = {"url": server.fake.url, "tls": server.tls, "note": server.note}
        if server.note:
            report.notes.append(server.note)
    try:
        clients = build_clients(server, report) if server and {"overhead", "detect"} & set(args.only) else {}
        if "overhead" in args.only:
            meter.step("2 overhead")
            speed.overhead(report, server, clients, args.latency, settings["overhead_rounds"])
        if "detect" in args.only:
            meter.step("3 detect")
            from clients import PackClient
            import detect

            waiting = {"pack SSE": clients["pack (data URIs)"],
                       "pack polling fallback": PackClient(server, "data_uri", use_sse=False)}
            if "fal-client (c)" in clients:
                waiting["fal-client"] = clients["fal-client (c)"]
            detect.detection(report, server, waiting, args.latency, settings["detect_samples"],
                             settings["comfy_samples"])
            waiting["pack polling fallback"].close()
        for client in clients.values():
            client.close()
        if "fanout" in args.only:
            meter.step("4 fan-out")
            speed.fanout(report, server, settings["fanout_rounds"])
    finally:
        if server is not None:
            server.close()
            if server.fake.errors:
                report.notes.append(f"fake server reported {len(server.fake.errors)} internal error(s)")
    if "memory" in args.only:
        meter.step("5 memory")
        import memory

        memory.measure(report, settings["memory_rounds"])
    if "uplink" in args.only:
        meter.step("6 uplink")
        import uplink

        uplink.run(report, args.quick, settings["encode_rounds"])
    if "batch" in args.only:
        meter.step("7 batch")
        import batch

        batch.run(report, args.quick)

    meter.step(None)
    meta["runtime_s"] = round(time.monotonic() - began, 1)
    meta["load"] = meter.sections
    report.notes.append(meter.summary())
    report.notes.append(f"runtime {meta['runtime_s']:.0f} s")
    print()
    print(table(report))
    if args.json:
        write_json(args.json, report, meta)
        print(f"\nwrote {args.json}")
    return 0


class CpuMeter:
    """How much CPU other processes took while a section ran (from /proc/stat):
    the machine is shared, and a busy neighbour shows up in every figure."""

    def __init__(self):
        self.sections: dict[str, dict] = {}
        self._name, self._start = None, None

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [int(x) for x in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        t = os.times()
        return time.monotonic(), (sum(fields) - idle) / ticks, t.user + t.system + t.children_user + t.children_system

    def step(self, name: str | None) -> None:
        now = self._sample()
        if self._name is not None and self._start is not None and now is not None:
            wall = now[0] - self._start[0]
            busy = now[1] - self._start[1]
            ours = now[2] - self._start[2]
            other = max(0.0, busy - ours)
            self.sections[self._name] = {"wall_s": round(wall, 1), "bench_cpu_s": round(ours, 1),
                                         "other_processes_cpu_s": round(other, 1),
                                         "other_processes_cores": round(other / wall, 2) if wall else 0.0}
        self._name, self._start = name, now
        if name:
            print(f"... {name}", file=sys.stderr, flush=True)

    def summary(self) -> str:
        return "other processes' CPU load during each section (cores busy on average): " + ", ".join(
            f"{k} {v['other_processes_cores']:.2f}" for k, v in self.sections.items())


if __name__ == "__main__":
    sys.exit(main())
