"""Writes the model tables of README.md and docs/models-and-costs.md from the endpoint table.

    .venv/bin/python tools/make_readme_models.py           # rewrite both tables between their markers
    .venv/bin/python tools/make_readme_models.py --check   # exit 1 when a file holds another table

Run with the Python the tests use (the pack installed with ``pip install -e .``). The tables are rendered by
nodes/fal/cli/models_table.py, the module ``fal-qwen-edit --list-models`` prints from, so the README, the docs
and the CLI tell the same table. After a change to endpoint_notes.py or a new schema snapshot
(tools/make_endpoint_table.py), run this and review the diff.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from comfyui_fal_qwen_edit.nodes.fal.cli import models_table

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ((ROOT / "README.md", models_table.README_MARKERS, models_table.readme_table),
           (ROOT / "docs" / "models-and-costs.md", models_table.DOCS_MARKERS, models_table.docs_table))


def stale_files(write: bool) -> list[Path]:
    """The files whose table is not the rendered one (rewritten when ``write``)."""
    stale = []
    for path, markers, render in TARGETS:
        text = path.read_text(encoding="utf-8")
        new = models_table.with_table(text, markers, render())
        if new != text:
            stale.append(path)
            if write:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = stale_files(write=not args.check)
    for path in stale:
        print(f"{path.relative_to(ROOT)}: {'holds another table: run tools/make_readme_models.py' if args.check else 'rewritten'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
