"""The model table, told one way: ``fal-qwen-edit --list-models``, the table in README.md and the one in
docs/models-and-costs.md are all rendered here from the endpoint table (models/endpoints.py), so they
cannot tell different stories. ``tools/make_readme_models.py`` writes the two Markdown tables between
their markers; tests/test_endpoints.py fails when a file holds another table than this module renders.

Also the schema snapshot's age: ``--list-models`` and ``--check`` say when fal's input schemas were read,
and ``--check`` says when that is more than ``SNAPSHOT_MAX_AGE_DAYS`` ago.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Callable

from ..models.endpoints import (ALIASES, ALL_ENDPOINTS, ENDPOINTS, PRESET_PIXELS, SEED_RANGE, SNAPSHOT_MAX_AGE_DAYS,
                                EndpointSpec, snapshot_age_days)
from ..models.endpoint_table import SNAPSHOT_READ_ON
from ..models.pricing import FROM_FAL, PRICE_UNKNOWN, UnitPrice
from .check import Check

README_MARKERS = ("<!-- models-table: made by tools/make_readme_models.py -->", "<!-- /models-table -->")
DOCS_MARKERS = ("<!-- models-detail: made by tools/make_readme_models.py -->", "<!-- /models-detail -->")
UNKNOWN_SOURCE = "fal's pricing API, asked when a job is submitted"
NODES = {"angles": "the Multiple Angles node"}


def today() -> str:
    """Today's date, YYYY-MM-DD (a function, so that a test can be another day)."""
    return date.today().isoformat()


@dataclass(frozen=True)
class Row:
    spec: EndpointSpec
    name: str      # with what it is: an alias, another node's model
    images: str
    loras: str
    price: str     # the table's price rule, or "price unknown"
    source: str    # where that price is stated

    def cells(self, markdown: bool) -> list[str]:
        endpoint = f"`{self.spec.endpoint}`" if markdown else self.spec.endpoint
        source = self.source
        if markdown and source.startswith("https://"):
            source = f"[fal]({source})"
        return [self.name, endpoint, self.images, self.loras, self.price, source]


def _row(spec: EndpointSpec) -> Row:
    name = spec.name
    if spec.alias_of:
        name += f" (alias of {spec.alias_of})"
    elif spec.node != "edit":
        name += f" ({NODES.get(spec.node, spec.node)})"
    low, high = spec.min_images, spec.max_images
    images = str(high) if low == high else f"{low}-{high}"
    loras = f"up to {spec.max_loras}" if spec.takes_loras else "no"
    if spec.price_per_mp is not None:
        page = next((s.split(" (read")[0] for s in spec.sources if s.startswith("https://")), "")
        return Row(spec, name, images, loras, spec.price_rule(), page)
    return Row(spec, name, images, loras, PRICE_UNKNOWN, UNKNOWN_SOURCE)


def rows() -> list[Row]:
    """Every model of the table: the edit node's (and --model's), then the aliases, then other nodes'."""
    others = [s for s in ALL_ENDPOINTS if s not in ENDPOINTS and s not in ALIASES]
    return [_row(spec) for spec in (*ENDPOINTS, *ALIASES, *others)]


def snapshot_text(when: str) -> str:
    age = snapshot_age_days(when)
    return f"fal's input schemas read on {SNAPSHOT_READ_ON} ({age} day{'s' if age != 1 else ''} ago)"


def snapshot_check(when: str) -> Check:
    """``--check``'s word on the schema snapshot: information, and a warning past SNAPSHOT_MAX_AGE_DAYS
    (fal may have added or changed fields since; the pack's checks follow the snapshot)."""
    text = snapshot_text(when)
    if snapshot_age_days(when) > SNAPSHOT_MAX_AGE_DAYS:
        text += (f": over {SNAPSHOT_MAX_AGE_DAYS} days old, so fal may have changed its models' fields since; "
                 "update the pack (or refresh the snapshot: tools/make_endpoint_table.py)")
    return Check("schema", None, text)


def list_lines(when: str, price_of: Callable[[EndpointSpec], UnitPrice | None] | None = None) -> list[str]:
    """``--list-models``: the snapshot's date, then one line per model (``price_of``: the state folder's
    cached prices, to say what fal's pricing API told this machine where the table has no price)."""
    lines = [snapshot_text(when) + f"; --check warns when they are over {SNAPSHOT_MAX_AGE_DAYS} days old"]
    for row in rows():
        name, endpoint, images, loras, price, source = row.cells(markdown=False)
        told = price_of(row.spec) if price_of is not None and row.spec.price_per_mp is None else None
        if told is not None and told.source == FROM_FAL:
            source = f"fal's pricing API told this machine {told.rule()}"
        count = f"{images} image{'' if images == '1' else 's'}"
        lines.append(f"{name:<52} {endpoint:<44} {count:<11} LoRAs: {loras:<8} {price:<31} source: {source}")
    lines.append(f"{'custom':<52} {'--endpoint ID':<44} generic rules; fal's own 422 decides; {PRICE_UNKNOWN}")
    return lines


def _markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def readme_table() -> str:
    return _markdown(["name", "endpoint", "images", "LoRAs", "price", "source"], [r.cells(True) for r in rows()])


def _auto_size(spec: EndpointSpec) -> str:
    if spec.size_when_omitted in PRESET_PIXELS:
        width, height = PRESET_PIXELS[spec.size_when_omitted]
        return f"{spec.size_when_omitted} ({width}x{height})"
    if spec.output_pixels is not None:
        low, high = (round(n ** 0.5) for n in spec.output_pixels)
        return f"the last input's size, scaled into {low}x{low}-{high}x{high} pixels"
    return "about 1 MP in the last input's aspect"


def _takes(spec: EndpointSpec) -> str:
    parts = []
    for name, label in (("num_inference_steps", "steps"), ("guidance_scale", "guidance"), ("num_images", "images out")):
        bounds = spec.range_of(name)
        if spec.takes(name) and bounds is not None:
            parts.append(f"{label} {bounds[0]:g}-{bounds[1]:g}")
    if spec.accelerations:
        parts.append("acceleration " + "/".join(spec.accelerations))
    if spec.takes("enable_prompt_expansion"):
        parts.append("prompt expansion")
    if spec.seed_range != SEED_RANGE:
        parts.append(f"seed {spec.seed_range[0]}-{spec.seed_range[1]}")
    parts += [f"{name.replace('_', ' ')} ≤ {limit} chars" for name, limit in sorted(spec.max_lengths.items())]
    if spec.image_side is not None:
        parts.append(f"inputs {spec.image_side[0]}-{spec.image_side[1]} px a side")
    if spec.image_megabytes is not None:
        parts.append(f"≤ {spec.image_megabytes:g} MB each")
    if not spec.image_alpha:
        parts.append("no alpha")
    return ", ".join(parts)


def docs_table() -> str:
    body = [[row.name, f"`{row.spec.endpoint}`", _takes(row.spec), _auto_size(row.spec), row.cells(True)[4],
             row.cells(True)[5]] for row in rows()]
    return _markdown(["name", "endpoint", "takes", "output with image_size auto", "price", "price source"], body)


def with_table(text: str, markers: tuple[str, str], table: str) -> str:
    """``text`` with ``table`` between ``markers`` (ValueError when they are missing)."""
    start, end = markers
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"the markers {start} … {end} are missing")
    return pattern.sub(lambda _: f"{start}\n{table}\n{end}", text, count=1)
