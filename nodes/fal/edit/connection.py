"""What a workflow may say about the connection (never the key), and one client per setting.

A workflow carries ``ConnectionSettings``: the mode, a gateway base URL, the
*name* of the environment variable that holds the key, and the upload mode.
The key itself is read at run time by ``load_config``. Clients are cached per
resolved setting so every node run reuses the pooled session and the upload
cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pathlib import Path

from ..state.budget import Budget
from ..wire.config import FalConfig, budget_cap, cache_limit_bytes, load_config, state_dir
from ..wire.trusted.host_trust import ENV_NAME
from ..base.errors import ConfigError
from ..state.journal import Journal
from ..state.history import JobHistory
from .job_records import connection_of
from .pipeline import FalEditClient
from ..state.result_cache import ResultCache
from ..queue.way_memory import WayMemory


@dataclass(frozen=True)
class ConnectionSettings:
    mode: str = "auto"      # auto: gateway when a gateway URL is configured, else fal direct
    base_url: str = ""      # gateway base URL; empty: from FAL_GATEWAY_URL / config.ini
    key_env: str = ""       # NAME of the environment variable holding the key; empty: defaults
    upload: str = "auto"
    upload_expiry: str = "default"  # default: FAL_UPLOAD_EXPIRY / config.ini, else config.DEFAULT_UPLOAD_EXPIRY
    keep_on_fal: str = "default"    # on / off (X-Fal-Store-IO: 0); default: FAL_KEEP_ON_FAL / config.ini, else on

    def __post_init__(self):
        key_env = self.key_env.strip()
        if key_env and not ENV_NAME.match(key_env):
            # Someone pasted a key where a variable name belongs: refuse, and do not echo it. (A name
            # that merely looks like a key is judged by load_config, which knows allowed_key_envs.)
            raise ConfigError("key_env takes the NAME of an environment variable (like FAL_KEY), not a key. "
                              "Clear that field, and put the key in the environment or config.ini.")
        if self.base_url and ("@" in self.base_url.split("//", 1)[-1].split("/", 1)[0]):
            raise ConfigError("base_url must not contain credentials (user:password@); "
                              "put the token in the environment or config.ini.")
        if self.base_url and ("?" in self.base_url or "#" in self.base_url):
            # A token in a query string would travel with the workflow: refused, not echoed.
            raise ConfigError("base_url must not carry a query string (?…) or fragment (#…): a token there "
                              "would be saved in the workflow. Put the token in the environment or config.ini.")

    def load(self) -> FalConfig:
        """The config these settings name; base_url and key_env are judged as a shared workflow's
        (load_config's default): only hosts and variables this machine trusts."""
        return load_config(mode=None if self.mode in ("", "auto") else self.mode,
                           base_url=self.base_url.strip() or None,
                           key_env=self.key_env.strip() or None,
                           upload=None if self.upload in ("", "auto") else self.upload,
                           upload_expiry=None if self.upload_expiry in ("", "default") else self.upload_expiry,
                           keep_on_fal=None if self.keep_on_fal in ("", "default") else self.keep_on_fal)


def persistent_client(config: FalConfig, directory: Path | None = None, *, budget_usd: float | None = None,
                      **options) -> FalEditClient:
    """A client with the on-disk job journal, result cache, way memory and spending ledger (see
    config.state_dir); ``budget_usd`` is the daily cap (config.budget_cap when None)."""
    directory = directory or state_dir()
    journal = Journal(directory / "journal")
    journal.sweep()
    cap = budget_cap() if budget_usd is None else budget_usd
    return FalEditClient(config, journal=journal, ways=WayMemory(directory / "ways.json"),
                         cache=ResultCache(directory / "results", cache_limit_bytes()),
                         budget=Budget(directory / "spend.jsonl", cap), history=shared_history(directory),
                         prices_path=directory / "prices.json", **options)


_histories: dict[Path, JobHistory] = {}
_history_lock = threading.Lock()  # not _lock: client_for holds that while it builds a client


def shared_history(directory: Path | None = None) -> JobHistory:
    """One history object per state folder, so listeners (ComfyUI's websocket) hear every client's jobs."""
    directory = Path(directory or state_dir())
    with _history_lock:
        return _histories.setdefault(directory, JobHistory(directory / "history"))


_clients: dict[tuple, FalEditClient] = {}
_lock = threading.Lock()


def client_for(settings: ConnectionSettings | None = None) -> FalEditClient:
    """The shared client for these settings; a changed key gets a new client."""
    config = (settings or ConnectionSettings()).load()
    identity = (config.mode, config.queue_base, config.rest_base, config.proxy_url, config.upload, config.upload_expiry,
                config.key_source, hash(config.key.reveal()), budget_cap(), config.queue_backup_base, config.store_io)
    with _lock:
        client = _clients.get(identity)
        if client is None:
            client = _clients[identity] = persistent_client(
                config, connection=connection_of(config, (settings or ConnectionSettings()).key_env.strip() or None))
        return client
