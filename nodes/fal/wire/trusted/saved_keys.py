"""Keys pasted into ComfyUI itself (the fal panel's Keys section), kept on this machine for the pack.

For people who cannot set environment variables for the app (ComfyUI Desktop) or edit a file in a
hidden folder. They live in ``saved_keys.ini`` in the folder of the user's config file (beside
``$FAL_QWEN_EDIT_CONFIG`` when set, else the platform's config folder, base/places.py), never in a
workflow: created for the owner only (0600 by mkstemp; on Windows the per-user profile folder's
ACL). The environment and config.ini win over it (config.py); the route that writes it answers
only whether a key is set and from where, and takes requests from this machine only.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from ...base.atomic_write import write_atomic
from ...base.errors import ConfigError
from ...base.places import user_config_dirs
from .base_urls import check_base_url

FILE_NAME = "saved_keys.ini"
# what may be saved: kind -> (section, option), as in config.ini
FIELDS = {"fal": ("fal", "key"), "gateway": ("gateway", "token"), "gateway_url": ("gateway", "base_url")}
MAX_KEY_CHARS = 1024


def saved_keys_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("FAL_QWEN_EDIT_CONFIG"):
        return Path(env["FAL_QWEN_EDIT_CONFIG"]).expanduser().parent / FILE_NAME
    return user_config_dirs(env)[0] / FILE_NAME


def read_saved(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """kind -> value of what is saved (only kinds with a value)."""
    parser = configparser.ConfigParser(interpolation=None)
    path = saved_keys_path(environ)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        raise ConfigError(f"Cannot read {path}: clear the keys in the fal panel and save them again.") from None
    found = {}
    for kind, (section, option) in FIELDS.items():
        value = parser.get(section, option, fallback="").strip()
        if value:
            found[kind] = value
    return found


def checked_value(kind: str, value: object) -> str:
    """The value to save, or InputError saying what to change (never quoting a key)."""
    if kind not in FIELDS:
        raise ConfigError(f"Unknown key kind {kind!r}: use one of {', '.join(FIELDS)}.")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("Nothing to save: paste the key, or use Clear to remove it.")
    value = value.strip()
    if kind == "gateway_url":
        check_base_url(value)  # the same rules as FAL_GATEWAY_URL
        if urlsplit(value).query:
            raise ConfigError("A gateway base URL takes no query string: give the token separately.")
        return value.rstrip("/")
    if len(value) > MAX_KEY_CHARS or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ConfigError("That does not look like a key (spaces, line breaks or over 1,024 characters): "
                         "paste only the key itself.")
    return value


def save(kind: str, value: object, environ: Mapping[str, str] | None = None) -> Path:
    """Save one value (checked) and return the file's path."""
    value = checked_value(kind, value)
    _write({**read_saved(environ), kind: value}, environ)
    return saved_keys_path(environ)


def clear(kind: str, environ: Mapping[str, str] | None = None) -> bool:
    """Remove one saved value; whether there was one."""
    if kind not in FIELDS:
        raise ConfigError(f"Unknown key kind {kind!r}: use one of {', '.join(FIELDS)}.")
    saved = read_saved(environ)
    if kind not in saved:
        return False
    del saved[kind]
    _write(saved, environ)
    return True


def _write(values: dict[str, str], environ: Mapping[str, str] | None) -> None:
    lines = ["# Keys saved from ComfyUI (the fal panel). Environment variables and config.ini win over them.\n"]
    for section in dict.fromkeys(section for section, _ in FIELDS.values()):
        entries = [(option, values[kind]) for kind, (sec, option) in FIELDS.items() if sec == section and kind in values]
        if entries:
            lines.append(f"[{section}]\n" + "".join(f"{option} = {value}\n" for option, value in entries))
    path = saved_keys_path(environ)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    write_atomic(path, "".join(lines).encode("utf-8"))
