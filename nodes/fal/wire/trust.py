"""One TLS context per CA bundle, shared by every connection of the process.

requests hands urllib3 the *path* of the CA bundle (certifi's by default, or
``verify``/``REQUESTS_CA_BUNDLE``), and urllib3 then builds a new SSLContext
and parses the whole bundle for every new connection: 14-17 ms of CPU each
with OpenSSL 3 (python/cpython#95031), and an edit opens several (storage,
CDN, a fresh connection for each paid submit). A configured SSLContext is
thread-safe and meant to be shared (Python's ssl docs), so each new https
connection gets the one built for its bundle. Verification is unchanged: the same
bundle, CERT_REQUIRED and hostname checking, with urllib3's own defaults.
"""

from __future__ import annotations

import functools
import os
import ssl

from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs


@functools.lru_cache(maxsize=8)
def _context(cafile: str | None, capath: str | None, version: tuple) -> ssl.SSLContext:
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_verify_locations(cafile=cafile, capath=capath)
    return context


def verifying_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """The context that trusts exactly this bundle file or directory, as it is now
    (a bundle replaced on disk is loaded again, as requests would)."""
    bundle = cafile or capath
    version: tuple[int, ...] = ()  # no bundle, or a missing one: let load_verify_locations report it
    if bundle:
        try:
            stat = os.stat(bundle)
            version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            pass
    return _context(cafile, capath, version)


def share_context(connection) -> None:
    """For a new, not yet connected urllib3 HTTPSConnection that would load a CA bundle:
    use the shared context for that bundle instead. Anything else is left as it is."""
    cafile, capath = getattr(connection, "ca_certs", None), getattr(connection, "ca_cert_dir", None)
    if not (cafile or capath) or getattr(connection, "ssl_context", True) is not None \
            or resolve_cert_reqs(getattr(connection, "cert_reqs", None)) != ssl.CERT_REQUIRED:
        return  # nothing to verify with, a context of its own, or a urllib3 this module does not know
    connection.ssl_context = verifying_context(cafile, capath)
    connection.ca_certs = connection.ca_cert_dir = None  # else urllib3 loads them into it again
