"""V3 schema keywords that only newer ComfyUIs know, detected once at import.

``Schema`` is a dataclass and every ``Input`` takes fixed keywords: passing ``advanced`` (ComfyUI
0.10.0+) or ``search_aliases`` (0.11.0+) to an older ComfyUI raises TypeError inside
``define_schema`` and the whole pack disappears from it. So the node modules ask here and spread
what comes back (``**advanced()``); on 0.3.64 that is nothing.
"""

from __future__ import annotations

import dataclasses
import inspect

from comfy_api.latest import io


def _takes(callable_, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(callable_).parameters
    except (TypeError, ValueError):
        return False


HAS_ADVANCED = all(_takes(kind.Input.__init__, "advanced") for kind in (io.Int, io.Float, io.String, io.Boolean,
                                                                           io.Combo))
HAS_SEARCH_ALIASES = dataclasses.is_dataclass(io.Schema) and \
    "search_aliases" in {field.name for field in dataclasses.fields(io.Schema)}


def advanced() -> dict:
    """Keywords for a rarely used input: collapsed under "advanced" where the frontend does that."""
    return {"advanced": True} if HAS_ADVANCED else {}


def search_aliases(*aliases: str) -> dict:
    return {"search_aliases": list(aliases)} if HAS_SEARCH_ALIASES else {}
