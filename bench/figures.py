"""Figures: summary statistics, targets, the printed table and the JSON file.

A figure is a median over repeated runs with its min and max. A ratio is
taken per round (both sides measured back to back in the same run), and its
median/min/max are over those per-round ratios.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Figure:
    section: str
    name: str
    unit: str
    median: float
    min: float
    max: float
    n: int
    target: Optional[str] = None   # e.g. "<= 40"
    ok: Optional[bool] = None
    note: str = ""
    samples: list = field(default_factory=list)


@dataclass
class Report:
    figures: list = field(default_factory=list)
    skipped: list = field(default_factory=list)   # (section, what, why)
    notes: list = field(default_factory=list)

    def add(self, section: str, name: str, unit: str, samples: Sequence[float], *,
            scale: float = 1.0, target: Optional[tuple[str, float]] = None, note: str = "",
            stat: str = "median") -> Figure:
        values = [v * scale for v in samples]
        if not values:
            raise ValueError(f"no samples for {name}")
        centre = statistics.median(values) if stat == "median" else percentile(values, float(stat[1:]))
        ok, target_text = None, None
        if target is not None:
            op, bound = target
            target_text = f"{op} {bound:g}"
            ok = centre <= bound if op == "<=" else centre >= bound
        figure = Figure(section, name, unit, centre, min(values), max(values), len(values),
                        target_text, ok, note, [round(v, 6) for v in values])
        self.figures.append(figure)
        return figure

    def skip(self, section: str, what: str, why: str) -> None:
        self.skipped.append({"section": section, "what": what, "why": why})

    def get(self, name: str) -> Optional[Figure]:
        return next((f for f in self.figures if f.name == name), None)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(numerators, denominators) if b > 0]


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(report: Report) -> str:
    """The figures as a fixed-width text table (also valid Markdown)."""
    header = ["section", "figure", "unit", "median", "min", "max", "n", "target", "met"]
    rows = []
    for f in report.figures:
        met = "" if f.ok is None else ("yes" if f.ok else "NO")
        rows.append([f.section, f.name, f.unit, _fmt(f.median), _fmt(f.min), _fmt(f.max), str(f.n),
                     f.target or "", met])
    for s in report.skipped:
        rows.append([s["section"], s["what"], "", "skipped", "", "", "", "", ""])
    rows.sort(key=lambda r: r[0])  # stable: skipped rows join their section
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]
    numeric = {3, 4, 5, 6}

    def line(cells):
        parts = [c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "| " + " | ".join(parts) + " |"

    out = [line(header), "|" + "|".join(("-" * (w + 1) + ":") if i in numeric else "-" * (w + 2)
                                        for i, w in enumerate(widths)) + "|"]
    out += [line(r) for r in rows]
    for f in report.figures:
        if f.note:
            out.append(f"  * {f.name}: {f.note}")
    for s in report.skipped:
        out.append(f"  * skipped {s['what']}: {s['why']}")
    for n in report.notes:
        out.append(f"  * {n}")
    return "\n".join(out)


def write_json(path: str, report: Report, meta: dict) -> None:
    data = {"meta": meta,
            "figures": [asdict(f) for f in report.figures],
            "skipped": report.skipped,
            "notes": report.notes}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, default=str)
        handle.write("\n")
