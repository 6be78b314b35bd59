"""A fake fal queue + storage + CDN server on 127.0.0.1, for tests, benchmarks and ``--demo``."""

from .faults import Fault
from .jobs import Job
from .routes.relay import Relay
from .server import FakeFal
from .wire import RecordedRequest

__all__ = ["FakeFal", "Fault", "Job", "RecordedRequest", "Relay"]
