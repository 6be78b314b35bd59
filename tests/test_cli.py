"""The README's main command, run as a newcomer would, and the CLI's error paths."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.cli.main import demo_input

from conftest import KEY, client_environ, gradient, to_u8

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--json"]


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker}[^>]*-->\s*```bash\n(.+?)\n```", text)
    assert match, f"README has no {marker} block"
    return match.group(1)


def run(args, env_extra=None, timeout=60, home=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    with tempfile.TemporaryDirectory(prefix="fal-cli-home-") as own_home:  # journal and cache land in here
        env.update({"HOME": str(home or own_home), "FAL_QWEN_EDIT_CONFIG": "/nonexistent.ini"}, **(env_extra or {}))
        return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=timeout)


def test_readme_main_command_produces_an_edited_image(tmp_path):
    command = readme_command("main-command")
    # The last step is the CLI itself; the install steps before it are what .venv already did.
    cli_args = shlex.split(command.split("&&")[-1])
    assert cli_args[0].endswith("fal-qwen-edit") and "--demo" in cli_args
    out = tmp_path / "edited"
    cli_args[cli_args.index("--out") + 1] = str(out)
    done = run(cli_args[1:])
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    [written] = info["files"]
    edited = np.asarray(Image.open(written))
    original = np.asarray(Image.open(out / "demo-input.png"))
    assert np.array_equal(original, to_u8(demo_input()))
    assert np.array_equal(edited, 255 - original)
    assert "IN_QUEUE (queue position 2)" in done.stderr and "fal: denoising" in done.stderr
    assert "COMPLETED" in done.stderr


def test_readme_has_exactly_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert text.count("```bash") == 2
    assert "pytest" in readme_command("test-command") and "--demo" in readme_command("main-command")


def test_cli_with_files_and_options_against_fake_server(tmp_path):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(gradient(30, 40))).save(source)
    with FakeFal(key=KEY, max_lifetime=60).start() as server:
        done = run([str(source), "--prompt", "p", "--num-images", "2", "--seed", "3", "--width", "80",
                    "--height", "64", "--out", str(tmp_path / "o"), "--no-stream"],
                   {"FAL_KEY": KEY, "FAL_QUEUE_BASE": server.url, "FAL_REST_BASE": server.url})
        assert done.returncode == 0, done.stderr
        [job] = server.jobs.values()
        assert job.arguments["image_size"] == {"width": 80, "height": 64} and job.arguments["seed"] == 3
    info = json.loads(done.stdout)
    assert len(info["files"]) == 2 and Image.open(info["files"][0]).size == (80, 64)
    assert KEY not in done.stdout + done.stderr


@pytest.mark.parametrize("mode", ["gateway_result_only", "gateway_task", "proxy"])
def test_cli_edit_and_result_of_on_every_shape_of_server(mode, tmp_path):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(gradient(24, 30))).save(source)
    with FakeFal(key=KEY, mode=mode, queue_time=0.2, run_time=0.3, max_lifetime=60).start() as server:
        environ = client_environ(server)
        done = run([str(source), "--prompt", "p", "--seed", "7", "--out", str(tmp_path / "o")], environ, home=tmp_path)
        assert done.returncode == 0, done.stderr
        [request_id] = list(server.jobs)
        fetched = run(["--result-of", request_id, "--out", str(tmp_path / "again")], environ, home=tmp_path)
        assert fetched.returncode == 0, fetched.stderr
        assert server.submissions == 1
    edited = np.asarray(Image.open(json.loads(done.stdout)["files"][0]))
    assert np.array_equal(edited, 255 - to_u8(gradient(24, 30)))
    assert np.array_equal(np.asarray(Image.open(json.loads(fetched.stdout)["files"][0])), edited)
    assert KEY not in done.stdout + done.stderr + fetched.stdout + fetched.stderr


def test_cli_errors_are_readable_and_keyless(tmp_path):
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(gradient(8, 8))).save(source)
    missing = run([str(source), "--prompt", "p"])
    assert missing.returncode == 2 and "No fal key found" in missing.stderr
    bad = run([str(source), "--prompt", "p", "--steps", "500"], {"FAL_KEY": KEY})
    assert bad.returncode == 2 and "num_inference_steps: 500 is out of range" in bad.stderr
    not_image = tmp_path / "x.png"
    not_image.write_text("hello")
    broken = run([str(not_image), "--prompt", "p"], {"FAL_KEY": KEY})
    assert broken.returncode == 2 and "not a readable image" in broken.stderr
    assert KEY not in missing.stderr + bad.stderr + broken.stderr


def test_demo_stays_on_the_fake_server_whatever_this_machine_has_configured(tmp_path):
    hostile = {"FAL_GATEWAY_URL": "https://gateway.invalid", "FAL_MODE": "gateway", "FAL_UPLOAD": "storage",
               "FAL_QUEUE_BASE": "https://queue.invalid", "FAL_REST_BASE": "https://rest.invalid",
               "MY_REAL_KEY": KEY}
    done = run(["--demo", "--key-env", "MY_REAL_KEY", "--out", str(tmp_path / "o")], hostile)
    assert done.returncode == 0, done.stderr
    assert "--key-env is ignored" in done.stderr and re.search(r"^request [0-9a-f-]{36}$", done.stderr, re.M)
    assert KEY not in done.stdout + done.stderr


def test_ctrl_c_cancels_the_job_on_fal(tmp_path):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(gradient(16, 16))).save(source)
    with FakeFal(key=KEY, run_time=30.0, max_lifetime=60).start() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
        env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=server.url, FAL_REST_BASE=server.url, FAL_API_BASE=server.url, HOME=str(tmp_path),
                   FAL_QWEN_EDIT_CONFIG="/nonexistent.ini")
        cli = subprocess.Popen(CLI + [str(source), "--prompt", "p", "--out", str(tmp_path / "o")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while not server.jobs and time.monotonic() < deadline:
                time.sleep(0.02)
            [request_id] = list(server.jobs)
            cli.send_signal(signal.SIGINT)
            out, err = cli.communicate(timeout=20)
        finally:
            cli.kill()
        assert cli.returncode == 130, err
        assert [r for r, _ in server.cancel_requests] == [request_id]
    assert "cancelled" in err and request_id in err and KEY not in out + err


def test_the_installed_command_is_the_same_cli():
    command = Path(sys.executable).parent / "fal-qwen-edit"
    assert command.exists(), "pip install did not create the fal-qwen-edit command"
    done = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "--demo" in done.stdout and "--result-of" in done.stdout


def test_cli_sends_fals_guards_and_keeps_a_no_store_result_for_result_of(tmp_path):
    from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(gradient(20, 24))).save(source)
    with FakeFal(key=KEY, max_lifetime=60).start() as server:
        server.store_io_retention = server.store_io_retention_large = 0.2
        environ = {"FAL_KEY": KEY, "FAL_QUEUE_BASE": server.url, "FAL_REST_BASE": server.url,
                   "FAL_QWEN_EDIT_STATE_DIR": str(tmp_path / "state")}
        done = run([str(source), "--prompt", "p", "--start-timeout", "45", "--priority", "low", "--no-store",
                    "--out", str(tmp_path / "o")], environ, home=tmp_path)
        assert done.returncode == 0, done.stderr
        [job] = server.jobs.values()
        assert (job.start_deadline, job.priority, job.store_io) == (45.0, "low", False)
        time.sleep(0.4)  # fal has forgotten it by now
        fetched = run(["--result-of", job.request_id, "--out", str(tmp_path / "again")], environ, home=tmp_path)
        assert fetched.returncode == 0, fetched.stderr
        assert json.loads(fetched.stdout)["source"] == "cache" and server.submissions == 1
        bad = run([str(source), "--prompt", "p", "--start-timeout", "1"], environ, home=tmp_path)
        assert bad.returncode == 2 and "--start-timeout must be auto, 0" in bad.stderr and server.submissions == 1


def plain(args, home):
    """The CLI as a newcomer types it: no --json, no key, no config anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "XDG_"))}
    env["HOME"] = str(home)
    return subprocess.run(CLI[:-1] + args, capture_output=True, text=True, env=env, timeout=120)


def test_the_demo_ends_with_the_edited_images_path_not_json(tmp_path):
    done = plain(["--demo", "--out", str(tmp_path / "edited")], tmp_path)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    edited = Path(line)
    assert edited.is_file() and edited.parent == tmp_path / "edited" and edited.suffix == ".png"
    assert f"input:  {tmp_path / 'edited' / 'demo-input.png'}" in done.stderr and "details: --json" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_first_run_without_a_key_lists_the_history_instead_of_a_traceback(tmp_path):
    done = plain(["--history"], tmp_path)
    assert done.returncode == 0 and "no jobs yet" in done.stderr and "Traceback" not in done.stderr
    asked = plain(["--history", "--from-fal"], tmp_path)
    assert asked.returncode == 0 and "needs a working key" in asked.stderr and "Traceback" not in asked.stderr


def test_check_names_where_state_and_config_live_and_a_config_file_the_user_can_write(tmp_path):
    done = plain(["--check"], tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    config = tmp_path / ".config" / "comfyui-fal-qwen-edit" / "config.ini"
    assert f"state: {tmp_path / '.cache' / 'comfyui-fal-qwen-edit'}" in done.stdout
    assert f"config: {config} (none yet" in done.stdout and "site-packages" not in done.stdout
    assert "fal key: not set" in done.stdout and "FAIL connection: No fal key found" in done.stdout
    config.parent.mkdir(parents=True)
    config.write_text(f"[fal]\nkey = {KEY}\n")
    told = plain(["--check"], tmp_path).stdout
    assert f"fal key: {config} [fal] key" in told and KEY not in told
