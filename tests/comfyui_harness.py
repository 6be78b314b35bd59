"""Drive a real ComfyUI install for the integration tests.

``COMFYUI_DIR`` names a ComfyUI folder (``main.py`` inside) whose own Python is
``COMFYUI_PYTHON`` or ``COMFYUI_DIR/.venv/bin/python``. The pack is linked into
a ``custom_nodes`` folder of the test's own (``--base-directory``: the install's
folders are never touched, and two ComfyUIs in one session cannot remove each
other's link), ComfyUI runs on 127.0.0.1 with ``--cpu`` and our environment
points the pack at the fake fal server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import websocket  # websocket-client

ROOT = Path(__file__).resolve().parents[1]
PACK_LINK_NAME = "comfyui-fal-qwen-edit"


def comfyui_location() -> tuple[Path, Path] | None:
    folder = os.environ.get("COMFYUI_DIR")
    if not folder:
        return None
    folder = Path(folder)
    python = Path(os.environ.get("COMFYUI_PYTHON") or folder / ".venv" / "bin" / "python")
    if not (folder / "main.py").is_file() or not python.exists():
        return None
    return folder, python


def front_end_root() -> list[str]:
    """``COMFYUI_FRONT_END_ROOT``: another frontend's static folder (an unzipped comfyui-frontend-package
    wheel's ``comfyui_frontend_package/static``) instead of the one the install ships."""
    root = os.environ.get("COMFYUI_FRONT_END_ROOT")
    return ["--front-end-root", root] if root else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyUI:
    """One ComfyUI process with a websocket listener that records every message."""

    def __init__(self, folder: Path, python: Path, env: dict[str, str], workdir: Path):
        self.folder, self.python = folder, python
        self.base_dir = workdir  # models, custom_nodes, input, output, temp and user all live here
        self.input_dir, self.output_dir = workdir / "input", workdir / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "comfyui.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = uuid.uuid4().hex
        self.messages: list[dict] = []        # JSON messages
        self.queued: set[str] = set()         # prompts queued with our client id: their messages reach us
        self.progress_texts: list[tuple[str, str]] = []  # (node id, text) from binary frames
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.ws: websocket.WebSocket | None = None

    def start(self, timeout: float = 120.0) -> "ComfyUI":
        link = self.base_dir / "custom_nodes" / PACK_LINK_NAME
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(ROOT, target_is_directory=True)
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [str(self.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
             "--disable-auto-launch", "--base-directory", str(self.base_dir), *front_end_root()],
            cwd=self.folder, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early; see {self.log_path}")
            try:
                self.get("/system_stats")
                break
            except OSError:
                time.sleep(0.25)
        else:
            raise RuntimeError(f"ComfyUI did not answer within {timeout}s; see {self.log_path}")
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}",
                                              timeout=5)
        threading.Thread(target=self._listen, daemon=True).start()
        return self

    def _listen(self) -> None:
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except Exception:  # noqa: BLE001 - socket closed at shutdown
                return
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self.messages.append(json.loads(data))
            elif opcode == websocket.ABNF.OPCODE_BINARY and len(data) >= 8:
                kind = int.from_bytes(data[:4], "big")
                if kind == 3:  # BinaryEventTypes.TEXT: node-id length, node id, text
                    size = int.from_bytes(data[4:8], "big")
                    self.progress_texts.append((data[8:8 + size].decode(), data[8 + size:].decode()))

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would: no cleanup runs in ComfyUI."""
        if self.ws:
            self.ws.close()
        os.killpg(self.process.pid, 9)
        self.process.wait(timeout=15)
        self.log.close()

    def stop(self) -> None:
        if self.ws:
            self.ws.close()
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=15)
        if getattr(self, "log", None):
            self.log.close()

    # ------------------------------------------------------------------ HTTP
    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: dict | None = None):
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"POST {path} → {exc.code}: {exc.read()[:2000]!r}") from None
        return json.loads(text) if text.strip() else None

    def queue(self, prompt: dict, workflow: dict | None = None) -> str:
        extra = {"extra_pnginfo": {"workflow": workflow}} if workflow else {}
        prompt_id = self.post("/prompt", {"prompt": prompt, "client_id": self.client_id,
                                          "extra_data": extra})["prompt_id"]
        self.queued.add(prompt_id)
        return prompt_id

    def wait(self, prompt_id: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    if prompt_id in self.queued:
                        self._wait_for_last_message(prompt_id, deadline)
                    return entry
            time.sleep(0.1)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout}s")

    def _wait_for_last_message(self, prompt_id: str, deadline: float) -> None:
        """/history can report the end before the websocket listener has read the prompt's last
        message; tests read those messages, so wait for it too."""
        last = ("execution_success", "execution_error", "execution_interrupted")
        while not any(self.events(kind, prompt_id) for kind in last):
            if time.monotonic() > deadline:
                raise AssertionError(f"prompt {prompt_id} ended without its last websocket message")
            time.sleep(0.02)

    def events(self, kind: str, prompt_id: str) -> list[dict]:
        return [m["data"] for m in self.messages
                if m.get("type") == kind and m.get("data", {}).get("prompt_id") == prompt_id]


def install_inputs(input_dir: Path) -> None:
    for image in (ROOT / "example_workflows" / "inputs").glob("*.png"):
        shutil.copy(image, input_dir / image.name)
