"""The base images built here (busybox and Debian), cached as `docker save` archives and loaded onto engines."""

import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time

from .apt import BOOTSTRAP_SUITE, debian_source
from .checksums import checksum_path, record_checksum
from .config import log
from .processes import run, unmount_under, write_file


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


def engine_image_id(path, image_store):
    """The ID a daemon gives the image of a docker-legacy archive: its config digest, or on the containerd image store
    the digest of the manifest containerd writes on import (plugins/module_utils/image_identity.py explains it)."""
    config_id = archive_image_id(path)
    if image_store != "containerd":
        return config_id
    with tarfile.open(path) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]
        config = tar.getmember(entry["Config"])
        diff_ids = json.load(tar.extractfile(config))["rootfs"]["diff_ids"]
        sizes = [tar.getmember(name).size for name in entry["Layers"]]
    layer_type = "application/vnd.docker.image.rootfs.diff.tar"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_id, "size": config.size},
                "layers": [{"mediaType": layer_type, "digest": diff_id, "size": size} for diff_id, size in zip(diff_ids, sizes)]}
    return "sha256:" + hashlib.sha256(json.dumps(manifest, separators=(",", ":")).encode()).hexdigest()


@contextlib.contextmanager
def host_tags(host, names):
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


def _prune_cache(config):
    """Remove rootfs tars and archives of older recipes."""
    current = {path for spec in IMAGES for built in (spec.rootfs(config), spec.archive(config))
               for path in (built, checksum_path(built))}
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
    with host_tags(host, [spec.short]):
        host.import_rootfs(rootfs, spec.repo, spec.tag, spec.change)
        host.save(spec.short, spec.archive(config))
    record_checksum(spec.archive(config))


def load_images(config, engine, image_store):
    for spec in IMAGES:
        full = spec.full(config.registry)
        if engine.image_id(full) != engine_image_id(spec.archive(config), image_store):
            engine.load(spec.archive(config))
            engine.tag(spec.short, full)
