"""Where the test bed lives (state folder, cache, ports, namespace prefix, from the environment) and its error type."""

import os
import sys


HOST_SOCKET = "/var/run/docker.sock"
HOST_PIDFILE = "/var/run/docker.pid"
NETNS_DIR = "/var/run/netns"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MAX_STATE_DIR_LEN = 60
LOCK_TIMEOUT = 1800


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
        port = int(self.registry.rpartition(":")[2])
        self.cache_registry = env.get("KR_TESTBED_CACHE_REGISTRY", "127.0.0.1:%d" % (port + 100))
        self.secure_registry = env.get("KR_TESTBED_SECURE_REGISTRY", "127.0.0.1:%d" % (port + 443))
        # The secure registry as the runners' daemons reach it: an address on their namespace's lo outside
        # 127.0.0.0/8, which dockerd would trust without verifying TLS.
        self.secure_runner_host = env.get("KR_TESTBED_SECURE_RUNNER_HOST", "198.18.0.1")
        self.ssh_port = int(env.get("KR_TESTBED_SSH_PORT", "2222"))
        self.mirror = env.get("KR_TESTBED_MIRROR")
        self.runners = int(env.get("KR_TESTBED_RUNNERS", "3"))
        self.prefix = env.get("KR_TESTBED_PREFIX", "kr-")

    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    def cache(self, *parts):
        return os.path.join(self.cache_dir, *parts)

    @property
    def secure_runner_url(self):
        return "%s:%s" % (self.secure_runner_host, self.secure_registry.rpartition(":")[2])

    @property
    def state_file(self):
        return self.path("state.json")


# What runner N runs, in turn: Docker 20.10, Docker 26, Docker 26 with the containerd image store (`docker info`:
# driver-type io.containerd.snapshotter.v1); the classic store ("graphdriver") keeps images in overlay2.
RUNNER_KINDS = (("20.10", "graphdriver"), ("26", "graphdriver"), ("26", "containerd"))


class Node:
    """A runner: a containerd and a dockerd in network namespace <prefix><name>, containers in cgroup /<prefix><name>."""

    def __init__(self, config, index):
        self.index = index
        self.name = "runner%d" % index
        self.netns = config.prefix + self.name
        self.dir = config.path(self.name)
        self.generation, self.image_store = RUNNER_KINDS[(index - 1) % len(RUNNER_KINDS)]

    @property
    def socket(self):
        return os.path.join(self.dir, "docker.sock")

    @property
    def containerd_socket(self):
        return os.path.join(self.dir, "containerd", "containerd.sock")

    @property
    def netns_path(self):
        return os.path.join(NETNS_DIR, self.netns)
