"""A fake fal queue + storage + CDN server on 127.0.0.1, for tests, benchmarks and ``--demo``."""
