"""The wire: connection settings and keys, where each call goes (fal, gateway, proxy), TLS trust, pooled sending with retries, the SSE reader. Uses base only."""
