"""Connection settings and keys.

Where a key may live (first match wins), so that it never has to be typed into a
widget and never travels inside a workflow:

1. the environment variable named by ``key_env`` (a node or CLI option that
   holds the variable's *name*, never its value);
2. fal direct: ``FAL_KEY``, or ``FAL_KEY_ID`` + ``FAL_KEY_SECRET`` joined by ``:``
   (fal-client's convention); gateway: ``FAL_GATEWAY_TOKEN``;
3. a config file: ``$FAL_QWEN_EDIT_CONFIG``, else ``config.ini`` next to the
   pack (gitignored), else ``config.ini`` in the platform's config folder
   (``~/.config/comfyui-fal-qwen-edit`` on Linux; base/places.py)::

       [fal]
       key = …                 # fal direct
       [gateway]
       base_url = https://…    # makes gateway the default mode
       token = …
       [proxy]
       url = https://your-app.example.com/api/fal/proxy   # fal's server proxy
       token = …               # only for a proxy that checks a token of its own
       [connection]
       upload_expiry = 1d      # how long fal storage keeps uploads (FAL_UPLOAD_EXPIRY)
       keep_on_fal = on        # off: X-Fal-Store-IO: 0, outputs kept here only (FAL_KEEP_ON_FAL)
       [queue]
       start_timeout = auto    # fal's start deadline, seconds or 0 (FAL_START_TIMEOUT; guards.py)
       priority = normal       # or low (FAL_QUEUE_PRIORITY)
       [inputs]
       resize = fit model      # or off (FAL_INPUT_RESIZE)
       upload_format = png     # webp_lossless, jpeg_95 (FAL_UPLOAD_FORMAT)
       [budget]
       daily_usd = 5           # spending cap (FAL_DAILY_BUDGET_USD)

Mode: explicit argument, else ``FAL_MODE`` (``fal``/``gateway``/``proxy``), else
``[connection] mode`` in the file, else gateway when a gateway base URL is
configured (``FAL_GATEWAY_URL`` or the file), else proxy when a proxy URL is
(``FAL_PROXY_URL`` or the file), else fal direct. fal direct's hosts can be moved
with ``FAL_QUEUE_BASE`` / ``FAL_REST_BASE`` (tests and ``--demo`` point them at the
fake server), and its backup host with ``FAL_QUEUE_BACKUP_BASE`` (backup.py); through a proxy, the targets in ``x-fal-target-url`` are always
fal's own hosts, the only ones fal's proxy forwards to.
A proxy holds the fal key itself, so proxy mode needs no key on this machine.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

from ..base.errors import ConfigError, FalError, MissingKeyError, register_secret
from ..base.places import user_config_dirs, user_state_dir
from .trusted.base_urls import check_base_url
from .trusted.saved_keys import read_saved, saved_keys_path
from .backup import default_backup, on_origin
from .trusted.host_trust import key_env_refusal, may_receive, read_trust
from .routing import origin

FAL_QUEUE_BASE = "https://queue.fal.run"
FAL_REST_BASE = "https://rest.fal.ai"
FAL_API_BASE = "https://api.fal.ai"  # fal's Platform API: request history, prices
PACK_DIR = Path(__file__).resolve().parents[3]  # nodes/fal/wire/config.py → the pack
UPLOAD_MODES = ("auto", "storage", "data_uri")
MODES = ("fal", "gateway", "proxy")
# How long fal storage keeps an uploaded input (fal-client 1.0.3's presets; "never": fal's own retention).
UPLOAD_EXPIRIES = {"1h": 3600, "1d": 86400, "7d": 604800, "30d": 2592000, "never": None}
DEFAULT_UPLOAD_EXPIRY = "1d"  # private photos off fal's CDN within a day; jobs start within minutes
SWITCH = {"on": True, "yes": True, "true": True, "1": True, "off": False, "no": False, "false": False, "0": False}


class Secret:
    """A key that refuses to show itself in reprs, f-strings and logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        # Pickling (e.g. into a cache or an execution history) would write the key.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class FalConfig:
    key: Secret = field(repr=False)  # may be empty in proxy mode: the proxy holds the fal key
    mode: str = "fal"  # "fal": fal's queue with "Key"; "gateway": {base} with "Bearer"; "proxy": see routing.py
    queue_base: str = FAL_QUEUE_BASE
    rest_base: str = FAL_REST_BASE
    upload: str = "auto"  # auto = fal storage (direct or through the proxy), data URIs through a gateway
    key_source: str = ""  # where the key came from, safe to print ("env FAL_KEY")
    proxy_url: str = ""   # proxy mode: every fal API call goes here, with x-fal-target-url
    upload_expiry: str = DEFAULT_UPLOAD_EXPIRY  # how long fal storage keeps uploaded inputs (UPLOAD_EXPIRIES)
    api_base: str = FAL_API_BASE  # fal direct only: the Platform API (request history, prices)
    queue_backup_base: str = ""  # fal direct: where a queue call goes when queue_base cannot be reached (backup.py)
    store_io: bool = True  # keep_on_fal; False: submits carry X-Fal-Store-IO: 0 (guards.py)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"Unknown connection mode {self.mode!r}: use one of {', '.join(MODES)}.")
        if self.upload not in UPLOAD_MODES:
            raise ConfigError(f"Unknown upload mode {self.upload!r}: use one of {', '.join(UPLOAD_MODES)}.")
        if self.upload_expiry not in UPLOAD_EXPIRIES:
            raise ConfigError(f"Unknown upload_expiry {self.upload_expiry!r}: use one of {', '.join(UPLOAD_EXPIRIES)}.")
        if self.mode == "proxy" and not self.proxy_url:
            raise ConfigError("Proxy mode needs the proxy's URL.")
        if self.queue_backup_base and self.mode != "fal":
            raise ConfigError("Only fal direct has a backup host (a gateway and fal's proxy are hosts of their own).")
        for base in (self.queue_base, self.rest_base, self.api_base, *(url for url in (self.proxy_url, self.queue_backup_base) if url)):
            check_base_url(base)

    @property
    def auth_scheme(self) -> str:
        return "Key" if self.mode == "fal" else "Bearer"

    @property
    def uses_storage(self) -> bool:
        if self.upload == "auto":
            return self.mode in ("fal", "proxy")
        return self.upload == "storage"

    @property
    def connection_id(self) -> str:
        """Which queue a job lives in, as this client reaches it (journal and way memory keys)."""
        return f"{self.proxy_url} -> {self.queue_base}" if self.mode == "proxy" else self.queue_base

    def auth_header(self) -> dict[str, str]:
        if not self.key:
            return {}  # proxy mode without a token: the proxy adds fal's key
        return {"Authorization": f"{self.auth_scheme} {self.key.reveal()}"}

    def is_api_url(self, url: str) -> bool:
        """A call to fal's queue or REST API (not a CDN, not a presigned upload URL)."""
        hosts = {origin(self.queue_base), origin(self.rest_base)}
        if self.mode == "fal":
            hosts.add(origin(self.api_base))  # the Platform API: the key goes there only in fal direct
        if self.queue_backup_base:
            hosts.add(origin(self.queue_backup_base))  # fal's own host: fal-client sends the key there too
        return origin(url) in hosts

    def on_backup(self, url: str) -> bool:
        return bool(self.queue_backup_base) and origin(url) == origin(self.queue_backup_base)

    def other_queue_host(self, url: str) -> str | None:
        """``url`` on the other of the queue's two hosts (primary ↔ backup), or None when it has none."""
        if not self.queue_backup_base:
            return None
        if origin(url) == origin(self.queue_base):
            return on_origin(url, self.queue_backup_base)
        return on_origin(url, self.queue_base) if self.on_backup(url) else None

    def may_send_key_to(self, url: str) -> bool:
        """Only the configured hosts ever receive the key (never a CDN, never a host
        named in a server's reply); through a proxy, only the proxy gets its token."""
        if self.mode == "proxy":
            return origin(url) == origin(self.proxy_url)
        return self.is_api_url(url)


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the job journal, the result cache, the ledger and the history live:
    ``$FAL_QWEN_EDIT_STATE_DIR``, else the platform's cache folder (base/places.py)."""
    env = os.environ if environ is None else environ
    if env.get("FAL_QWEN_EDIT_STATE_DIR"):
        return Path(env["FAL_QWEN_EDIT_STATE_DIR"]).expanduser()
    return user_state_dir(env)


def cache_limit_bytes(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        return max(0, int(float(env.get("FAL_QWEN_EDIT_CACHE_MB", "2048")) * 1024 * 1024))
    except ValueError:
        raise ConfigError("FAL_QWEN_EDIT_CACHE_MB must be a number of megabytes.") from None


def input_defaults(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(input_resize, upload_format) where an edit names neither: ``FAL_INPUT_RESIZE`` /
    ``FAL_UPLOAD_FORMAT``, else ``[inputs] resize`` / ``upload_format`` in the config file, else
    ("fit model", "png"). Checked where they are used (inputs.check_modes)."""
    env = os.environ if environ is None else environ
    parser, _ = _read_config_file(env)
    resize = env.get("FAL_INPUT_RESIZE", "") or parser.get("inputs", "resize", fallback="") or "fit model"
    upload_format = env.get("FAL_UPLOAD_FORMAT", "") or parser.get("inputs", "upload_format", fallback="") or "png"
    return resize.strip().lower().replace("-", " "), upload_format.strip().lower()


def budget_cap(environ: Mapping[str, str] | None = None) -> float | None:
    """The daily spending cap in USD (budget.py): ``FAL_DAILY_BUDGET_USD``, else ``[budget] daily_usd``
    in the config file; None when neither is set (no cap)."""
    env = os.environ if environ is None else environ
    text = env.get("FAL_DAILY_BUDGET_USD", "").strip()
    where = "FAL_DAILY_BUDGET_USD"
    if not text:
        parser, file_path = _read_config_file(env)
        text, where = parser.get("budget", "daily_usd", fallback="").strip(), f"{file_path} [budget] daily_usd"
    if not text:
        return None
    try:
        cap = float(text)
    except ValueError:
        cap = -1.0
    if not cap >= 0:  # also refuses NaN
        raise ConfigError(f"{where} must be a number of US dollars, like 5 or 2.50.")
    return cap


def config_file_candidates(environ: Mapping[str, str]) -> list[Path]:
    """Where config.ini is looked for, the first found wins: ``$FAL_QWEN_EDIT_CONFIG``, the pack's
    folder (a git clone in custom_nodes), the platform's config folder (base/places.py)."""
    paths = []
    if environ.get("FAL_QWEN_EDIT_CONFIG"):
        paths.append(Path(environ["FAL_QWEN_EDIT_CONFIG"]).expanduser())
    paths.append(PACK_DIR / "config.ini")
    paths.extend(folder / "config.ini" for folder in user_config_dirs(environ))
    return paths


def writable_config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The config file to tell a user to write (or that the pack writes a key from ComfyUI's Settings
    into): the one in use if there is one, else ``$FAL_QWEN_EDIT_CONFIG``, else the platform's
    config folder. Never the pack's folder inside site-packages, which a reinstall wipes."""
    env = os.environ if environ is None else environ
    for path in config_file_candidates(env):
        if path.is_file():
            return path
    if env.get("FAL_QWEN_EDIT_CONFIG"):
        return Path(env["FAL_QWEN_EDIT_CONFIG"]).expanduser()
    return user_config_dirs(env)[0] / "config.ini"


def _read_config_file(environ: Mapping[str, str]) -> tuple[configparser.ConfigParser, str]:
    parser = configparser.ConfigParser(interpolation=None)
    for path in config_file_candidates(environ):
        if path.is_file():
            try:
                parser.read(path, encoding="utf-8")
            except configparser.Error as exc:
                # The parser's message can quote a line of the file, which may hold the key.
                raise ConfigError(f"Cannot parse {path}: {type(exc).__name__}. Check its [sections] and key = value lines.") from None
            return parser, str(path)
    return parser, ""


def load_config(*, mode: str | None = None, base_url: str | None = None,
                key_env: str | None = None, upload: str | None = None, upload_expiry: str | None = None,
                keep_on_fal: str | None = None, environ: Mapping[str, str] | None = None,
                from_user: bool = False) -> FalConfig:
    """Build a FalConfig from arguments, the environment and the config file.

    ``from_user``: ``base_url`` and ``key_env`` are the user's own words on this machine (the CLI's
    --gateway, --proxy, --key-env). Left False, as for a Connection node, a manifest or a route, they
    are a shared file's: a base URL must name a host this machine trusts and key_env a FAL_ variable
    (host_trust.py), checked before any key is read or anything is sent."""
    env = os.environ if environ is None else environ
    parser, file_path = _read_config_file(env)

    def from_file(section: str, option: str) -> str:
        return parser.get(section, option, fallback="").strip()

    saved = read_saved(env)  # keys pasted into ComfyUI (saved_keys.py): the environment and the file win
    if not from_user and (base_url or key_env):
        trust = read_trust(env, from_file, file_path or str(config_file_candidates(env)[0]), saved=saved)
        refusal = may_receive(base_url, trust, purpose="connection") if base_url else None
        problem = refusal.message if refusal else key_env_refusal(key_env, trust) if key_env else None
        if problem:
            raise ConfigError(problem)

    gateway_url = _gateway_url(env, from_file, file_path, saved)[0].rstrip("/")
    proxy_url = (env.get("FAL_PROXY_URL", "") or from_file("proxy", "url")).rstrip("/")
    mode = (mode or env.get("FAL_MODE", "") or from_file("connection", "mode")
            or ("gateway" if base_url or gateway_url else "proxy" if proxy_url else "fal")).strip().lower()
    upload = (upload or env.get("FAL_UPLOAD", "") or from_file("connection", "upload") or "auto").strip().lower()
    upload_expiry = (upload_expiry or env.get("FAL_UPLOAD_EXPIRY", "") or from_file("connection", "upload_expiry")
                     or DEFAULT_UPLOAD_EXPIRY).strip().lower()
    if mode not in MODES:
        raise ConfigError(f"Unknown connection mode {mode!r}: use one of {', '.join(MODES)}.")
    keep = (keep_on_fal or env.get("FAL_KEEP_ON_FAL", "") or from_file("connection", "keep_on_fal") or "on").strip().lower()
    if keep not in SWITCH:
        raise ConfigError(f"keep_on_fal must be on or off, not {keep!r} (FAL_KEEP_ON_FAL, [connection] keep_on_fal).")

    # ``base_url`` (the node's field, the CLI's --gateway/--proxy) is the gateway's base or the proxy's URL.
    queue_base = (env.get("FAL_QUEUE_BASE", "") or from_file("fal", "queue_base") or FAL_QUEUE_BASE).rstrip("/")
    rest_base = (env.get("FAL_REST_BASE", "") or from_file("fal", "rest_base") or FAL_REST_BASE).rstrip("/")
    # Set but empty, FAL_QUEUE_BACKUP_BASE turns the fallback off; a moved queue base has none of its own.
    backup = env["FAL_QUEUE_BACKUP_BASE"] if "FAL_QUEUE_BACKUP_BASE" in env else \
        parser.get("fal", "queue_backup_base", fallback=None)
    backup = (default_backup(queue_base) if backup is None else backup.strip()).rstrip("/") if mode == "fal" else ""
    if mode == "gateway":
        queue_base = rest_base = (base_url or gateway_url).rstrip("/")
        if not queue_base:
            raise ConfigError("Gateway mode needs a base URL: set FAL_GATEWAY_URL, or base_url under [gateway] in config.ini.")
        default_vars, file_section, file_option = ("FAL_GATEWAY_TOKEN",), "gateway", "token"
    elif mode == "proxy":
        proxy_url = (base_url or proxy_url).rstrip("/")
        if not proxy_url:
            raise ConfigError("Proxy mode needs the proxy's URL (e.g. https://your-app.example.com/api/fal/proxy): "
                              "set FAL_PROXY_URL, or url under [proxy] in config.ini.")
        default_vars, file_section, file_option = ("FAL_PROXY_TOKEN",), "proxy", "token"
        # The targets are fal's own hosts: the proxy's allow-list admits no others (FAL_QUEUE_BASE and
        # FAL_REST_BASE move fal direct, e.g. onto a test server, not what a proxy forwards to).
        queue_base, rest_base = FAL_QUEUE_BASE, FAL_REST_BASE
    else:
        default_vars, file_section, file_option = ("FAL_KEY",), "fal", "key"

    key, source = _find_key(mode, key_env, default_vars, env, from_file(file_section, file_option),
                            f"{file_path} [{file_section}] {file_option}", saved)
    if not key and mode == "proxy" and not key_env:
        source = "none: the proxy adds fal's key"
    elif not key:
        where = (f"the environment variable {key_env}" if key_env else
                 f"{' or '.join(default_vars)} in the environment, or '{file_option} = …' under [{file_section}] in "
                 f"{writable_config_file(env)}")
        what = {"fal": "fal key", "gateway": "gateway token", "proxy": "proxy token"}[mode]
        raise MissingKeyError(f"No {what} found. Put it in {where}"
                              f"{', or paste it in the fal panel (Keys)' if mode != 'proxy' and not key_env else ''}.")

    # A queue moved elsewhere (a test server, --demo) takes the Platform API along unless that is set
    # too: its key must not go to api.fal.ai.
    moved = queue_base if mode == "fal" and queue_base != FAL_QUEUE_BASE else ""
    api_base = (env.get("FAL_API_BASE", "") or from_file("fal", "api_base") or moved or FAL_API_BASE).rstrip("/")
    return FalConfig(key=Secret(key), mode=mode, queue_base=queue_base, rest_base=rest_base,
                     upload=upload, key_source=source, proxy_url=proxy_url if mode == "proxy" else "",
                     upload_expiry=upload_expiry, queue_backup_base=backup, store_io=SWITCH[keep],
                     api_base=api_base)


def _find_key(mode: str, key_env: str | None, default_vars: tuple[str, ...], env: Mapping[str, str],
              in_file: str, file_where: str, saved: Mapping[str, str]) -> tuple[str, str]:
    """(key, where it came from), first found: ``key_env`` alone when given; else the mode's
    variables, fal-client's FAL_KEY_ID + FAL_KEY_SECRET, config.ini, what was saved from ComfyUI."""
    for name in (key_env,) if key_env else default_vars:
        if env.get(name, "").strip():
            return env[name].strip(), f"environment variable {name}"
    if key_env:
        return "", ""
    if mode == "fal" and env.get("FAL_KEY_ID") and env.get("FAL_KEY_SECRET"):
        return f"{env['FAL_KEY_ID'].strip()}:{env['FAL_KEY_SECRET'].strip()}", "FAL_KEY_ID + FAL_KEY_SECRET"
    if in_file:
        return in_file, file_where
    if mode in ("fal", "gateway") and saved.get(mode):
        return saved[mode], f"saved from ComfyUI ({saved_keys_path(env)})"
    return "", ""


def _gateway_url(env: Mapping[str, str], from_file: Callable[[str, str], str], file_path: str,
                 saved: Mapping[str, str]) -> tuple[str, str]:
    """(the gateway's base URL, where it came from), first set: FAL_GATEWAY_URL, config.ini, the panel's Keys."""
    for url, where in ((env.get("FAL_GATEWAY_URL", ""), "environment variable FAL_GATEWAY_URL"),
                      (from_file("gateway", "base_url"), f"{file_path} [gateway] base_url"),
                      (saved.get("gateway_url", ""), f"saved from ComfyUI ({saved_keys_path(env)})")):
        if url.strip():
            return url.strip(), where
    return "", ""


def key_status(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, object]]:
    """For the fal panel and --check: per key kind, whether one is set and where from (never the key),
    and which mode an edit without a Connection node uses."""
    env = os.environ if environ is None else environ
    parser, file_path = _read_config_file(env)
    saved = read_saved(env)
    status: dict[str, dict[str, object]] = {}
    for kind, variables, section, option in (("fal", ("FAL_KEY",), "fal", "key"),
                                             ("gateway", ("FAL_GATEWAY_TOKEN",), "gateway", "token")):
        _, source = _find_key(kind, None, variables, env, parser.get(section, option, fallback="").strip(),
                              f"{file_path} [{section}] {option}", saved)
        status[kind] = {"set": bool(source), "source": source, "saved": kind in saved}
    url, where = _gateway_url(env, lambda section, option: parser.get(section, option, fallback=""), file_path, saved)
    status["gateway_url"] = {"set": bool(url), "source": where, "saved": "gateway_url" in saved,
                             "host": urlsplit(url).hostname or ""}
    try:
        status["mode"] = {"in_use": load_config(environ=env).mode}
    except FalError as exc:
        status["mode"] = {"in_use": "", "problem": str(exc)}
    return status

