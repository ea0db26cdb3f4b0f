"""Bring the whole test bed up, check its health, and tear down what it started."""

import concurrent.futures
import os
import tarfile
import time

from .apt import ensure_packages
from .config import Config, HOST_SOCKET, MAX_STATE_DIR_LEN, NETNS_DIR, Node, TestbedError, log
from .daemons import ensure_docker26, ensure_host, ensure_runners, runner_count
from .engine import Engine, registry_answers, registry_image_id, socket_answers, ssh_banner
from .fresh import drop_unverified_cache, remove_project_objects
from .images import IMAGES, archive_image_id, engine_image_id, ensure_archives
from .processes import process_alive, remove_cgroup, remove_tree, run, stop_process, sweep_processes, unmount_under
from .registry import ensure_registry, ensure_registry_images
from .registry_forward import check_forwarder, ensure_forwarder
from .registry_variants import ensure_registry_variants, remove_file_entry, secure_answers
from .ssh import ensure_ssh
from .state import Bed, entry_alive, entry_key, load_state, locked, new_state


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
        with locked(config.cache_dir):
            drop_unverified_cache(config)
    with locked(config.state_dir):
        state = load_state(config) or new_state(config)
        bed = Bed(config, state)
        nodes = [Node(config, index) for index in range(1, runner_count(runners or config.runners, state) + 1)]
        ensure_packages()
        host = ensure_host(bed)
        if fresh:
            for what in remove_project_objects(host, config.registry):
                log("fresh start, Host engine: %s" % what)
        with locked(config.cache_dir):
            ids = ensure_archives(config, host)
            if any(node.generation == "26" for node in nodes):
                ensure_docker26(config)
        fresh_registry = ensure_registry(bed, ids)
        ensure_registry_variants(bed)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pushing = pool.submit(ensure_registry_images, bed, host, ids, fresh_registry)
            ensure_runners(bed, nodes)
            pushing.result()
        ensure_forwarder(bed)
        ensure_ssh(bed)
        bed.save()
        return state


def check(state, config=None):
    """(component, healthy, detail) for every piece of the test bed."""
    config = config or Config()
    bed = Bed(config, state)
    ids = _cached_image_ids(config)
    results = [_check_host(state)]
    results.append(_check_registry(bed, state, ids))
    results.extend(_check_registry_variants(bed, state))
    results.extend(_check_runner(bed, runner, config, ids) for runner in state.get("runners") or [])
    results.extend(_check_ssh(bed, state.get("ssh") or {}, config))
    results.append(check_forwarder(bed, state))
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
    ok = entry_alive(bed, "registry") and all(registry_image_id(address, spec) == ids.get(spec.key, "") for spec in IMAGES)
    return "registry", ok, "%s (%s)" % (address, ", ".join(sorted((state.get("images") or {}).values())))


def _check_registry_variants(bed, state):
    registries = state.get("registries") or {}
    secure = registries.get("secure") or {}
    cache_ok = bool(registries) and _alive(bed, "registry", "registry-cache") and registry_answers(registries["cache"])
    secure_ok = bool(secure) and _alive(bed, "registry", "registry-secure") and secure_answers(secure) and secure_answers(secure, False)
    return [("cache", cache_ok, "%s (pull-through cache of %s)" % (registries.get("cache"), registries.get("plain"))),
            ("secure", secure_ok, "%s (TLS, htpasswd; runners also at %s)" % (secure.get("url"), secure.get("runner_url")))]


def _alive(bed, kind, name):
    entry = bed.entry(kind, name)
    return bool(entry and process_alive(entry))


def _check_runner(bed, runner, config, ids):
    name = runner["name"]
    engine = Engine(name, runner["docker_host"][len("unix://"):])
    alive = all(bed.entry(kind, name) and process_alive(bed.entry(kind, name)) for kind in ("containerd", "dockerd"))
    store = runner.get("image_store")
    ok = alive and engine.ping() and bool(ids) and all(engine.image_id(spec.full(config.registry)) == engine_image_id(spec.archive(config), store)
                                                       for spec in IMAGES)
    return name, ok, "%s Docker %s (API %s) netns %s, image store %s" % (
        runner["docker_host"], runner["engine_version"], runner["api_version"], runner["netns"], store)


def _check_ssh(bed, ssh, config):
    sshd = entry_alive(bed, "sshd") and ssh_banner(config.ssh_port)
    agent = entry_alive(bed, "ssh-agent") and socket_answers(ssh.get("agent_socket", ""))
    return [("sshd", sshd, ssh.get("docker_host", "")), ("ssh-agent", agent, ssh.get("agent_socket", ""))]


def healthy(state=None):
    state = state if state is not None else load_state()
    if not state or not state.get("host") or not state.get("runners") or not state.get("ssh") or not state.get("registries"):
        return False
    if any("image_store" not in node for node in [state["host"]] + state["runners"]):
        return False  # recorded by an older test bed: `up` fills it in without restarting anything
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
    with locked(config.state_dir):
        state = load_state(config) or new_state(config)
        keys = None if entries is None else {entry_key(entry) for entry in entries}
        chosen = [e for e in state["started"] if keys is None or entry_key(e) in keys]
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
        elif entry["kind"] == "file":
            remove_file_entry(entry)
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
