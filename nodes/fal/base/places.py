"""Where the pack keeps its state and where the user's config file lives, by platform.

The folders follow each platform's convention, as platformdirs (4.x, ``appauthor=False``) names them,
without adding it as a dependency for three paths:

| platform | state (journal, cache, ledger, history) | config.ini |
|---|---|---|
| Windows | ``%LOCALAPPDATA%\\comfyui-fal-qwen-edit\\Cache`` | ``%LOCALAPPDATA%\\comfyui-fal-qwen-edit`` |
| macOS | ``~/Library/Caches/comfyui-fal-qwen-edit`` | ``~/Library/Application Support/comfyui-fal-qwen-edit`` |
| Linux and others | ``$XDG_CACHE_HOME`` or ``~/.cache``, ``/comfyui-fal-qwen-edit`` | ``$XDG_CONFIG_HOME`` or ``~/.config``, ``/comfyui-fal-qwen-edit`` |

Linux is what the pack always used, so existing state and config are found where they are. The
home folder comes from ``HOME`` where it is set and from the platform otherwise (Windows programs
rarely have ``HOME``: ``USERPROFILE``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping

APP = "comfyui-fal-qwen-edit"


def home(env: Mapping[str, str]) -> Path:
    if env.get("HOME"):
        return Path(env["HOME"])
    if sys.platform == "win32" and env.get("USERPROFILE"):
        return Path(env["USERPROFILE"])
    return Path.home()


def _windows_local(env: Mapping[str, str]) -> Path:
    return Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home(env) / "AppData" / "Local"


def user_state_dir(env: Mapping[str, str], platform: str = sys.platform) -> Path:
    if platform == "win32":
        return _windows_local(env) / APP / "Cache"
    if platform == "darwin":
        return home(env) / "Library" / "Caches" / APP
    return Path(env.get("XDG_CACHE_HOME") or home(env) / ".cache") / APP


def user_config_dirs(env: Mapping[str, str], platform: str = sys.platform) -> list[Path]:
    """The user's config folders, the one to write to first. On Linux ``~/.config`` stays a candidate
    when ``XDG_CONFIG_HOME`` points elsewhere: the pack looked only there before."""
    if platform == "win32":
        return [_windows_local(env) / APP]
    if platform == "darwin":
        return [home(env) / "Library" / "Application Support" / APP, home(env) / ".config" / APP]
    first = Path(env["XDG_CONFIG_HOME"]) / APP if env.get("XDG_CONFIG_HOME") else None
    dot_config = home(env) / ".config" / APP
    return [first, dot_config] if first and first != dot_config else [dot_config]
