"""The command line: `testbed.py up [--runners N] [--fresh] | down | status | env`."""

import argparse
import shlex
import sys
import time

from .config import Config, TestbedError, log
from .lifecycle import check, ensure_up, teardown
from .state import load_state


def env_lines(state, config):
    values = [("KR_TESTBED_DIR", config.state_dir), ("KR_TESTBED_STATE", config.state_file),
              ("KR_HOST_DOCKER_HOST", state["host"]["docker_host"])]
    values += [("KR_%s_DOCKER_HOST" % runner["name"].upper(), runner["docker_host"]) for runner in state["runners"]]
    values += [("KR_%s_IMAGE_STORE" % runner["name"].upper(), runner.get("image_store", "")) for runner in state["runners"]]
    values += [("KR_RUNNER_DOCKER_HOSTS", ",".join(runner["docker_host"] for runner in state["runners"])),
               ("KR_REGISTRY", state["registry"])]
    registries = state.get("registries") or {}
    if registries:
        secure = registries["secure"]
        values += [("KR_REGISTRY_CACHE", registries["cache"]), ("KR_REGISTRY_SECURE", secure["url"]),
                   ("KR_REGISTRY_SECURE_RUNNER", secure["runner_url"]), ("KR_REGISTRY_SECURE_CA", secure["ca"]),
                   ("KR_REGISTRY_SECURE_USERNAME", secure["username"]), ("KR_REGISTRY_SECURE_PASSWORD", secure["password"])]
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
