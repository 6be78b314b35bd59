"""Node pack internals: ``fal`` (transport, codecs, CLI) and ``fakefal`` (test server)."""
