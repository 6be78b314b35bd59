"""Which hosts this machine trusts, and the one decision "may this host receive this request".

A shared workflow is data: whoever opens one and presses Run must not find that its widget
values chose where their key, their images or a download goes. So every host that can
receive something on a workflow's word (a Connection node, a batch manifest line, a route,
a saved workflow from an older release) is judged here against what the user configured
*on this machine* (the environment and config.ini, or the CLI's own options, which never
reach this check):

* **connection** (a gateway's or proxy's base URL: it receives the key or token, the
  images and the prompt): the origin of ``FAL_GATEWAY_URL`` / ``[gateway] base_url`` and of
  ``FAL_PROXY_URL`` / ``[proxy] url``, plus the hosts listed in ``FAL_TRUSTED_HOSTS`` /
  ``[connection] trusted_hosts`` (comma separated; ``host`` trusts every port of it,
  ``host:port`` that port only). fal direct takes no base URL, so fal's own hosts are
  never named by a workflow at all.
* **download** (Load Image from URL, the output URLs of a server's answer): refused when the
  host's resolved address is loopback, private, link-local, a cloud metadata service,
  unspecified, multicast or otherwise not public, unless ``[downloads] allow_private = on``
  (``FAL_DOWNLOAD_ALLOW_PRIVATE``; metadata, unspecified and multicast stay refused) or the
  host is listed in ``[downloads] allowed_hosts`` (``FAL_DOWNLOAD_HOSTS``). The host names of
  servers configured here (every base URL above, ``FAL_QUEUE_BASE``, ``FAL_REST_BASE``,
  ``FAL_API_BASE``, ``FAL_QUEUE_BACKUP_BASE`` and their config.ini lines, the CLI's
  ``--gateway``/``--proxy``) are not checked, on any port: a test server on 127.0.0.1 serves
  its outputs from a second port.

``key_env`` from a workflow names only variables meant for this pack: ``FAL_…`` (every name
the pack documents starts so), or one listed in ``[connection] allowed_key_envs``
(``FAL_ALLOWED_KEY_ENVS``). Refusals name the host or the variable, never a value.

Resolving and pinning the addresses a download connects to is address_guard.py's job.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

FileReader = Callable[[str, str], str]  # (section, option) → the config file's value, or ""

KEY_ENV_PREFIX = "FAL_"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SWITCH_ON = ("on", "yes", "true", "1")

# Cloud metadata services: they hand out the machine's credentials to whoever asks from inside.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
    "169.254.170.2",    # AWS ECS task metadata
    "169.254.169.123",  # AWS time sync (same link-local service network)
    "fd00:ec2::254",    # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",    # Azure WireServer (a public-looking address that serves the host's config)
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # a NAT64 gateway turns these into the IPv4 address inside
ALWAYS_REFUSED = ("cloud metadata", "unspecified", "multicast")  # even with allow_private


@dataclass(frozen=True)
class Trust:
    """What this machine's environment and config.ini say may receive what."""

    connection_origins: frozenset[tuple[str, int | None]]  # (host, port); port None: any port
    key_envs: frozenset[str]          # allowed beyond FAL_…
    server_hosts: frozenset[str]      # host names of servers configured here (downloads not checked)
    download_hosts: frozenset[str]    # [downloads] allowed_hosts
    allow_private: bool
    config_path: str                  # the config.ini a message tells the user to edit


@dataclass(frozen=True)
class Refusal:
    host: str      # as messages name it: host, or host:port when the port is not the scheme's
    message: str


def read_trust(environ: Mapping[str, str], from_file: FileReader, config_path: str,
               server_urls: Iterable[str] = (), saved: Mapping[str, str] | None = None) -> Trust:
    """The trust settings of this machine. ``server_urls``: base URLs configured some other way
    on this machine (the CLI's ``--gateway``), whose hosts downloads may reach too. ``saved``: what
    the user saved in the fal panel's Keys (saved_keys.py): its gateway URL is configured here too."""
    def both(variable: str, section: str, option: str) -> list[str]:
        return _split(environ.get(variable, "")) + _split(from_file(section, option))

    configured = [environ.get("FAL_GATEWAY_URL", ""), from_file("gateway", "base_url"),
                  environ.get("FAL_PROXY_URL", ""), from_file("proxy", "url"), (saved or {}).get("gateway_url", "")]
    origins = {_origin(url) for url in configured if url.strip()}
    origins |= {_listed(entry) for entry in both("FAL_TRUSTED_HOSTS", "connection", "trusted_hosts")}
    servers = [*configured, *server_urls, *(environ.get(name, "") for name in (
        "FAL_QUEUE_BASE", "FAL_REST_BASE", "FAL_API_BASE", "FAL_QUEUE_BACKUP_BASE"))]
    servers += [from_file("fal", option) for option in ("queue_base", "rest_base", "api_base", "queue_backup_base")]
    server_hosts = {_origin(url)[0] for url in servers if url.strip()} | {host for host, _ in origins}
    allow = (environ.get("FAL_DOWNLOAD_ALLOW_PRIVATE", "") or from_file("downloads", "allow_private")).strip().lower()
    return Trust(connection_origins=frozenset(o for o in origins if o[0]),
                 key_envs=frozenset(both("FAL_ALLOWED_KEY_ENVS", "connection", "allowed_key_envs")),
                 server_hosts=frozenset(h for h in server_hosts if h),
                 download_hosts=frozenset(_listed(e)[0] for e in both("FAL_DOWNLOAD_HOSTS", "downloads", "allowed_hosts")),
                 allow_private=allow in SWITCH_ON, config_path=config_path)


def may_receive(url: str, trust: Trust, *, purpose: str, addresses: Iterable[str] = ()) -> Refusal | None:
    """None when ``url``'s host may receive this request, else why not and how to allow it.

    ``purpose`` "connection": the URL came from a workflow as a gateway or proxy base URL, so it
    would receive the key or token, the images and the prompt. "download": a GET for an image a
    workflow or a server's answer named; ``addresses`` are what its host resolved to (all of them
    are judged: one bad address is enough to refuse)."""
    host, port = _origin(url)
    label = _label(url)
    if purpose == "connection":
        if (host, port) in trust.connection_origins or (host, None) in trust.connection_origins:
            return None
        return Refusal(label, (
            f"The connection's base_url names {label}, which is not a gateway or proxy configured on this "
            f"machine, so nothing was sent to it (no key, no image, no request). A shared workflow cannot "
            f"choose where your key goes. If you trust {label}, add the line 'trusted_hosts = {label}' under "
            f"[connection] in {trust.config_path}, or set FAL_TRUSTED_HOSTS={label}; or clear base_url to use "
            "FAL_GATEWAY_URL / FAL_PROXY_URL."))
    if purpose != "download":
        raise ValueError(f"unknown purpose {purpose!r}")
    if host in trust.server_hosts or host in trust.download_hosts:
        return None
    for text in addresses:
        kind = address_class(text)
        if kind is None or (trust.allow_private and kind not in ALWAYS_REFUSED):
            continue
        how = (f"add 'allowed_hosts = {host}' under [downloads] in {trust.config_path} (or set "
               f"FAL_DOWNLOAD_HOSTS={host})")
        if kind not in ALWAYS_REFUSED:
            how += " to allow this host, or 'allow_private = on' there to allow every private address"
        return Refusal(label, f"Refusing to download from {label}: it resolves to {text}, a {kind} address. "
                              f"A workflow or a server's answer may only make this machine fetch public "
                              f"addresses; if {host} is yours and meant for this, {how}.")
    return None


def address_class(text: str) -> str | None:
    """What kind of non-public address ``text`` is ("loopback", "private", …), None when public."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names a link
    except ValueError:
        return "unparseable"
    inner = _embedded_ipv4(address)
    if inner is not None:
        return address_class(str(inner))
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    for kind, test in (("unspecified", "is_unspecified"), ("multicast", "is_multicast"),
                       ("loopback", "is_loopback"), ("link-local", "is_link_local"), ("private", "is_private")):
        if getattr(address, test):
            return kind
    return None if address.is_global else "reserved (not public)"


def key_env_refusal(name: str, trust: Trust) -> str | None:
    """None when a workflow may name the variable ``name``, else the message (never its value)."""
    if name in trust.key_envs:
        return None  # listed by the user: even a name that looks like a key
    if looks_like_a_key(name):
        return ("key_env takes the NAME of an environment variable (like FAL_KEY), and this looks like a key "
                "itself, so it was not used or shown. Clear that field, and put the key in the environment "
                "or config.ini.")
    if name.startswith(KEY_ENV_PREFIX):
        return None
    return (f"key_env names {name}, a variable not meant for this pack, so it was not read: a shared workflow "
            f"may only name variables starting with {KEY_ENV_PREFIX} (like FAL_KEY or FAL_GATEWAY_TOKEN). "
            f"If {name} is yours and meant for this, add the line 'allowed_key_envs = {name}' under "
            f"[connection] in {trust.config_path}, or set FAL_ALLOWED_KEY_ENVS={name}.")


def looks_like_a_key(text: str) -> bool:
    """A value that cannot be a variable's name, or a long mix of lower case and digits as keys and
    tokens are (names are UPPER_CASE by convention). web/lib/connection_rules.js applies the same rule."""
    text = text.strip()
    if not text:
        return False
    if not ENV_NAME.match(text):
        return True
    return len(text) >= 20 and any(c.islower() for c in text) and sum(c.isdigit() for c in text) >= 3


def _split(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\s]+", text or "") if part.strip()]


def _origin(url: str) -> tuple[str, int | None]:
    """(host name, port) of a URL, the port filled in from the scheme."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or "").rstrip(".").lower(), port or {"http": 80, "https": 443}.get(parts.scheme)


def _listed(entry: str) -> tuple[str, int | None]:
    """A trusted_hosts entry: ``host``, ``host:port``, ``[v6]:port`` or a URL. A bare host trusts every port,
    a URL or host:port only its own."""
    if "://" in entry:
        return _origin(entry)
    try:
        parts = urlsplit("//" + entry)
        return (parts.hostname or "").rstrip(".").lower(), parts.port
    except ValueError:
        return "", None


def _label(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port and port != {"http": 80, "https": 443}.get(parts.scheme) else host


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (::ffff:a.b.c.d, 6to4, Teredo, NAT64), else None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
