"""Commands, files, and the daemons the test bed starts: spawn, stop, sweep, unmount, cgroups."""

import concurrent.futures
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time

from .config import TestbedError, log


SWEEPABLE = frozenset(("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2",
                       "docker-proxy", "docker-registry", "sshd", "ssh-agent", "kr-forward"))
_CHILDREN = {}


def run(argv, timeout=120, cwd=None, env=None, log_path=None, what=None):
    """Run a command to completion; raise TestbedError with its output tail when it fails."""
    what = what or argv[0]
    try:
        if log_path:
            with open(log_path, "ab") as out:
                result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        cwd=cwd, env=env, timeout=timeout, check=False)
            output = tail(log_path)
        else:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=cwd, env=env, timeout=timeout, check=False)
            output = (result.stdout + result.stderr).decode("utf-8", "replace")
    except subprocess.TimeoutExpired as exc:
        raise TestbedError("%s timed out after %d s: %s" % (what, timeout, shlex.join(argv))) from exc
    except OSError as exc:
        raise TestbedError("%s could not run: %s" % (what, exc)) from exc
    if result.returncode != 0:
        raise TestbedError("%s failed (exit %d): %s\n%s" % (what, result.returncode, shlex.join(argv), _last_lines(output)))
    return output if not log_path else ""


def _last_lines(text, count=20):
    return "\n".join(text.rstrip().splitlines()[-count:])


def tail(path, count=20):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            return _last_lines(handle.read().decode("utf-8", "replace"), count)
    except OSError:
        return "(no log at %s)" % path


def write_file(path, text, mode=0o644):
    """Write text atomically; return True when the content changed."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def _proc_stat(pid):
    """(state, parent pid, start time) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), fields[19]


def _process_entry(pid):
    stat = _proc_stat(pid)
    return {"name": " ".join(process_cmdline(pid)[:1]), "pid": pid, "starttime": stat[2] if stat else None}


def process_alive(entry):
    stat = _proc_stat(entry["pid"])
    return stat is not None and stat[0] != "Z" and stat[2] == entry.get("starttime")


def _descendants(pid):
    children = {}
    for other in _pids():
        stat = _proc_stat(other)
        if stat:
            children.setdefault(stat[1], []).append(other)
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(_process_entry(child))
            queue.append(child)
    return found


def spawn(kind, name, argv, log_path, env=None, executable=None, **extra):
    """Start a daemon detached from this process's session; return its state entry. executable: the program to run
    when argv[0] is only the name it shows."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                    env=env, executable=executable, start_new_session=True)
        except OSError as exc:
            raise TestbedError("cannot start %s: %s" % (name, exc)) from exc
    _CHILDREN[proc.pid] = proc
    entry = {"kind": kind, "name": name, "pid": proc.pid, "starttime": _proc_stat(proc.pid)[2], "log": log_path}
    entry.update(extra)
    return entry


def stop_process(entry, timeout=30):
    """SIGTERM, then SIGKILL after timeout; then SIGKILL whatever of its process tree outlived it."""
    if process_alive(entry):
        family = _descendants(entry["pid"])
        _kill(entry["pid"], signal.SIGTERM)
        if not _wait_dead(entry, timeout):
            log("%s (pid %d) ignored SIGTERM for %d s, killing it" % (entry["name"], entry["pid"], timeout))
            _kill(entry["pid"], signal.SIGKILL)
            _wait_dead(entry, 10)
        for member in family:
            if process_alive(member):
                _kill(member["pid"], signal.SIGKILL)
                _wait_dead(member, 10)
    child = _CHILDREN.pop(entry["pid"], None)
    if child is not None:
        child.poll()


def _kill(pid, signum):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_dead(entry, timeout):
    deadline = time.monotonic() + timeout
    while process_alive(entry):
        child = _CHILDREN.get(entry["pid"])
        if child is not None:
            child.poll()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for(what, ready, timeout, entry=None):
    deadline = time.monotonic() + timeout
    while not ready():
        if entry is not None and not process_alive(entry):
            raise TestbedError("%s exited during startup; last lines of %s:\n%s" % (what, entry["log"], tail(entry["log"])))
        if time.monotonic() > deadline:
            detail = "; last lines of %s:\n%s" % (entry["log"], tail(entry["log"])) if entry else ""
            raise TestbedError("%s not ready after %d s%s" % (what, timeout, detail))
        time.sleep(0.1)


def sweep_processes(path, timeout=10):
    """SIGKILL test bed daemons (by executable name) whose command line mentions path; wait until gone."""
    prefix = path.rstrip("/") + "/"
    for pid in _pids():
        argv = process_cmdline(pid)
        if argv and os.path.basename(argv[0]) in SWEEPABLE and any(prefix in arg + "/" for arg in argv):
            log("killing leftover %s (pid %d)" % (os.path.basename(argv[0]), pid))
            entry = _process_entry(pid)
            _kill(pid, signal.SIGKILL)
            _wait_dead(entry, timeout)
            with contextlib.suppress(KeyError):
                _CHILDREN.pop(pid).poll()


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != os.getpid()]


def process_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def _mounts():
    """(mount point, fstype) of every mount, deepest last."""
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, dummy, right = line.partition(" - ")
            point = left.split()[4].encode().decode("unicode_escape")
            mounts.append((point, right.split()[0]))
    return mounts


def unmount_under(path):
    prefix = path.rstrip("/") + "/"
    points = [mount[0] for mount in _mounts() if mount[0] == path or mount[0].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        if subprocess.run(["umount", point], stderr=subprocess.DEVNULL, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL, check=False)


def remove_tree(path):
    """rm -rf each top-level entry in parallel (unlinks are slow on discard-mounted disks), never crossing a mount."""
    entries = [os.path.join(path, name) for name in os.listdir(path)] if os.path.isdir(path) else []
    if entries:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(entries)) as pool:
            list(pool.map(lambda entry: run(["rm", "-rf", "--one-file-system", entry], timeout=600), entries))
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def remove_cgroup(name):
    """Kill what is left in cgroup /<name> of every hierarchy and remove it."""
    roots = [os.path.join(point, name) for point, fstype in _mounts() if fstype in ("cgroup", "cgroup2")]
    for root in [root for root in roots if os.path.isdir(root)]:
        for current in [walked[0] for walked in os.walk(root, topdown=False)]:
            _kill_cgroup_members(current)
            _rmdir_retry(current)


def _kill_cgroup_members(path):
    with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.procs"), encoding="utf-8") as handle:
        for pid in handle.read().split():
            _kill(int(pid), signal.SIGKILL)


def _rmdir_retry(path, timeout=5):
    deadline = time.monotonic() + timeout
    while os.path.isdir(path):
        try:
            os.rmdir(path)
        except OSError:
            if time.monotonic() > deadline:
                log("could not remove cgroup %s" % path)
                return
            time.sleep(0.1)


def binary_path(name, env):
    found = shutil.which(name, path=env["PATH"])
    if not found:
        raise TestbedError("%s not found in %s" % (name, env["PATH"]))
    return found
