"""The registries inside every runner's network namespace: one forwarder process (forward.py) for all runners.

Inside runner N's namespace, 127.0.0.1:<port> of the plain, cache and secure registry, and the secure registry's
runner address (KR_TESTBED_SECURE_RUNNER_HOST, added to that namespace's lo), lead to the same registry on the
Host's 127.0.0.1.
"""

import concurrent.futures
import os
import sys

from .config import log
from .engine import registry_answers
from .forward import PROGRAM, in_netns
from .processes import process_alive, run, spawn, stop_process, wait_for
from .registry_variants import secure_status

FORWARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward.py")


def _netns_ids(runners):
    return {runner["netns"]: os.stat(_netns_path(runner)).st_ino for runner in runners}


def _netns_path(runner):
    return os.path.join("/var/run/netns", runner["netns"])


def _mappings(config, runners):
    pairs = [(config.registry, config.registry), (config.cache_registry, config.cache_registry),
             (config.secure_registry, config.secure_registry), (config.secure_runner_url, config.secure_registry)]
    return ["%s,%s,%s" % (_netns_path(runner), listen, target) for runner in runners for listen, target in pairs]


def ensure_forwarder(bed):
    """(Re)start the forwarder when it is not running for exactly the runners' namespaces as they are now."""
    config, runners = bed.config, bed.state["runners"]
    for runner in runners:
        _ensure_runner_address(runner, config.secure_runner_host)
    entry = bed.entry("forwarder", "forwarder")
    wanted = _mappings(config, runners)
    if entry and process_alive(entry) and entry.get("mappings") == wanted and entry.get("netns_ids") == _netns_ids(runners):
        return
    if entry:
        stop_process(entry)
        bed.forget(entry)
    argv = [PROGRAM, FORWARD, "--owner", config.state_dir] + wanted
    entry = spawn("forwarder", "forwarder", argv, config.path("forwarder.log"), executable=sys.executable, mappings=wanted,
                  netns_ids=_netns_ids(runners))
    bed.record(entry)
    wait_for("registry forwarder", lambda: all(_runner_reaches(runner, config.registry) for runner in runners), 10, entry)
    log("registry forwarder serving %s" % ", ".join(runner["name"] for runner in runners))


def _ensure_runner_address(runner, host):
    shown = run(["ip", "-n", runner["netns"], "-o", "addr", "show", "dev", "lo"])
    if (" %s/" % host) not in shown:
        run(["ip", "-n", runner["netns"], "addr", "add", host + "/32", "dev", "lo"])


def _runner_reaches(runner, address):
    try:
        return in_netns(_netns_path(runner), registry_answers, address)
    except OSError:
        return False


def _runner_reaches_all(runner, registries):
    secure = dict(registries["secure"], url=registries["secure"]["runner_url"])

    def probe():
        return registry_answers(registries["plain"]) and registry_answers(registries["cache"]) and secure_status(secure) == 200
    try:
        return in_netns(_netns_path(runner), probe)
    except OSError:
        return False


def check_forwarder(bed, state):
    """(component, healthy, detail): every runner reaches every registry through the forwarder."""
    registries = state.get("registries") or {}
    entry = bed.entry("forwarder", "forwarder")
    runners = state.get("runners") or []
    ok = bool(registries and entry and process_alive(entry))
    try:
        ok = ok and entry.get("netns_ids") == _netns_ids(runners)
    except OSError:
        ok = False
    if ok and runners:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(runners)) as pool:
            ok = all(pool.map(lambda runner: _runner_reaches_all(runner, registries), runners))
    return "forwarder", ok, "runners reach %s" % ", ".join(
        [registries.get("plain", "?"), registries.get("cache", "?"), (registries.get("secure") or {}).get("runner_url", "?")])
