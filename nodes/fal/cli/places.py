"""What ``--check`` says first: where this machine keeps the pack's state and config, and where each
key comes from (never a key), so a first run knows which file to write and what is in use."""

from __future__ import annotations

from typing import Mapping

from ..base.errors import FalError
from ..wire.config import key_status, state_dir, writable_config_file
from ..wire.trusted.saved_keys import saved_keys_path


def where_things_live(environ: Mapping[str, str]) -> list[str]:
    config = writable_config_file(environ)  # the file in use, when there is one
    in_use = config.is_file()
    lines = [f"     state: {state_dir(environ)}",
             f"     config: {config}" + ("" if in_use else " (none yet: create it there to set keys and defaults)")]
    try:
        status = key_status(environ)
    except FalError as exc:
        return lines + [f"     keys: {exc}"]
    for kind, name in (("fal", "fal key"), ("gateway", "gateway token"), ("gateway_url", "gateway URL")):
        item = status[kind]
        lines.append(f"     {name}: {item['source'] if item['set'] else 'not set'}")
    if any(status[kind]["saved"] for kind in ("fal", "gateway", "gateway_url")):
        lines.append(f"     saved from ComfyUI in {saved_keys_path(environ)}")
    return lines
