"""Debian packages the test bed needs and the Debian mirror it downloads from."""

import contextlib
import glob
import os
import subprocess

from .config import TestbedError, log
from .processes import run


DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PACKAGES = ("docker.io", "docker-registry", "debootstrap", "busybox-static", "openssh-server", "iproute2", "util-linux", "tar", "openssl")
BOOTSTRAP_SUITE = "bookworm"


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
