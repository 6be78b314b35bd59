"""The state layer on every platform: locks without fcntl, Windows' sharing rules, per-platform folders,
files told apart without inode numbers. Run as they are and again, by tests/test_no_posix.py, in a
Python where the POSIX-only modules cannot be imported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.base import atomic_write, places
from comfyui_fal_qwen_edit.nodes.fal.base.file_lock import os_lock_available, try_lock
from comfyui_fal_qwen_edit.nodes.fal.base.tail_reader import Tail, read_new_lines
from comfyui_fal_qwen_edit.nodes.fal.runner.results import FolderBusyError, ResultsFile
from comfyui_fal_qwen_edit.nodes.fal.wire import config as cfg
from conftest import KEY

NO_POSIX = os.environ.get("FAL_QWEN_EDIT_NO_POSIX_TIER") == "1"


def test_the_lock_is_the_os_lock_unless_posix_modules_are_blocked():
    assert os_lock_available() is not NO_POSIX
    if NO_POSIX:
        with pytest.raises(ImportError):
            import fcntl  # noqa: F401


def _hold_lock_then_wait(lock_file):
    code = textwrap.dedent(f"""
        import sys, time
        from comfyui_fal_qwen_edit.nodes.fal.runner.results import ResultsFile
        with ResultsFile({str(lock_file)!r}):
            print("held", flush=True)
            time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_folder_lock_left_by_a_process_killed_with_sigkill_is_taken_over(tmp_path):
    child = _hold_lock_then_wait(tmp_path)
    with pytest.raises(FolderBusyError, match="Another fal-qwen-edit batch"):
        ResultsFile(tmp_path).__enter__()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    if NO_POSIX:  # a lock file, not an OS lock: still there, naming a dead owner
        assert (tmp_path / ".results.jsonl.lock").exists()
    with ResultsFile(tmp_path) as results:  # taken over: the next run goes on
        results.append({"key": "k", "status": "done"})
    assert ResultsFile(tmp_path).latest()["k"]["status"] == "done"


def test_two_processes_running_the_same_edit_make_one_submit(fake_fal, tmp_path):
    fake_fal.run_time = 1.5
    source = tmp_path / "in.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_") or k == "FAL_QWEN_EDIT_NO_POSIX_TIER"}
    env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=fake_fal.url, FAL_REST_BASE=fake_fal.url, FAL_API_BASE=fake_fal.url,
               HOME=str(tmp_path), FAL_QWEN_EDIT_STATE_DIR=str(tmp_path / "state"),
               FAL_QWEN_EDIT_CONFIG=str(tmp_path / "none.ini"))
    runs = [subprocess.Popen([sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", str(source),
                              "--prompt", "p", "--seed", "5", "--json", "--out", str(tmp_path / f"out{i}")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outcomes = [run.communicate(timeout=90) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outcomes]
    assert fake_fal.submissions == 1  # the second waited on the claim, then found the first's job or result
    assert not list((tmp_path / "state" / "journal").glob("*.lock"))  # lock files do not pile up


def test_replacing_and_removing_wait_out_a_reader_holding_the_file(tmp_path, monkeypatch):
    # On Windows a file another process holds open cannot be replaced or removed: PermissionError.
    real_replace, real_unlink, refusals = os.replace, os.unlink, {"replace": 3, "unlink": 3}

    def replace(src, dst):
        if refusals["replace"]:
            refusals["replace"] -= 1
            raise PermissionError(13, "The process cannot access the file")
        real_replace(src, dst)

    def unlink(path):
        if refusals["unlink"]:
            refusals["unlink"] -= 1
            raise PermissionError(13, "The process cannot access the file")
        real_unlink(path)

    monkeypatch.setattr(atomic_write.os, "replace", replace)
    monkeypatch.setattr(atomic_write.os, "unlink", unlink)
    target = tmp_path / "state.json"
    atomic_write.write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and refusals["replace"] == 0
    assert atomic_write.remove_file(target) and not target.exists() and refusals["unlink"] == 0
    assert atomic_write.remove_file(target) is False


def test_a_reader_that_never_lets_go_is_reported_not_waited_on_forever(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_write, "SHARING_WAIT", 0.05)
    monkeypatch.setattr(atomic_write.os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError(13, "held")))
    started = time.monotonic()
    with pytest.raises(PermissionError):
        atomic_write.write_atomic(tmp_path / "x.json", b"data")
    assert time.monotonic() - started < 2 and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("platform, env, state, config", [
    ("win32", {"LOCALAPPDATA": r"C:\Users\a\AppData\Local", "USERPROFILE": r"C:\Users\a"},
     r"C:\Users\a\AppData\Local/comfyui-fal-qwen-edit/Cache", r"C:\Users\a\AppData\Local/comfyui-fal-qwen-edit"),
    ("darwin", {"HOME": "/Users/a"}, "/Users/a/Library/Caches/comfyui-fal-qwen-edit",
     "/Users/a/Library/Application Support/comfyui-fal-qwen-edit"),
    ("linux", {"HOME": "/home/a"}, "/home/a/.cache/comfyui-fal-qwen-edit", "/home/a/.config/comfyui-fal-qwen-edit"),
    ("linux", {"HOME": "/home/a", "XDG_CACHE_HOME": "/c", "XDG_CONFIG_HOME": "/x"}, "/c/comfyui-fal-qwen-edit",
     "/x/comfyui-fal-qwen-edit"),
])
def test_state_and_config_live_in_each_platforms_own_folders(platform, env, state, config):
    assert str(places.user_state_dir(env, platform)).replace("\\", "/") == state.replace("\\", "/")
    assert str(places.user_config_dirs(env, platform)[0]).replace("\\", "/") == config.replace("\\", "/")


def test_linux_keeps_finding_the_config_it_always_read(tmp_path):
    old = tmp_path / ".config" / "comfyui-fal-qwen-edit" / "config.ini"
    old.parent.mkdir(parents=True)
    old.write_text(f"[fal]\nkey = {KEY}\n")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "elsewhere")}
    assert cfg.load_config(environ=env).key.reveal() == KEY
    assert cfg.state_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "comfyui-fal-qwen-edit"
    assert cfg.state_dir({"HOME": str(tmp_path), "FAL_QWEN_EDIT_STATE_DIR": "/s"}).as_posix() == "/s"


def test_a_rewritten_file_is_read_again_even_where_the_platform_gives_no_file_id(tmp_path, monkeypatch):
    # FAT, exFAT and many network shares on Windows report st_ino 0: the bytes must decide.
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    real_fstat = os.fstat
    monkeypatch.setattr("comfyui_fal_qwen_edit.nodes.fal.base.tail_reader.os.fstat",
                        lambda fd: os.stat_result((*real_fstat(fd)[:1], 0, 0, *real_fstat(fd)[3:10])))
    lines, tail, restarted = read_new_lines(path, Tail())
    assert restarted and len(lines) == 2
    with open(path, "ab") as handle:
        handle.write(b'{"c": 3}\n')
    lines, tail, restarted = read_new_lines(path, tail)
    assert not restarted and lines == [b'{"c": 3}']
    # compaction: the oldest lines dropped, as long as before, the same last bytes before the offset
    atomic_write.write_atomic(path, b'{"x": 0}\n{"b": 2}\n{"c": 3}\n')
    lines, tail, restarted = read_new_lines(path, tail)
    assert restarted and lines[0] == b'{"x": 0}'


def test_try_lock_is_exclusive_across_threads_of_one_process(tmp_path):
    first = try_lock(tmp_path / "x.lock")
    assert first is not None and try_lock(tmp_path / "x.lock") is None
    first.release()
    again = try_lock(tmp_path / "x.lock")
    assert again is not None
    again.release()


def test_a_file_system_without_flock_gets_lock_files_instead(tmp_path, monkeypatch):
    # filelock raises NotImplementedError where flock is not supported (some network shares)
    from comfyui_fal_qwen_edit.nodes.fal.base import file_lock
    import filelock

    class NoFlock(filelock.SoftFileLock):
        def acquire(self, *args, **kwargs):
            raise NotImplementedError("FileSystem does not appear to support flock; use SoftFileLock instead")

    monkeypatch.setattr(file_lock.filelock, "FileLock", NoFlock)
    first = try_lock(tmp_path / "x.lock")
    assert isinstance(first, filelock.SoftFileLock) and not isinstance(first, NoFlock)
    assert try_lock(tmp_path / "x.lock") is None
    first.release()
    assert not (tmp_path / "x.lock").exists()


def test_an_empty_lock_file_left_by_a_holder_killed_before_it_wrote_its_record_is_cleared(tmp_path, monkeypatch):
    # Without an OS lock, a holder killed between creating its lock file and writing its pid leaves an
    # empty file that filelock never breaks (it reads as an older filelock's holder).
    from comfyui_fal_qwen_edit.nodes.fal.base import file_lock
    import filelock

    class NoFlock(filelock.SoftFileLock):
        def acquire(self, *args, **kwargs):
            raise NotImplementedError("FileSystem does not appear to support flock")

    monkeypatch.setattr(file_lock.filelock, "FileLock", NoFlock)
    path = tmp_path / "spend.jsonl.lock"
    path.write_bytes(b"")
    assert try_lock(path) is None  # fresh: a holder may be writing its record right now
    old = time.time() - file_lock.RECORDLESS_AGE - 1
    os.utime(path, (old, old))
    lock = try_lock(path)
    assert lock is not None and path.read_bytes() != b""  # taken, with this process's record
    lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
