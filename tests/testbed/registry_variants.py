"""The registry's variants: `secure` (TLS from a CA of the test bed's own, htpasswd auth) and `cache` (a pull-through
cache in front of the plain registry), each a docker-registry of its own with its storage in the state folder."""

import base64
import contextlib
import http.client
import os
import secrets
import ssl
import warnings

from .config import SYSTEM_PATH, TestbedError, log
from .engine import registry_answers
from .processes import binary_path, run, write_file
from .state import ensure_daemon

SECURE_USER = "kohakuriver"
CA_SUBJECT = "kohakuriver test bed CA"
CERTS_D = "/etc/docker/certs.d"


def ensure_registry_variants(bed):
    """Start the secure and the cache registry when they are not answering; record them in bed.state["registries"]."""
    config = bed.config
    secure = _ensure_secure(bed)
    _start(bed, "registry-cache", _cache_config(config), lambda: registry_answers(config.cache_registry), config.cache_registry)
    bed.state["registries"] = {"plain": config.registry, "cache": config.cache_registry, "secure": secure,
                               "origin_log": config.path("registry", "registry.log"),
                               "cache_storage": config.path("registry-cache", "data")}


def _start(bed, name, text, ready, address):
    directory = bed.config.path(name)
    os.makedirs(os.path.join(directory, "data"), exist_ok=True)
    config_file = os.path.join(directory, "config.yml")
    changed = write_file(config_file, text)
    argv = [binary_path("docker-registry", {"PATH": SYSTEM_PATH}), "serve", config_file]
    if ensure_daemon(bed, "registry", name, argv, os.path.join(directory, "registry.log"), ready, 30, force=changed, address=address):
        log("%s listening on %s" % (name, address))


def _ensure_secure(bed):
    config = bed.config
    directory = config.path("registry-secure")
    os.makedirs(directory, exist_ok=True)
    files = _ensure_certificates(directory, [config.secure_registry.rpartition(":")[0], config.secure_runner_host])
    password = _ensure_password(directory)
    secure = {"url": config.secure_registry, "runner_url": config.secure_runner_url, "ca": files["ca"],
              "username": SECURE_USER, "password": password}
    _start(bed, "registry-secure", _secure_config(config, directory, files), lambda: secure_answers(secure), config.secure_registry)
    secure["certs_d"] = _ensure_daemon_trust(bed, config.secure_runner_url, files["ca"])
    return secure


def _ensure_certificates(directory, addresses):
    """A CA and a server certificate for the given IP addresses (made once with openssl; kept in the state folder)."""
    files = {name: os.path.join(directory, name) for name in ("ca.key", "server.crt", "server.key")}
    files["ca"] = os.path.join(directory, "ca.crt")
    if all(os.path.exists(path) for path in files.values()):
        return files
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_argv = ["-keyout", files["ca.key"], "-out", files["ca"], "-days", "3650", "-subj", "/CN=" + CA_SUBJECT,
               "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    run(["openssl", "req", "-x509"] + ec + ca_argv, what="openssl (test bed CA)")
    csr = os.path.join(directory, "server.csr")
    run(["openssl", "req"] + ec + ["-keyout", files["server.key"], "-out", csr, "-subj", "/CN=kohakuriver test bed registry"],
        what="openssl (registry key)")
    extensions = os.path.join(directory, "server.ext")
    write_file(extensions, "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n"
               % ",".join("IP:" + address for address in addresses))
    run(["openssl", "x509", "-req", "-in", csr, "-CA", files["ca"], "-CAkey", files["ca.key"], "-CAcreateserial",
         "-out", files["server.crt"], "-days", "825", "-extfile", extensions], what="openssl (registry certificate)")
    return files


def _crypt():
    """The crypt module (libxcrypt does bcrypt), deprecated since Python 3.11 but the standard library's only bcrypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # pylint: disable=import-outside-toplevel,deprecated-module
    return crypt


def _ensure_password(directory):
    path = os.path.join(directory, "password")
    try:
        with open(path, encoding="utf-8") as handle:
            password = handle.read().strip()
    except FileNotFoundError:
        password = secrets.token_hex(12)
        write_file(path, password + "\n", mode=0o600)
    htpasswd = os.path.join(directory, "htpasswd")
    if not _htpasswd_holds(htpasswd, password):
        crypt = _crypt()
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))  # pylint: disable=no-member
        write_file(htpasswd, "%s:%s\n" % (SECURE_USER, hashed), mode=0o600)
    return password


def _htpasswd_holds(path, password):
    with contextlib.suppress(OSError, ValueError):
        with open(path, encoding="utf-8") as handle:
            user, hashed = handle.read().strip().split(":", 1)
        return user == SECURE_USER and _crypt().crypt(password, hashed) == hashed
    return False


def _ensure_daemon_trust(bed, url, ca):
    """/etc/docker/certs.d/<url>/ca.crt (every dockerd on the machine reads it): recorded, so that `down` removes it."""
    folder = os.path.join(CERTS_D, url)
    path = os.path.join(folder, "ca.crt")
    with open(ca, encoding="utf-8") as handle:
        text = handle.read()
    entry = bed.entry("file", path)
    if os.path.exists(path) and not entry and not _is_test_bed_ca(path):
        raise TestbedError("%s exists but the test bed did not write it; remove it or set KR_TESTBED_SECURE_REGISTRY" % path)
    made, parent = [], folder
    while not os.path.isdir(parent):
        made.insert(0, parent)
        parent = os.path.dirname(parent)
    os.makedirs(folder, exist_ok=True)
    write_file(path, text)
    if not entry:
        bed.record({"kind": "file", "name": path, "folders": made})
    return path


def _is_test_bed_ca(path):
    """A CA a test bed made (left by one whose state folder is gone, e.g. after a SIGKILL and a manual rm)."""
    try:
        return CA_SUBJECT in run(["openssl", "x509", "-noout", "-subject", "-in", path], what="openssl x509 -subject")
    except TestbedError:
        return False


def remove_file_entry(entry):
    """Undo a "file" entry: the file, and the folders the test bed made for it when they are empty."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(entry["name"])
    for folder in reversed(entry.get("folders") or []):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def secure_answers(secure, credentials=True):
    """True when the secure registry answers /v2/ over TLS verified with its CA, with (or, credentials=False, without)
    the right credentials as it should: 200 with them, 401 without."""
    status = secure_status(secure, credentials)
    return status == (200 if credentials else 401)


def secure_status(secure, credentials=True):
    host, dummy, port = secure["url"].rpartition(":")
    context = ssl.create_default_context(cafile=secure["ca"])
    headers = {}
    if credentials:
        token = base64.b64encode(("%s:%s" % (secure["username"], secure["password"])).encode()).decode()
        headers["Authorization"] = "Basic " + token
    conn = http.client.HTTPSConnection(host, int(port), timeout=2, context=context)
    try:
        conn.request("GET", "/v2/", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def registry_config_lines(directory, address):
    """The lines of a distribution config every registry of the bed starts with: its storage under directory, address."""
    return [
        "version: 0.1",
        "log:",
        "  level: info",
        "storage:",
        "  filesystem:",
        "    rootdirectory: %s" % os.path.join(directory, "data"),
        "  delete:",
        "    enabled: true",
        "http:",
        "  addr: %s" % address,
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]


def _secure_config(config, directory, files):
    return "\n".join(registry_config_lines(directory, config.secure_registry) + [
        "  tls:",
        "    certificate: %s" % files["server.crt"],
        "    key: %s" % files["server.key"],
        "auth:",
        "  htpasswd:",
        "    realm: kohakuriver-testbed",
        "    path: %s" % os.path.join(directory, "htpasswd"),
        "",
    ])


def _cache_config(config):
    return "\n".join(registry_config_lines(config.path("registry-cache"), config.cache_registry) + [
        "proxy:",
        "  remoteurl: http://%s" % config.registry,
        "",
    ])
