"""Real Docker test bed for kohakuriver.docker.

One Host engine, runner engines (Debian 12 Docker 20.10 and Debian 13 Docker 26) each in its
own network namespace, a local registry holding base images built here, and an sshd on loopback.
Standard library only: it runs before any virtualenv exists.

    python3 tests/testbed/testbed.py up [--runners N] | down | status | env
"""

import argparse
import base64
import concurrent.futures
import contextlib
import fcntl
import glob
import hashlib
import http.client
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse

HOST_SOCKET = "/var/run/docker.sock"
HOST_PIDFILE = "/var/run/docker.pid"
NETNS_DIR = "/var/run/netns"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PACKAGES = ("docker.io", "docker-registry", "debootstrap", "busybox-static", "openssh-server", "iproute2", "util-linux", "tar")
DOCKER26_PACKAGES = ("docker.io", "containerd", "tini")
DOCKER26_SUITE = "trixie"
BOOTSTRAP_SUITE = "bookworm"
BOOTSTRAP_INCLUDE = "python3,python3-pip,ca-certificates"
SLIM_DPKG_CONFIG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
"""
SLIM_REMOVE = ("usr/share/man/*", "usr/share/groff/*", "usr/share/info/*", "usr/share/lintian/*", "usr/share/locale/*",
               "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*")
SWEEPABLE = frozenset(("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2",
                       "docker-proxy", "docker-registry", "sshd", "ssh-agent"))
MAX_STATE_DIR_LEN = 60
LOCK_TIMEOUT = 1800

_CHILDREN = {}


class TestbedError(Exception):
    """A piece of the test bed could not be brought up, checked or torn down."""

    __test__ = False


def log(message):
    print("[testbed] " + message, file=sys.stderr, flush=True)


class Config:
    """Locations and ports, from the environment."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.state_dir = os.path.abspath(env.get("KR_TESTBED_DIR", "/var/tmp/kohakuriver-testbed"))
        self.cache_dir = os.path.abspath(env.get("KR_TESTBED_CACHE", "/var/cache/kohakuriver-testbed"))
        self.registry = env.get("KR_TESTBED_REGISTRY", "127.0.0.1:5000")
        self.ssh_port = int(env.get("KR_TESTBED_SSH_PORT", "2222"))
        self.mirror = env.get("KR_TESTBED_MIRROR")
        self.runners = int(env.get("KR_TESTBED_RUNNERS", "2"))
        self.prefix = env.get("KR_TESTBED_PREFIX", "kr-")

    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    def cache(self, *parts):
        return os.path.join(self.cache_dir, *parts)

    @property
    def state_file(self):
        return self.path("state.json")


class Node:
    """A runner: a containerd and a dockerd in network namespace <prefix><name>, containers in cgroup /<prefix><name>."""

    def __init__(self, config, index):
        self.index = index
        self.name = "runner%d" % index
        self.netns = config.prefix + self.name
        self.dir = config.path(self.name)
        self.generation = "26" if index % 2 == 0 else "20.10"

    @property
    def socket(self):
        return os.path.join(self.dir, "docker.sock")

    @property
    def containerd_socket(self):
        return os.path.join(self.dir, "containerd", "containerd.sock")

    @property
    def netns_path(self):
        return os.path.join(NETNS_DIR, self.netns)


class ImageSpec:
    """A base image built here from Debian packages, cached as a `docker save` archive."""

    def __init__(self, key, repo, tag, change, builder, recipe):
        self.key = key
        self.repo = repo
        self.tag = tag
        self.change = change
        self.builder = builder
        self.recipe = recipe

    @property
    def short(self):
        return "%s:%s" % (self.repo, self.tag)

    def full(self, registry):
        return "%s/%s" % (registry, self.short)

    @property
    def _stem(self):
        """File name stem that changes with the recipe, so that a changed recipe means a rebuild."""
        digest = hashlib.sha256("\0".join((self.recipe, self.change)).encode()).hexdigest()[:12]
        return "%s-%s-%s" % (self.repo.split("/")[-1], self.tag, digest)

    def rootfs(self, config):
        return config.cache("rootfs", self._stem + ".tar")

    def archive(self, config):
        return config.cache("images", self._stem + ".docker.tar")


# ---------------------------------------------------------------- commands and files

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


def ensure_packages(packages=PACKAGES):
    missing = _missing_packages(packages)
    if not missing:
        return
    log("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends"] + missing
    try:
        run(install, timeout=900, env=env, what="apt-get install")
    except TestbedError:
        run(["apt-get", "update"], timeout=600, env=env, what="apt-get update")
        run(install, timeout=900, env=env, what="apt-get install")


def _missing_packages(packages):
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n"] + list(packages),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    installed = {line.split()[0] for line in result.stdout.decode().splitlines() if line.endswith(" installed")}
    return [package for package in packages if package not in installed]


def debian_source(config):
    """(mirror URI, keyring) of the Debian main archive this machine's apt already uses."""
    codename = _os_release().get("VERSION_CODENAME", BOOTSTRAP_SUITE)
    for entry in _apt_sources():
        if codename in entry["suites"] and "main" in entry["components"]:
            return config.mirror or entry["uri"], entry["keyring"] or DEFAULT_KEYRING
    return config.mirror or DEFAULT_MIRROR, DEFAULT_KEYRING


def _os_release():
    values = {}
    with contextlib.suppress(OSError), open("/etc/os-release", encoding="utf-8") as handle:
        for line in handle:
            key, dummy, value = line.strip().partition("=")
            values[key] = value.strip('"')
    return values


def _apt_sources():
    entries = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        entries.extend(_one_line_sources(path))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        entries.extend(_deb822_sources(path))
    return entries


def _one_line_sources(path):
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as handle:
        for line in handle:
            text = line.split("#", 1)[0].strip()
            options = ""
            if "[" in text:
                before, dummy, rest = text.partition("[")
                options, dummy, after = rest.partition("]")
                text = before + after
            words = text.split()
            if len(words) < 4 or words[0] != "deb":
                continue
            keyring = next((opt.split("=", 1)[1] for opt in options.split() if opt.startswith("signed-by=")), None)
            yield {"uri": words[1], "suites": [words[2]], "components": words[3:], "keyring": keyring}


def _deb822_sources(path):
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as handle:
        for block in handle.read().split("\n\n"):
            fields = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, dummy, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                yield {"uri": uri, "suites": fields.get("suites", "").split(),
                       "components": fields.get("components", "").split(), "keyring": fields.get("signed-by")}


# ---------------------------------------------------------------- processes

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
    return {"name": " ".join(_cmdline(pid)[:1]), "pid": pid, "starttime": stat[2] if stat else None}


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


def spawn(kind, name, argv, log_path, env=None, **extra):
    """Start a daemon detached from this process's session; return its state entry."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                    env=env, start_new_session=True)
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
        argv = _cmdline(pid)
        if argv and os.path.basename(argv[0]) in SWEEPABLE and any(prefix in arg + "/" for arg in argv):
            log("killing leftover %s (pid %d)" % (os.path.basename(argv[0]), pid))
            entry = _process_entry(pid)
            _kill(pid, signal.SIGKILL)
            _wait_dead(entry, timeout)
            with contextlib.suppress(KeyError):
                _CHILDREN.pop(pid).poll()


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != os.getpid()]


def _cmdline(pid):
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


# ---------------------------------------------------------------- Docker Engine API

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout, blocksize=1 << 20)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """Minimal Docker Engine API client on a unix socket (no SDK before the virtualenv exists)."""

    def __init__(self, name, socket_path):
        self.name = name
        self.socket_path = socket_path

    @property
    def docker_host(self):
        return "unix://" + self.socket_path

    def call(self, method, path, body=None, headers=None, timeout=60, ok=(200, 201, 204)):
        conn = _UnixHTTPConnection(self.socket_path, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise TestbedError("%s: %s %s failed: %s" % (self.name, method, path, exc)) from exc
        finally:
            conn.close()
        if response.status not in ok:
            raise TestbedError("%s: %s %s -> HTTP %d: %s" % (self.name, method, path, response.status, _api_message(data)))
        return response.status, data

    def stream(self, method, path, what, body=None, headers=None, timeout=900):
        """Call an endpoint answering with a JSON progress stream; raise on an error message in it."""
        data = self.call(method, path, body=body, headers=headers, timeout=timeout)[1]
        messages = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                messages.append(json.loads(line))
        for message in messages:
            if message.get("error"):
                raise TestbedError("%s: %s failed: %s" % (self.name, what, message["error"]))
        return messages

    def ping(self, timeout=2):
        try:
            return self.call("GET", "/_ping", timeout=timeout)[1] == b"OK"
        except TestbedError:
            return False

    def version(self):
        return json.loads(self.call("GET", "/version")[1])

    def has_image(self, name):
        return self.image_id(name) is not None

    def image_id(self, name):
        status, data = self.call("GET", "/images/%s/json" % _quote(name), ok=(200, 404))
        return json.loads(data)["Id"] if status == 200 else None

    def load(self, archive):
        with open(archive, "rb") as body:
            headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(body.fileno()).st_size)}
            self.stream("POST", "/images/load?quiet=1", "load " + archive, body=body, headers=headers)

    def import_rootfs(self, rootfs, repo, tag, change):
        query = urllib.parse.urlencode({"fromSrc": "-", "repo": repo, "tag": tag, "changes": change})
        with open(rootfs, "rb") as body:
            headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(body.fileno()).st_size)}
            self.stream("POST", "/images/create?" + query, "import " + rootfs, body=body, headers=headers)

    def save(self, name, dest):
        conn = _UnixHTTPConnection(self.socket_path, 600)
        tmp = dest + ".tmp"
        try:
            conn.request("GET", "/images/get?" + urllib.parse.urlencode({"names": name}))
            response = conn.getresponse()
            if response.status != 200:
                raise TestbedError("%s: save %s -> HTTP %d: %s" % (self.name, name, response.status, _api_message(response.read())))
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (OSError, http.client.HTTPException) as exc:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise TestbedError("%s: save %s failed: %s" % (self.name, name, exc)) from exc
        finally:
            conn.close()
        os.replace(tmp, dest)

    def tag(self, source, target):
        repo, dummy, tag = target.rpartition(":")
        self.call("POST", "/images/%s/tag?%s" % (_quote(source), urllib.parse.urlencode({"repo": repo, "tag": tag})))

    def push(self, name):
        repo, dummy, tag = name.rpartition(":")
        auth = base64.urlsafe_b64encode(b"{}").decode()
        self.stream("POST", "/images/%s/push?tag=%s" % (_quote(repo), _quote(tag)), "push " + name, headers={"X-Registry-Auth": auth})

    def remove_image(self, name):
        self.call("DELETE", "/images/%s" % _quote(name), ok=(200, 404))

    def pull(self, name):
        repo, dummy, tag = name.rpartition(":")
        query = urllib.parse.urlencode({"fromImage": repo, "tag": tag})
        self.stream("POST", "/images/create?" + query, "pull " + name, timeout=600)

    def images(self):
        return json.loads(self.call("GET", "/images/json?all=1")[1])

    def containers(self):
        return json.loads(self.call("GET", "/containers/json?all=1")[1])

    def remove_container(self, container_id):
        self.call("DELETE", "/containers/%s?force=1&v=1" % container_id, ok=(204, 404))

    def run_true(self, image):
        """Run `true` in a container on the default bridge and remove it."""
        spec = json.dumps({"Image": image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "bridge"}})
        data = self.call("POST", "/containers/create", body=spec, headers={"Content-Type": "application/json"})[1]
        container = json.loads(data)["Id"]
        try:
            self.call("POST", "/containers/%s/start" % container)
            data = self.call("POST", "/containers/%s/wait" % container, timeout=60)[1]
            code = json.loads(data).get("StatusCode")
            if code != 0:
                raise TestbedError("%s: `docker run --rm %s true` exited %s" % (self.name, image, code))
        finally:
            self.call("DELETE", "/containers/%s?force=1" % container, ok=(204, 404))


def quote_reference(text):
    return urllib.parse.quote(text, safe="/:@")


_quote = quote_reference


def _api_message(data):
    try:
        return json.loads(data).get("message", data.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return data.decode("utf-8", "replace").strip()


def registry_request(address, path, headers=None, timeout=5):
    """(status, body) of a GET on the registry, or (None, b"") when it does not answer."""
    host, dummy, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None, b""
    finally:
        conn.close()


def registry_answers(address):
    return registry_request(address, "/v2/", timeout=2)[0] == 200


def registry_image_id(address, spec):
    """The image ID (config digest) the registry holds under the spec's name, or None."""
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    status, body = registry_request(address, "/v2/%s/manifests/%s" % (spec.repo, spec.tag), {"Accept": accept})
    if status != 200:
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return json.loads(body)["config"]["digest"]
    return None


def socket_answers(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def ssh_banner(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


# ---------------------------------------------------------------- state

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


def _entry_key(entry):
    return entry["kind"], entry["name"]


class Bed:
    """The state being built, saved after every change so that `down` can always undo a partial `up`."""

    def __init__(self, config, state):
        self.config = config
        self.state = state
        self._lock = threading.Lock()

    def entry(self, kind, name):
        return next((e for e in self.state["started"] if _entry_key(e) == (kind, name)), None)

    def record(self, entry):
        with self._lock:
            started = self.state["started"]
            index = next((i for i, e in enumerate(started) if _entry_key(e) == _entry_key(entry)), None)
            if index is None:
                started.append(entry)
            else:
                started[index] = entry
            self._save()

    def forget(self, entry):
        with self._lock:
            self.state["started"] = [e for e in self.state["started"] if _entry_key(e) != _entry_key(entry)]
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
def _locked(directory):
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


# ---------------------------------------------------------------- daemons owned by the test bed

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


def ensure_host(bed):
    engine = Engine("host", HOST_SOCKET)
    if not engine.ping():
        _start_host(bed, engine)
    version = engine.version()
    bed.state["host"] = {"name": "host", "docker_host": engine.docker_host,
                         "engine_version": version["Version"], "api_version": version["ApiVersion"]}
    return engine


def _start_host(bed, engine):
    ours = bed.entry("dockerd", "host")
    if ours:
        stop_process(ours, timeout=60)
        bed.forget(ours)
    foreign = _pidfile_process(HOST_PIDFILE)
    if foreign:
        log("a dockerd (pid %d) runs without answering on %s yet; waiting for it" % (foreign, HOST_SOCKET))
        wait_for("Host dockerd pid %d" % foreign, engine.ping, 60)
        return
    dockerd = shutil.which("dockerd", path=SYSTEM_PATH)
    if not dockerd:
        raise TestbedError("dockerd not found in %s although docker.io is installed" % SYSTEM_PATH)
    log("starting the Host engine (%s)" % dockerd)
    entry = spawn("dockerd", "host", [dockerd], bed.config.path("host", "dockerd.log"), socket=HOST_SOCKET)
    bed.record(entry)
    wait_for("Host dockerd", engine.ping, 90, entry)


def _pidfile_process(path):
    try:
        with open(path, encoding="utf-8") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    argv = _cmdline(pid)
    return pid if argv and os.path.basename(argv[0]) == "dockerd" else None


def ensure_registry(bed, ids):
    """Start the registry; an empty storage is first seeded from the cache. Return True when it starts empty."""
    config = bed.config
    directory = config.path("registry")
    data = os.path.join(directory, "data")
    empty = not os.path.isdir(data) or not os.listdir(data)
    if empty:
        shutil.rmtree(data, ignore_errors=True)
        empty = not _copy_registry_seed(config, ids, data)
    os.makedirs(data, exist_ok=True)
    entry = bed.entry("registry", "registry")
    if not (entry and process_alive(entry)) and registry_answers(config.registry):
        raise TestbedError("%s already answers as a registry but was not started by the test bed; stop it or set KR_TESTBED_REGISTRY"
                           % config.registry)
    config_file = os.path.join(directory, "config.yml")
    write_file(config_file, _registry_config(config, directory))
    argv = [_binary("docker-registry", {"PATH": SYSTEM_PATH}), "serve", config_file]
    if ensure_daemon(bed, "registry", "registry", argv, os.path.join(directory, "registry.log"),
                     lambda: registry_answers(config.registry), 30, address=config.registry):
        log("registry listening on %s" % config.registry)
    bed.state["registry"] = config.registry
    return empty


def _registry_seed(config):
    return config.cache("registry-seed")


def _copy_registry_seed(config, ids, data):
    seed = _registry_seed(config)
    try:
        with open(os.path.join(seed, "ids.json"), encoding="utf-8") as handle:
            if json.load(handle) != ids:
                return False
    except (OSError, ValueError):
        return False
    shutil.copytree(os.path.join(seed, "data"), data, symlinks=True)
    return True


def save_registry_seed(config, ids):
    """Keep the registry storage holding exactly the base images, so that a later `up` need not push."""
    seed = _registry_seed(config)
    tmp = tempfile.mkdtemp(prefix="registry-seed-", dir=config.cache_dir)
    try:
        shutil.copytree(config.path("registry", "data"), os.path.join(tmp, "data"), symlinks=True)
        write_file(os.path.join(tmp, "ids.json"), json.dumps(ids, sort_keys=True) + "\n")
        shutil.rmtree(seed, ignore_errors=True)
        os.rename(tmp, seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _registry_config(config, directory):
    return "\n".join((
        "version: 0.1",
        "log:",
        "  level: info",
        "storage:",
        "  filesystem:",
        "    rootdirectory: %s" % os.path.join(directory, "data"),
        "  delete:",
        "    enabled: true",
        "http:",
        "  addr: %s" % config.registry,
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
        "",
    ))


# ---------------------------------------------------------------- images

def build_busybox_rootfs(config, dest):
    """busybox-static in an empty root, applet symlinks at their usual paths, root in /etc/passwd."""
    del config
    busybox = "/bin/busybox"
    applets = [path for path in run([busybox, "--list-full"]).split() if path != "bin/busybox"]
    directories = {"bin", "etc", "root", "tmp", "var", "var/tmp", "dev", "proc", "sys", "home"}
    directories.update(os.path.dirname(path) for path in applets)
    files = {"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
             "etc/group": b"root:x:0:\nnogroup:x:65534:\n"}
    tmp = dest + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for directory in sorted(_with_parents(directories)):
            mode = {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700}.get(directory, 0o755)
            tar.addfile(_tarinfo(directory, tarfile.DIRTYPE, mode))
        with open(busybox, "rb") as handle:
            info = _tarinfo("bin/busybox", tarfile.REGTYPE, 0o755)
            info.size = os.fstat(handle.fileno()).st_size
            tar.addfile(info, handle)
        for path in sorted(applets):
            info = _tarinfo(path, tarfile.SYMTYPE, 0o777)
            info.linkname = "/bin/busybox"
            tar.addfile(info)
        for path, content in files.items():
            info = _tarinfo(path, tarfile.REGTYPE, 0o644)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    os.replace(tmp, dest)


def _with_parents(paths):
    result = set()
    for path in paths:
        while path:
            result.add(path)
            path = os.path.dirname(path)
    return result


def _tarinfo(name, kind, mode):
    info = tarfile.TarInfo("./" + name)
    info.type = kind
    info.mode = mode
    info.uname = info.gname = "root"
    info.mtime = 1700000000
    return info


def build_debian_rootfs(config, dest):
    """debootstrap a minbase bookworm with python3 into a temporary root, slim it like debian:*-slim, tar it."""
    mirror = debian_source(config)[0]
    work = tempfile.mkdtemp(prefix="debootstrap-", dir=config.cache_dir)
    log_path = config.cache("debootstrap.log")
    log("debootstrap %s from %s (about a minute; log %s)" % (BOOTSTRAP_SUITE, mirror, log_path))
    try:
        run(["debootstrap", "--variant=minbase", "--include=" + BOOTSTRAP_INCLUDE, BOOTSTRAP_SUITE, work, mirror],
            timeout=1800, log_path=log_path, what="debootstrap")
        _slim(work)
        run(["tar", "--numeric-owner", "-C", work, "-cf", dest + ".tmp", "."], timeout=600, what="tar of the debootstrap root")
        os.replace(dest + ".tmp", dest)
    finally:
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)


def _slim(root):
    """Drop docs, manuals, translations and apt caches, and keep dpkg from installing them again."""
    write_file(os.path.join(root, "etc", "dpkg", "dpkg.cfg.d", "kohakuriver-slim"), SLIM_DPKG_CONFIG)
    paths = [path for pattern in SLIM_REMOVE for path in glob.glob(os.path.join(root, pattern))]
    paths += [path for path in glob.glob(os.path.join(root, "usr", "share", "doc", "*", "*"))
              if os.path.basename(path) != "copyright" and not os.path.islink(os.path.dirname(path))]
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


IMAGES = (
    ImageSpec("busybox", "kohakuriver-test/busybox", "latest", 'CMD ["sh"]', build_busybox_rootfs,
              "busybox-static --list-full applets, /etc/passwd"),
    ImageSpec("python", "kohakuriver-test/debian-python", "bookworm", 'CMD ["bash"]', build_debian_rootfs,
              "debootstrap minbase %s --include=%s\n%s" % (BOOTSTRAP_SUITE, BOOTSTRAP_INCLUDE, SLIM_DPKG_CONFIG)),
)


def archive_image_id(path):
    """The image ID recorded in a `docker save` archive (legacy or OCI layout)."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return "sha256:" + os.path.basename(manifest[0]["Config"]).split(".")[0]


@contextlib.contextmanager
def _host_tags(host, names):
    """Remove afterwards those of names the Host engine did not have before."""
    before = {name for name in names if host.has_image(name)}
    try:
        yield
    finally:
        for name in names:
            if name not in before:
                host.remove_image(name)


def ensure_archives(config, host):
    """Build what is missing of rootfs tars and `docker save` archives in the cache; return {key: image ID}."""
    _prune_cache(config)
    for spec in IMAGES:
        if not os.path.exists(spec.archive(config)):
            _build_archive(config, host, spec)
    return {spec.key: archive_image_id(spec.archive(config)) for spec in IMAGES}


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_path(path):
    return path + ".sha256"


def record_checksum(path):
    """Write path's sha256 beside it, so that a later run can tell the cached file is the one built."""
    write_file(_checksum_path(path), file_sha256(path) + "\n")


def drop_unverified_cache(config):
    """Remove every cached rootfs tar and image archive whose content no longer matches the checksum recorded when it
    was built (or that has none); `up` builds them again. The unpacked Docker 26 counts as whole when every file
    listed in its .complete manifest is there with its recorded checksum."""
    dropped = []
    for spec in IMAGES:
        for path in (spec.rootfs(config), spec.archive(config)):
            if os.path.exists(path) and not _matches_checksum(path):
                os.remove(path)
                dropped.append(path)
    root = docker26_root(config)
    if os.path.isdir(root) and not _docker26_intact(root):
        shutil.rmtree(root)
        dropped.append(root)
    for path in dropped:
        log("cache: %s did not match its recorded checksum; it will be rebuilt" % path)
    return dropped


def _matches_checksum(path):
    try:
        with open(_checksum_path(path), encoding="utf-8") as handle:
            return handle.read().strip() == file_sha256(path)
    except OSError:
        return False


def _prune_cache(config):
    """Remove rootfs tars and archives of older recipes."""
    current = {path for spec in IMAGES for built in (spec.rootfs(config), spec.archive(config))
               for path in (built, _checksum_path(built))}
    for directory in ("rootfs", "images"):
        os.makedirs(config.cache(directory), exist_ok=True)
        for name in os.listdir(config.cache(directory)):
            if config.cache(directory, name) not in current:
                log("removing stale cache file %s" % config.cache(directory, name))
                os.remove(config.cache(directory, name))


def _build_archive(config, host, spec):
    rootfs = spec.rootfs(config)
    if not os.path.exists(rootfs):
        started = time.monotonic()
        spec.builder(config, rootfs)
        record_checksum(rootfs)
        log("built %s in %.1f s" % (rootfs, time.monotonic() - started))
    with _host_tags(host, [spec.short]):
        host.import_rootfs(rootfs, spec.repo, spec.tag, spec.change)
        host.save(spec.short, spec.archive(config))
    record_checksum(spec.archive(config))


def ensure_registry_images(bed, host, ids, seed=False):
    """Push through the Host engine whatever the registry lacks or holds in another build; with seed, cache the result."""
    config = bed.config
    missing = [spec for spec in IMAGES if registry_image_id(config.registry, spec) != ids[spec.key]]
    for spec in missing:
        started = time.monotonic()
        full = spec.full(config.registry)
        with _host_tags(host, [spec.short, full]):
            host.load(spec.archive(config))
            host.tag(spec.short, full)
            host.push(full)
        log("pushed %s in %.1f s" % (full, time.monotonic() - started))
    if seed and missing:
        with _locked(config.cache_dir):
            save_registry_seed(config, ids)
    bed.state["images"] = {spec.key: spec.full(config.registry) for spec in IMAGES}


def load_images(config, engine, ids):
    for spec in IMAGES:
        full = spec.full(config.registry)
        if engine.image_id(full) != ids[spec.key]:
            engine.load(spec.archive(config))
            engine.tag(spec.short, full)


# ---------------------------------------------------------------- runners

def docker26_root(config):
    return config.cache("docker-26", "root")


def ensure_docker26(config):
    """Debian 13's docker.io, containerd and tini, downloaded with a private apt state and unpacked."""
    root = docker26_root(config)
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    base = config.cache("docker-26")
    apt = _private_apt(config, os.path.join(base, "apt"))
    debs = os.path.join(base, "debs")
    shutil.rmtree(debs, ignore_errors=True)
    os.makedirs(debs)
    log("downloading %s from Debian %s" % (" ".join(DOCKER26_PACKAGES), DOCKER26_SUITE))
    run(apt + ["update"], timeout=600, what="apt-get update (%s)" % DOCKER26_SUITE)
    run(apt + ["download"] + list(DOCKER26_PACKAGES), cwd=debs, timeout=900, what="apt-get download (%s)" % DOCKER26_SUITE)
    shutil.rmtree(root, ignore_errors=True)
    unpack = tempfile.mkdtemp(prefix="root-", dir=base)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        run(["dpkg-deb", "-x", deb, unpack], what="dpkg-deb -x " + os.path.basename(deb))
    log(run([os.path.join(unpack, "usr", "sbin", "dockerd"), "--version"]).strip())
    write_file(os.path.join(unpack, ".complete"), "".join("%s  %s\n" % (file_sha256(os.path.join(unpack, relative)), relative)
                                                          for relative in _docker26_binaries(unpack)))
    os.rename(unpack, root)
    return root


def _docker26_binaries(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root) for sub in ("usr/bin", "usr/sbin")
                  for folder, dummy, names in os.walk(os.path.join(root, sub)) for name in names
                  if not os.path.islink(os.path.join(folder, name)))


def _docker26_intact(root):
    """True when the unpacked engine holds every binary its .complete manifest lists, each with its checksum."""
    try:
        with open(os.path.join(root, ".complete"), encoding="utf-8") as handle:
            listed = [line.split("  ", 1) for line in handle.read().splitlines() if line]
        return bool(listed) and all(len(entry) == 2 and file_sha256(os.path.join(root, entry[1])) == entry[0] for entry in listed)
    except OSError:
        return False


def _private_apt(config, directory):
    """apt-get arguments for a private apt state knowing only the Debian 13 main archive."""
    mirror, keyring = debian_source(config)
    for sub in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    sources = os.path.join(directory, "sources.list")
    write_file(sources, "deb [signed-by=%s] %s %s main\n" % (keyring, mirror, DOCKER26_SUITE))
    options = {"Dir::Etc::SourceList": sources, "Dir::Etc::SourceParts": "/dev/null", "Dir::State::Lists": os.path.join(directory, "lists"),
               "Dir::Cache": os.path.join(directory, "cache"), "Dir::Etc::Preferences": "/dev/null",
               "Dir::Etc::PreferencesParts": "/dev/null", "APT::Sandbox::User": "root"}
    argv = ["apt-get", "-q"]
    for key, value in options.items():
        argv += ["-o", "%s=%s" % (key, value)]
    return argv


def engine_env(config, node):
    path = SYSTEM_PATH
    if node.generation == "26":
        root = docker26_root(config)
        path = "%s:%s:%s" % (os.path.join(root, "usr", "sbin"), os.path.join(root, "usr", "bin"), path)
    return {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


def _binary(name, env):
    found = shutil.which(name, path=env["PATH"])
    if not found:
        raise TestbedError("%s not found in %s" % (name, env["PATH"]))
    return found


def ensure_runner(bed, node, ids):
    config = bed.config
    engine = Engine(node.name, node.socket)
    fresh = not _runner_alive(bed, node, engine)
    if fresh:
        _start_runner(bed, node, engine)
    started = time.monotonic()
    load_images(config, engine, ids)
    if time.monotonic() - started > 1:
        log("%s: images loaded in %.1f s" % (node.name, time.monotonic() - started))
    if fresh:
        engine.run_true(IMAGES[0].full(config.registry))
    version = engine.version()
    return {"name": node.name, "docker_host": engine.docker_host, "engine_version": version["Version"],
            "api_version": version["ApiVersion"], "netns": node.netns}


def _runner_alive(bed, node, engine):
    entries = [bed.entry(kind, node.name) for kind in ("containerd", "dockerd")]
    return all(entry and process_alive(entry) for entry in entries) and engine.ping()


def _start_runner(bed, node, engine):
    started = time.monotonic()
    for kind in ("dockerd", "containerd"):
        entry = bed.entry(kind, node.name)
        if entry:
            stop_process(entry)
            bed.forget(entry)
    sweep_processes(node.dir)
    remove_cgroup(node.netns)
    unmount_under(node.dir)
    env = engine_env(bed.config, node)
    _ensure_netns(bed, node)
    _start_containerd(bed, node, env)
    _start_dockerd(bed, node, env, engine)
    log("%s: Docker %s up in %.1f s (netns %s)" % (node.name, engine.version()["Version"], time.monotonic() - started, node.netns))


def _ensure_netns(bed, node):
    if not os.path.exists(node.netns_path):
        run(["ip", "netns", "add", node.netns])
        bed.record({"kind": "netns", "name": node.netns, "node": node.name})
    run(["ip", "-n", node.netns, "link", "set", "lo", "up"])


def _start_containerd(bed, node, env):
    directory = os.path.join(node.dir, "containerd")
    os.makedirs(directory, exist_ok=True)
    config_file = os.path.join(directory, "config.toml")
    write_file(config_file, _containerd_config(directory, node.containerd_socket))
    with contextlib.suppress(FileNotFoundError):
        os.remove(node.containerd_socket)
    argv = ["nsenter", "--net=" + node.netns_path, _binary("containerd", env), "--config", config_file]
    entry = spawn("containerd", node.name, argv, os.path.join(node.dir, "containerd.log"), env, node=node.name, dir=node.dir,
                  cgroup=node.netns)
    bed.record(entry)
    wait_for("%s containerd" % node.name, lambda: socket_answers(node.containerd_socket), 30, entry)


def _containerd_config(directory, address):
    return "\n".join((
        "version = 2",
        'root = "%s"' % os.path.join(directory, "root"),
        'state = "%s"' % os.path.join(directory, "state"),
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        "[grpc]",
        '  address = "%s"' % address,
        '[plugins."io.containerd.internal.v1.opt"]',
        '  path = "%s"' % os.path.join(directory, "opt"),
        "",
    ))


def _start_dockerd(bed, node, env, engine):
    daemon_json = os.path.join(node.dir, "daemon.json")
    write_file(daemon_json, "{}\n")
    argv = ["nsenter", "--net=" + node.netns_path, _binary("dockerd", env),
            "--config-file", daemon_json,
            "--data-root", os.path.join(node.dir, "data"),
            "--exec-root", os.path.join(node.dir, "exec"),
            "--pidfile", os.path.join(node.dir, "docker.pid"),
            "-H", engine.docker_host,
            "--containerd", node.containerd_socket,
            "--containerd-namespace", node.netns,
            "--containerd-plugins-namespace", node.netns + "-plugins",
            "--cgroup-parent", "/" + node.netns,
            "--shutdown-timeout", "2"]
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(node.dir, "docker.pid"))
    entry = spawn("dockerd", node.name, argv, os.path.join(node.dir, "dockerd.log"), env, node=node.name,
                  socket=node.socket, netns=node.netns, generation=node.generation)
    bed.record(entry)
    wait_for("%s dockerd" % node.name, engine.ping, 90, entry)


def _runner_count(requested, state):
    """Never fewer runners than are up already: shrinking takes a `down`."""
    if requested < 1:
        raise TestbedError("the test bed needs at least one runner, not %d" % requested)
    return max(requested, len(state.get("runners") or []))


def ensure_runners(bed, nodes, ids):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        runners = list(pool.map(lambda node: ensure_runner(bed, node, ids), nodes))
    bed.state["runners"] = runners


# ---------------------------------------------------------------- ssh

def ssh_paths(config):
    directory = config.path("ssh")
    home = os.path.join(directory, "home")
    return {"dir": directory, "host_key": os.path.join(directory, "host_key"), "private_key": os.path.join(directory, "id_ed25519"),
            "authorized_keys": os.path.join(directory, "authorized_keys"), "sshd_config": os.path.join(directory, "sshd_config"),
            "agent_socket": os.path.join(directory, "agent.sock"), "home": home,
            "known_hosts": os.path.join(home, ".ssh", "known_hosts"), "ssh_config": os.path.join(home, ".ssh", "config")}


def ensure_ssh(bed):
    config = bed.config
    paths = ssh_paths(config)
    _ssh_files(config, paths)
    if not _entry_alive(bed, "sshd") and ssh_banner(config.ssh_port):
        raise TestbedError("127.0.0.1:%d already answers SSH but was not started by the test bed; stop it or set KR_TESTBED_SSH_PORT"
                           % config.ssh_port)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    sshd = _binary("sshd", {"PATH": SYSTEM_PATH})
    run([sshd, "-t", "-f", paths["sshd_config"]], what="sshd -t (config check)")
    fresh = ensure_daemon(bed, "sshd", "sshd", [sshd, "-D", "-e", "-f", paths["sshd_config"]], os.path.join(paths["dir"], "sshd.log"),
                          lambda: ssh_banner(config.ssh_port), 15)
    fresh = _ensure_agent(bed, paths) or fresh
    if fresh:
        _verify_ssh_login(config, paths)
        log("sshd on 127.0.0.1:%d serves the docker CLI (agent %s)" % (config.ssh_port, paths["agent_socket"]))
    bed.state["ssh"] = {"host": "127.0.0.1", "port": config.ssh_port, "user": "root", "private_key": paths["private_key"],
                        "agent_socket": paths["agent_socket"], "docker_host": "ssh://root@127.0.0.1:%d" % config.ssh_port,
                        "known_hosts": paths["known_hosts"], "ssh_config": paths["ssh_config"], "home": paths["home"]}


def _entry_alive(bed, kind):
    entry = bed.entry(kind, kind)
    return bool(entry and process_alive(entry))


def _ssh_files(config, paths):
    os.makedirs(os.path.join(paths["home"], ".ssh"), mode=0o700, exist_ok=True)
    os.chmod(paths["dir"], 0o700)
    for key in ("host_key", "private_key"):
        if not os.path.exists(paths[key]):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kohakuriver-testbed", "-f", paths[key]])
    write_file(paths["authorized_keys"], _read(paths["private_key"] + ".pub"), 0o600)
    write_file(paths["known_hosts"], "[127.0.0.1]:%d %s" % (config.ssh_port, _read(paths["host_key"] + ".pub")), 0o600)
    write_file(paths["ssh_config"], _client_config(config, paths), 0o600)
    write_file(paths["sshd_config"], _sshd_config(config, paths), 0o600)


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _sshd_config(config, paths):
    return "\n".join((
        "Port %d" % config.ssh_port,
        "ListenAddress 127.0.0.1",
        "HostKey %s" % paths["host_key"],
        "AuthorizedKeysFile %s" % paths["authorized_keys"],
        "PidFile %s" % os.path.join(paths["dir"], "sshd.pid"),
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "AcceptEnv LANG LC_*",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "",
    ))


def _client_config(config, paths):
    return "\n".join((
        "Host 127.0.0.1",
        "  Port %d" % config.ssh_port,
        "  User root",
        "  IdentityFile %s" % paths["private_key"],
        "  IdentityAgent %s" % paths["agent_socket"],
        "  UserKnownHostsFile %s" % paths["known_hosts"],
        "  StrictHostKeyChecking yes",
        "",
    ))


def _ensure_agent(bed, paths):
    sock = paths["agent_socket"]
    env = dict(os.environ, SSH_AUTH_SOCK=sock)
    public = _read(paths["private_key"] + ".pub").split()[1]

    def has_key():
        result = subprocess.run(["ssh-add", "-L"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
        return public in result.stdout.decode()

    entry = bed.entry("ssh-agent", "ssh-agent")
    if entry and process_alive(entry) and has_key():
        return False
    if not (entry and process_alive(entry) and socket_answers(sock)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(sock)
        ensure_daemon(bed, "ssh-agent", "ssh-agent", ["ssh-agent", "-D", "-a", sock], os.path.join(paths["dir"], "agent.log"),
                      lambda: socket_answers(sock), 10, force=True)
    run(["ssh-add", "-q", paths["private_key"]], env=env, what="ssh-add")
    return True


def _verify_ssh_login(config, paths):
    """Log in through the agent and ask the far side's docker CLI for the Host engine's version."""
    env = dict(os.environ, SSH_AUTH_SOCK=paths["agent_socket"])
    argv = ["ssh", "-F", "none", "-p", str(config.ssh_port), "-o", "BatchMode=yes", "-o", "IdentityAgent=" + paths["agent_socket"],
            "-o", "UserKnownHostsFile=" + paths["known_hosts"], "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
            "root@127.0.0.1", "docker version --format '{{.Server.Version}}'"]
    run(argv, env=env, timeout=60, what="ssh root@127.0.0.1:%d docker version" % config.ssh_port)


# ---------------------------------------------------------------- public API

def _check_preconditions(config):
    if os.geteuid() != 0:
        raise TestbedError("the test bed needs root (network namespaces, dockerd, sshd)")
    if len(config.state_dir) > MAX_STATE_DIR_LEN:
        raise TestbedError("KR_TESTBED_DIR %s is longer than %d characters: unix socket paths below it would be too long"
                           % (config.state_dir, MAX_STATE_DIR_LEN))


def ensure_up(runners=None, fresh=False):
    """Start whatever part of the test bed is missing and return the state.

    fresh: first stop and forget every piece an earlier run left (its state folder goes), drop cached files whose
    checksum fails, and remove from the Host engine what the project's tests, benchmarks and test bed put there, so
    that nothing an earlier run left can make a test pass.
    """
    config = Config()
    _check_preconditions(config)
    if fresh:
        teardown()
        remove_tree(config.state_dir)
        with _locked(config.cache_dir):
            drop_unverified_cache(config)
    with _locked(config.state_dir):
        state = load_state(config) or new_state(config)
        bed = Bed(config, state)
        nodes = [Node(config, index) for index in range(1, _runner_count(runners or config.runners, state) + 1)]
        ensure_packages()
        host = ensure_host(bed)
        if fresh:
            for what in remove_project_objects(host, config.registry):
                log("fresh start, Host engine: %s" % what)
        with _locked(config.cache_dir):
            ids = ensure_archives(config, host)
            if any(node.generation == "26" for node in nodes):
                ensure_docker26(config)
        fresh_registry = ensure_registry(bed, ids)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pushing = pool.submit(ensure_registry_images, bed, host, ids, fresh_registry)
            ensure_runners(bed, nodes, ids)
            pushing.result()
        ensure_ssh(bed)
        bed.save()
        return state


_PROJECT_NAME = re.compile(r"(?:^|[/_.:-])(?:krtest|krbench)-[0-9a-z]")
TEST_IMAGE_NAMESPACE = "kohakuriver-test/"


def is_project_name(name):
    """Whether a container or image name is one the project's tests (tests/conftest.py unique_env: krtest-<hex>) or
    benchmarks (bench/krbench: krbench-<id>) give what they make."""
    return bool(_PROJECT_NAME.search(name or ""))


def remove_project_objects(engine, registry):
    """Remove from engine the containers and images the project's tests, benchmarks and test bed made, nothing else.

    Containers: named after a krtest-/krbench- environment or labelled with one. Images: tagged in such a repository
    or as a test bed image (kohakuriver-test/..., plain or in the test registry), or untagged and labelled with such an
    environment. An image a container outside the project uses is kept. Returns what went (or stayed), one line each.
    """
    removed = []
    for container in engine.containers():
        names = [name.lstrip("/") for name in container.get("Names") or []]
        env = (container.get("Labels") or {}).get("io.kohakuriver.docker.env", "")
        if any(is_project_name(name) for name in names) or is_project_name(env):
            engine.remove_container(container["Id"])
            removed.append("removed container %s" % (names[0] if names else container["Id"]))
    test_prefixes = (TEST_IMAGE_NAMESPACE, "%s/%s" % (registry, TEST_IMAGE_NAMESPACE))
    for image in engine.images():
        tags = [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"]
        env = (image.get("Labels") or {}).get("io.kohakuriver.docker.env", "")
        ours = [tag for tag in tags if tag.startswith(test_prefixes) or is_project_name(tag.rpartition(":")[0])]
        for name in ours or ([image["Id"]] if not tags and is_project_name(env) else []):
            # 409: a container the project did not make uses it (the demo's environment, say): it stays.
            status = engine.call("DELETE", "/images/%s" % quote_reference(name), ok=(200, 404, 409))[0]
            removed.append("removed image %s" % name if status != 409 else "kept image %s: a container uses it" % name)
    return removed


def check(state, config=None):
    """(component, healthy, detail) for every piece of the test bed."""
    config = config or Config()
    bed = Bed(config, state)
    ids = _cached_image_ids(config)
    results = [_check_host(state)]
    results.append(_check_registry(bed, state, ids))
    results.extend(_check_runner(bed, runner, config, ids) for runner in state.get("runners") or [])
    results.extend(_check_ssh(bed, state.get("ssh") or {}, config))
    return results


def _check_host(state):
    host = state.get("host") or {}
    ok = Engine("host", HOST_SOCKET).ping()
    return "host", ok, "%s Docker %s (API %s)" % (host.get("docker_host"), host.get("engine_version"), host.get("api_version"))


def _cached_image_ids(config):
    try:
        return {spec.key: archive_image_id(spec.archive(config)) for spec in IMAGES}
    except (OSError, KeyError, ValueError, tarfile.TarError):
        return {}


def _check_registry(bed, state, ids):
    address = state.get("registry", "")
    ok = _entry_alive(bed, "registry") and all(registry_image_id(address, spec) == ids.get(spec.key, "") for spec in IMAGES)
    return "registry", ok, "%s (%s)" % (address, ", ".join(sorted((state.get("images") or {}).values())))


def _check_runner(bed, runner, config, ids):
    name = runner["name"]
    engine = Engine(name, runner["docker_host"][len("unix://"):])
    alive = all(bed.entry(kind, name) and process_alive(bed.entry(kind, name)) for kind in ("containerd", "dockerd"))
    ok = alive and engine.ping() and all(engine.image_id(spec.full(config.registry)) == ids.get(spec.key, "") for spec in IMAGES)
    return name, ok, "%s Docker %s (API %s) netns %s" % (runner["docker_host"], runner["engine_version"], runner["api_version"], runner["netns"])


def _check_ssh(bed, ssh, config):
    sshd = _entry_alive(bed, "sshd") and ssh_banner(config.ssh_port)
    agent = _entry_alive(bed, "ssh-agent") and socket_answers(ssh.get("agent_socket", ""))
    return [("sshd", sshd, ssh.get("docker_host", "")), ("ssh-agent", agent, ssh.get("agent_socket", ""))]


def healthy(state=None):
    state = state if state is not None else load_state()
    if not state or not state.get("host") or not state.get("runners") or not state.get("ssh"):
        return False
    try:
        return all(result[1] for result in check(state))
    except TestbedError:
        return False


def teardown(entries=None):
    """Stop and remove what `up` started, newest first: everything, or only the given started entries."""
    config = Config()
    _check_preconditions(config)
    if not os.path.isdir(config.state_dir):
        return
    with _locked(config.state_dir):
        state = load_state(config) or new_state(config)
        keys = None if entries is None else {_entry_key(entry) for entry in entries}
        chosen = [e for e in state["started"] if keys is None or _entry_key(e) in keys]
        errors = _teardown_entries(chosen)
        if entries is None:
            sweep_processes(config.state_dir)
            unmount_under(config.state_dir)
            remove_tree(config.state_dir)
        else:
            bed = Bed(config, state)
            for entry in chosen:
                bed.forget(entry)
    if errors:
        raise TestbedError("teardown incomplete:\n" + "\n".join(errors))


def _teardown_entries(entries):
    """Newest first; runs of runner entries go runner by runner in parallel."""
    errors, batch = [], []
    for entry in list(reversed(entries)) + [None]:
        if entry is not None and entry.get("node"):
            batch.append(entry)
            continue
        errors.extend(_teardown_nodes(batch))
        batch = []
        if entry is not None:
            errors.append(_teardown_entry(entry))
    return [error for error in errors if error]


def _teardown_nodes(entries):
    groups = {}
    for entry in entries:
        groups.setdefault(entry["node"], []).append(entry)
    if not groups:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(groups)) as pool:
        results = list(pool.map(lambda group: [_teardown_entry(entry) for entry in group], groups.values()))
    return [error for group in results for error in group]


def _teardown_entry(entry):
    label = "%s %s" % (entry["kind"], entry["name"])
    started = time.monotonic()
    try:
        if entry["kind"] == "netns":
            if os.path.exists(os.path.join(NETNS_DIR, entry["name"])):
                run(["ip", "netns", "delete", entry["name"]])
        else:
            stop_process(entry, timeout=60 if entry["kind"] == "dockerd" else 20)
        if entry.get("dir"):
            sweep_processes(entry["dir"])
            remove_cgroup(entry["cgroup"])
            unmount_under(entry["dir"])
        log("stopped %s in %.1f s" % (label, time.monotonic() - started))
        return None
    except (OSError, TestbedError) as exc:
        return "%s: %s" % (label, exc)


# ---------------------------------------------------------------- CLI

def env_lines(state, config):
    values = [("KR_TESTBED_DIR", config.state_dir), ("KR_TESTBED_STATE", config.state_file),
              ("KR_HOST_DOCKER_HOST", state["host"]["docker_host"])]
    values += [("KR_%s_DOCKER_HOST" % runner["name"].upper(), runner["docker_host"]) for runner in state["runners"]]
    values += [("KR_RUNNER_DOCKER_HOSTS", ",".join(runner["docker_host"] for runner in state["runners"])),
               ("KR_REGISTRY", state["registry"])]
    values += [("KR_IMAGE_%s" % key.upper(), name) for key, name in sorted(state["images"].items())]
    ssh = state["ssh"]
    values += [("KR_SSH_DOCKER_HOST", ssh["docker_host"]), ("KR_SSH_PRIVATE_KEY", ssh["private_key"]),
               ("KR_SSH_AUTH_SOCK", ssh["agent_socket"]), ("KR_SSH_KNOWN_HOSTS", ssh["known_hosts"]),
               ("KR_SSH_CONFIG", ssh["ssh_config"]), ("KR_SSH_HOME", ssh["home"])]
    return ["export %s=%s" % (key, shlex.quote(str(value))) for key, value in values]


def _cmd_up(args, config):
    started = time.monotonic()
    state = ensure_up(args.runners, fresh=args.fresh)
    for name, ok, detail in check(state, config):
        print("%-10s %-4s %s" % (name, "ok" if ok else "FAIL", detail))
    log("up in %.1f s; state in %s" % (time.monotonic() - started, config.state_file))
    return 0


def _cmd_down(args, config):
    del args, config
    started = time.monotonic()
    teardown()
    log("down in %.1f s" % (time.monotonic() - started))
    return 0


def _cmd_status(args, config):
    del args
    state = load_state(config)
    if state is None:
        print("test bed is down (no %s)" % config.state_file)
        return 1
    results = check(state, config)
    for name, ok, detail in results:
        print("%-10s %-4s %s" % (name, "ok" if ok else "FAIL", detail))
    owned = ", ".join("%s %s" % (e["kind"], e["name"]) + (" pid %d" % e["pid"] if "pid" in e else "") for e in state["started"])
    print("started by the test bed: %s" % (owned or "nothing"))
    return 0 if all(result[1] for result in results) else 1


def _cmd_env(args, config):
    del args
    state = load_state(config)
    if not state or not state.get("ssh"):
        raise TestbedError("the test bed is not up; run: python3 tests/testbed/testbed.py up")
    print("\n".join(env_lines(state, config)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="testbed.py", description="Real Docker test bed for kohakuriver.docker")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start whatever is missing")
    up.add_argument("--runners", type=int, default=None, help="number of runner engines (default $KR_TESTBED_RUNNERS or 2)")
    up.add_argument("--fresh", action="store_true",
                    help="start as on a machine where nothing of the project ran: stop and forget what earlier runs left, "
                         "drop cached files that fail their checksum, remove the project's containers and images from the "
                         "Host (scripts/test passes it when KR_TESTBED_FRESH=1)")
    commands.add_parser("down", help="stop and remove what up started")
    commands.add_parser("status", help="health of every piece")
    commands.add_parser("env", help="print export KR_...= lines")
    args = parser.parse_args(argv)
    handlers = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "env": _cmd_env}
    try:
        return handlers[args.command](args, Config())
    except (TestbedError, OSError) as exc:
        print("testbed %s failed: %s" % (args.command, exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
