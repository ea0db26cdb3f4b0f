"""The Host engine, Docker 26 unpacked from Debian debs, and the runner engines each in its own network namespace."""

import concurrent.futures
import contextlib
import glob
import json
import os
import shutil
import tempfile
import time

from .apt import debian_source
from .checksums import file_sha256
from .config import HOST_PIDFILE, HOST_SOCKET, SYSTEM_PATH, TestbedError, log
from .engine import Engine, socket_answers
from .images import IMAGES, load_images
from .processes import (
    binary_path, process_alive, process_cmdline, remove_cgroup, run, spawn, stop_process, sweep_processes, unmount_under, wait_for,
    write_file,
)


DOCKER26_PACKAGES = ("docker.io", "containerd", "tini")
DOCKER26_SUITE = "trixie"


def ensure_host(bed):
    engine = Engine("host", HOST_SOCKET)
    if not engine.ping():
        _start_host(bed, engine)
    version = engine.version()
    bed.state["host"] = {"name": "host", "docker_host": engine.docker_host, "engine_version": version["Version"],
                         "api_version": version["ApiVersion"], "image_store": engine.image_store()}
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
    argv = process_cmdline(pid)
    return pid if argv and os.path.basename(argv[0]) == "dockerd" else None


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


def docker26_intact(root):
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


def ensure_runner(bed, node):
    config = bed.config
    engine = Engine(node.name, node.socket)
    fresh = not _runner_alive(bed, node, engine)
    if fresh:
        _start_runner(bed, node, engine)
    started = time.monotonic()
    load_images(config, engine, node.image_store)
    if time.monotonic() - started > 1:
        log("%s: images loaded in %.1f s" % (node.name, time.monotonic() - started))
    if fresh:
        engine.run_true(IMAGES[0].full(config.registry))
    version = engine.version()
    return {"name": node.name, "docker_host": engine.docker_host, "engine_version": version["Version"],
            "api_version": version["ApiVersion"], "netns": node.netns, "image_store": engine.image_store()}


def _runner_alive(bed, node, engine):
    entries = [bed.entry(kind, node.name) for kind in ("containerd", "dockerd")]
    return all(entry and process_alive(entry) for entry in entries) and engine.ping() and _runs_as_asked(node, engine)


def _runs_as_asked(node, engine):
    """An engine of another kind (an older bed where runner N ran another Docker or store) is restarted as asked."""
    try:
        return engine.version()["Version"].startswith(node.generation + ".") and engine.image_store() == node.image_store
    except (TestbedError, KeyError, ValueError):
        return False


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
    argv = ["nsenter", "--net=" + node.netns_path, binary_path("containerd", env), "--config", config_file]
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
    features = {"features": {"containerd-snapshotter": True}} if node.image_store == "containerd" else {}
    write_file(daemon_json, json.dumps(features) + "\n")
    argv = ["nsenter", "--net=" + node.netns_path, binary_path("dockerd", env),
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


def runner_count(requested, state):
    """Never fewer runners than are up already: shrinking takes a `down`."""
    if requested < 1:
        raise TestbedError("the test bed needs at least one runner, not %d" % requested)
    return max(requested, len(state.get("runners") or []))


def ensure_runners(bed, nodes):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        runners = list(pool.map(lambda node: ensure_runner(bed, node), nodes))
    bed.state["runners"] = runners
