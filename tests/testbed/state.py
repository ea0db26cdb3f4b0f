"""state.json and the lock that guards it: what the test bed started, and starting a daemon once."""

import contextlib
import fcntl
import json
import os
import threading
import time

from .config import Config, LOCK_TIMEOUT, TestbedError
from .processes import process_alive, spawn, stop_process, wait_for


def new_state(config):
    return {"host": None, "runners": [], "registry": config.registry, "images": {}, "ssh": None, "started": []}


def load_state(config=None):
    config = config or Config()
    try:
        with open(config.state_file, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TestbedError("cannot read %s: %s" % (config.state_file, exc)) from exc


def entry_key(entry):
    return entry["kind"], entry["name"]


class Bed:
    """The state being built, saved after every change so that `down` can always undo a partial `up`."""

    def __init__(self, config, state):
        self.config = config
        self.state = state
        self._lock = threading.Lock()

    def entry(self, kind, name):
        return next((e for e in self.state["started"] if entry_key(e) == (kind, name)), None)

    def record(self, entry):
        with self._lock:
            started = self.state["started"]
            index = next((i for i, e in enumerate(started) if entry_key(e) == entry_key(entry)), None)
            if index is None:
                started.append(entry)
            else:
                started[index] = entry
            self._save()

    def forget(self, entry):
        with self._lock:
            self.state["started"] = [e for e in self.state["started"] if entry_key(e) != entry_key(entry)]
            self._save()

    def save(self):
        with self._lock:
            self._save()

    def _save(self):
        tmp = self.config.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, self.config.state_file)


@contextlib.contextmanager
def locked(directory):
    """Hold an exclusive flock on a directory (created if missing) against other test bed processes."""
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        if _flock(fd, deadline, directory) and _same_dir(fd, directory):
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def _flock(fd, deadline, path):
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError as exc:
            if time.monotonic() > deadline:
                os.close(fd)
                raise TestbedError("another test bed process still holds the lock on %s" % path) from exc
            time.sleep(0.2)


def _same_dir(fd, path):
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def ensure_daemon(bed, kind, name, argv, log_path, ready, timeout, env=None, force=False, **extra):
    """Start the recorded daemon unless it is alive and ready; return True when started."""
    entry = bed.entry(kind, name)
    if entry and not force and process_alive(entry) and ready():
        return False
    if entry:
        stop_process(entry)
        bed.forget(entry)
    entry = spawn(kind, name, argv, log_path, env, **extra)
    bed.record(entry)
    wait_for(name, ready, timeout, entry)
    return True


def entry_alive(bed, kind):
    entry = bed.entry(kind, kind)
    return bool(entry and process_alive(entry))
