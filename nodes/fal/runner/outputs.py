"""An item's output files: ``NAME.png`` (``NAME-1.png``, ``NAME-2.png`` … for several outputs) in
the output folder, each written whole or not at all (base/atomic_write.py), so a crash never leaves
a half file that a later run would take for done."""

from __future__ import annotations

from pathlib import Path

from ..base.atomic_write import write_atomic
from ..edit.outcome import EditOutcome
from ..media.images import encode_png


def output_names(name: str, count: int) -> list[str]:
    return [f"{name}.png"] if count == 1 else [f"{name}-{i}.png" for i in range(1, count + 1)]


def write_outputs(folder: Path, name: str, outcome: EditOutcome) -> list[str]:
    """Write the outcome's images; their names relative to ``folder``."""
    names = output_names(name, len(outcome.images))
    for file_name, frame in zip(names, outcome.images):
        write_atomic(folder / file_name, encode_png(frame))
    return names
