"""The sshd on loopback, its keys and client configuration, and the ssh-agent holding the client key."""

import contextlib
import os
import subprocess

from .config import SYSTEM_PATH, TestbedError, log
from .engine import socket_answers, ssh_banner
from .processes import binary_path, process_alive, run, write_file
from .state import ensure_daemon, entry_alive


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
    if not entry_alive(bed, "sshd") and ssh_banner(config.ssh_port):
        raise TestbedError("127.0.0.1:%d already answers SSH but was not started by the test bed; stop it or set KR_TESTBED_SSH_PORT"
                           % config.ssh_port)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    sshd = binary_path("sshd", {"PATH": SYSTEM_PATH})
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
