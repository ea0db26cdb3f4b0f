"""The local registry: its daemon, its storage seed, and the test bed images pushed to it."""

import json
import os
import shutil
import tempfile
import time

from .config import SYSTEM_PATH, TestbedError, log
from .engine import registry_answers, registry_image_id
from .images import IMAGES, host_tags
from .processes import binary_path, process_alive, write_file
from .registry_variants import registry_config_lines
from .state import ensure_daemon, locked


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
    argv = [binary_path("docker-registry", {"PATH": SYSTEM_PATH}), "serve", config_file]
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
    return "\n".join(registry_config_lines(directory, config.registry) + [""])


def ensure_registry_images(bed, host, ids, seed=False):
    """Push through the Host engine whatever the registry lacks or holds in another build; with seed, cache the result."""
    config = bed.config
    missing = [spec for spec in IMAGES if registry_image_id(config.registry, spec) != ids[spec.key]]
    for spec in missing:
        started = time.monotonic()
        full = spec.full(config.registry)
        with host_tags(host, [spec.short, full]):
            host.load(spec.archive(config))
            host.tag(spec.short, full)
            host.push(full)
        log("pushed %s in %.1f s" % (full, time.monotonic() - started))
    if seed and missing:
        with locked(config.cache_dir):
            save_registry_seed(config, ids)
    bed.state["images"] = {spec.key: spec.full(config.registry) for spec in IMAGES}
