"""Live progress on a ComfyUI node: progress bar + text (queue position, elapsed, latest fal log).

Updates arrive on the pipeline's worker thread; they are handed to ComfyUI's
event loop. We do not use ``comfy.utils.ProgressBar``: its hook raises
ComfyUI's interrupt exception inside our callback, which would skip sending
fal's cancel request. Instead Cancel is noticed by the pipeline's cancel hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from typing import Iterator

import comfy.model_management
from server import PromptServer
from comfy_execution.progress import get_progress_state

from .fal.base.errors import CancelledError, FalError
from .fal.queue.client import Progress

STEP = re.compile(r"(\d+)\s*/\s*(\d+)")  # "12/50" in a log line gives a real fraction


@contextlib.contextmanager
def node_progress(node_id: str | None, jobs: int = 1) -> Iterator["NodeProgress"]:
    """Live progress around one ``execute``. Set ``summary`` on success: it replaces the live
    text. A CancelledError from the pipeline (fal's cancel already sent) ends the run as
    ComfyUI's own interrupt, which also clears its flag."""
    progress = NodeProgress(node_id, jobs).start()
    try:
        yield progress
    except CancelledError:
        comfy.model_management.throw_exception_if_processing_interrupted()
        raise
    finally:
        progress.stop(progress.summary)


_SHORT_NAMES: dict[type, type] = {}


def shown_as_short_name(exc: FalError) -> FalError:
    """The same error (a subclass of its own class) under a name ComfyUI shows short: it names an
    exception's type by module and class, which for this pack is the whole import path
    (``…comfyui-fal-qwen-edit.nodes.fal.base.errors.AuthError``); here it reads ``fal.AuthError``."""
    kind = type(exc)
    if kind.__module__ != "fal":
        if kind not in _SHORT_NAMES:
            _SHORT_NAMES[kind] = type(kind.__name__, (kind,), {"__module__": "fal", "__qualname__": kind.__name__,
                                                               "__doc__": kind.__doc__})
        exc.__class__ = _SHORT_NAMES[kind]
    return exc


def failure_text(exc: BaseException) -> str:
    return f"✖ fal: {type(exc).__name__}\n{exc}"


@contextlib.contextmanager
def node_errors(node_id: str | None = None) -> Iterator[None]:
    """Around a node's whole ``execute``: a FalError (its message says why and what to do) is also left as
    the node's own text, which stays after the run, and reaches ComfyUI as ``fal.<Type>``. Cancel is not a
    failure and passes untouched."""
    try:
        yield
    except CancelledError:
        raise
    except FalError as exc:
        shown_as_short_name(exc)
        if node_id:
            PromptServer.instance.send_progress_text(failure_text(exc), node_id)
        raise


class NodeProgress:
    def __init__(self, node_id: str | None, jobs: int = 1):
        self.node_id = node_id
        self.loop = asyncio.get_running_loop()
        self.started = time.monotonic()
        self.jobs = jobs
        self.states: dict[str, Progress] = {}
        self.last_log = ""
        self.step_fraction: float | None = None
        self._ticker: asyncio.Task | None = None
        self.summary: str | None = None  # the final text, once the work succeeded
        self.estimate: str | None = None  # what the run will cost, shown until it ends

    # --- called on the worker thread
    def __call__(self, progress: Progress) -> None:
        self.states[progress.request_id] = progress
        for line in progress.new_logs:
            self.last_log = line
            match = STEP.search(line)
            if match and 0 < int(match.group(2)) and int(match.group(1)) <= int(match.group(2)):
                self.step_fraction = int(match.group(1)) / int(match.group(2))
        self.loop.call_soon_threadsafe(self.render)

    # --- on the event loop
    def start(self) -> "NodeProgress":
        self._ticker = self.loop.create_task(self._tick())
        self.render()
        return self

    async def _tick(self) -> None:
        while True:  # elapsed time keeps moving even when fal is silent
            await asyncio.sleep(1.0)
            self.render()

    def stop(self, summary: str | None = None) -> None:
        """End the ticker; ``summary`` (on success) replaces the live text."""
        if self._ticker:
            self._ticker.cancel()
        if summary is not None:
            self._send(summary, 1.0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def text(self) -> str:
        elapsed = self.elapsed()
        cost = [f"estimate: {self.estimate}"] if self.estimate else []
        if not self.states:
            return "\n".join([f"fal: uploading inputs… {elapsed:.0f}s", *cost])
        lines = []
        if self.jobs > 1:
            done = sum(p.status == "COMPLETED" for p in self.states.values())
            lines.append(f"fal: {done}/{self.jobs} edits done · {elapsed:.0f}s")
        latest = list(self.states.values())[-1]
        state = latest.status.replace("_", " ").lower()
        if latest.status == "IN_QUEUE" and latest.queue_position is not None:
            state += f" (position {latest.queue_position})"
        lines.append(f"fal {latest.request_id[:8]}: {state} · {elapsed:.0f}s")
        if self.last_log:
            lines.append(self.last_log[:200])
        return "\n".join(lines + cost)

    def fraction(self) -> float:
        if not self.states:
            return 0.02
        values = []
        for p in self.states.values():
            if p.status == "COMPLETED":
                values.append(0.95)
            elif p.status == "IN_PROGRESS":
                guess = 0.1 + 0.8 * (1 - math.exp(-p.elapsed / 30.0))
                values.append(0.1 + 0.85 * self.step_fraction if self.step_fraction is not None else guess)
            else:
                values.append(0.05)
        values += [0.0] * max(0, self.jobs - len(values))
        return sum(values) / max(self.jobs, len(values))

    def render(self) -> None:
        self._send(self.text(), self.fraction())

    def _send(self, text: str, fraction: float) -> None:
        if not self.node_id:
            return
        server = PromptServer.instance
        server.send_progress_text(text, self.node_id)
        value, total = int(fraction * 100), 100
        try:
            get_progress_state().update_progress(self.node_id, value, total, None)
        except Exception:  # noqa: BLE001 - a missing registry must not break the edit
            pass
        server.send_sync("progress", {"value": value, "max": total, "prompt_id": server.last_prompt_id,
                                      "node": self.node_id}, server.client_id)
