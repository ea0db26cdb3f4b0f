"""What `up --fresh` removes: the project's containers and images, and cached files that fail their checksum."""

import os
import re
import shutil

from .checksums import matches_checksum
from .config import log
from .daemons import docker26_intact, docker26_root
from .engine import quote_reference
from .images import IMAGES


def drop_unverified_cache(config):
    """Remove every cached rootfs tar and image archive whose content no longer matches the checksum recorded when it
    was built (or that has none); `up` builds them again. The unpacked Docker 26 counts as whole when every file
    listed in its .complete manifest is there with its recorded checksum."""
    dropped = []
    for spec in IMAGES:
        for path in (spec.rootfs(config), spec.archive(config)):
            if os.path.exists(path) and not matches_checksum(path):
                os.remove(path)
                dropped.append(path)
    root = docker26_root(config)
    if os.path.isdir(root) and not docker26_intact(root):
        shutil.rmtree(root)
        dropped.append(root)
    for path in dropped:
        log("cache: %s did not match its recorded checksum; it will be rebuilt" % path)
    return dropped


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
