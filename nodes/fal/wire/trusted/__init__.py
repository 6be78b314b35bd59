"""What this machine trusts, decided in one place: which hosts may receive a key, a token or a
request (host_trust, address_guard), what a base URL may look like (base_urls), and the keys pasted
into ComfyUI (saved_keys). A workflow, a manifest line or a route never adds to it. Part of the wire
layer: uses base only."""
