"""The Docker Engine API over a unix socket (standard library only) and probes of the registry, sockets and sshd."""

import base64
import contextlib
import http.client
import json
import os
import shutil
import socket
import urllib.parse

from .config import TestbedError


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout, blocksize=1 << 20)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """Minimal Docker Engine API client on a unix socket (no SDK before the virtualenv exists)."""

    def __init__(self, name, socket_path):
        self.name = name
        self.socket_path = socket_path

    @property
    def docker_host(self):
        return "unix://" + self.socket_path

    def call(self, method, path, body=None, headers=None, timeout=60, ok=(200, 201, 204)):
        conn = _UnixHTTPConnection(self.socket_path, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise TestbedError("%s: %s %s failed: %s" % (self.name, method, path, exc)) from exc
        finally:
            conn.close()
        if response.status not in ok:
            raise TestbedError("%s: %s %s -> HTTP %d: %s" % (self.name, method, path, response.status, _api_message(data)))
        return response.status, data

    def stream(self, method, path, what, body=None, headers=None, timeout=900):
        """Call an endpoint answering with a JSON progress stream; raise on an error message in it."""
        data = self.call(method, path, body=body, headers=headers, timeout=timeout)[1]
        messages = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                messages.append(json.loads(line))
        for message in messages:
            if message.get("error"):
                raise TestbedError("%s: %s failed: %s" % (self.name, what, message["error"]))
        return messages

    def ping(self, timeout=2):
        try:
            return self.call("GET", "/_ping", timeout=timeout)[1] == b"OK"
        except TestbedError:
            return False

    def version(self):
        return json.loads(self.call("GET", "/version")[1])

    def image_store(self):
        """"containerd" when the daemon keeps images in containerd (snapshotter), else "graphdriver"."""
        status = json.loads(self.call("GET", "/info")[1]).get("DriverStatus") or []
        return "containerd" if ["driver-type", "io.containerd.snapshotter.v1"] in status else "graphdriver"

    def has_image(self, name):
        return self.image_id(name) is not None

    def image_id(self, name):
        status, data = self.call("GET", "/images/%s/json" % _quote(name), ok=(200, 404))
        return json.loads(data)["Id"] if status == 200 else None

    def load(self, archive):
        with open(archive, "rb") as body:
            headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(body.fileno()).st_size)}
            self.stream("POST", "/images/load?quiet=1", "load " + archive, body=body, headers=headers)

    def import_rootfs(self, rootfs, repo, tag, change):
        query = urllib.parse.urlencode({"fromSrc": "-", "repo": repo, "tag": tag, "changes": change})
        with open(rootfs, "rb") as body:
            headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(body.fileno()).st_size)}
            self.stream("POST", "/images/create?" + query, "import " + rootfs, body=body, headers=headers)

    def save(self, name, dest):
        conn = _UnixHTTPConnection(self.socket_path, 600)
        tmp = dest + ".tmp"
        try:
            conn.request("GET", "/images/get?" + urllib.parse.urlencode({"names": name}))
            response = conn.getresponse()
            if response.status != 200:
                raise TestbedError("%s: save %s -> HTTP %d: %s" % (self.name, name, response.status, _api_message(response.read())))
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (OSError, http.client.HTTPException) as exc:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise TestbedError("%s: save %s failed: %s" % (self.name, name, exc)) from exc
        finally:
            conn.close()
        os.replace(tmp, dest)

    def tag(self, source, target):
        repo, dummy, tag = target.rpartition(":")
        self.call("POST", "/images/%s/tag?%s" % (_quote(source), urllib.parse.urlencode({"repo": repo, "tag": tag})))

    def push(self, name):
        repo, dummy, tag = name.rpartition(":")
        auth = base64.urlsafe_b64encode(b"{}").decode()
        self.stream("POST", "/images/%s/push?tag=%s" % (_quote(repo), _quote(tag)), "push " + name, headers={"X-Registry-Auth": auth})

    def remove_image(self, name):
        self.call("DELETE", "/images/%s" % _quote(name), ok=(200, 404))

    def pull(self, name):
        repo, dummy, tag = name.rpartition(":")
        query = urllib.parse.urlencode({"fromImage": repo, "tag": tag})
        self.stream("POST", "/images/create?" + query, "pull " + name, timeout=600)

    def images(self):
        return json.loads(self.call("GET", "/images/json?all=1")[1])

    def containers(self):
        return json.loads(self.call("GET", "/containers/json?all=1")[1])

    def remove_container(self, container_id):
        self.call("DELETE", "/containers/%s?force=1&v=1" % container_id, ok=(204, 404))

    def run_true(self, image):
        """Run `true` in a container on the default bridge and remove it."""
        spec = json.dumps({"Image": image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "bridge"}})
        data = self.call("POST", "/containers/create", body=spec, headers={"Content-Type": "application/json"})[1]
        container = json.loads(data)["Id"]
        try:
            self.call("POST", "/containers/%s/start" % container)
            data = self.call("POST", "/containers/%s/wait" % container, timeout=60)[1]
            code = json.loads(data).get("StatusCode")
            if code != 0:
                raise TestbedError("%s: `docker run --rm %s true` exited %s" % (self.name, image, code))
        finally:
            self.call("DELETE", "/containers/%s?force=1" % container, ok=(204, 404))


def quote_reference(text):
    return urllib.parse.quote(text, safe="/:@")


_quote = quote_reference


def _api_message(data):
    try:
        return json.loads(data).get("message", data.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return data.decode("utf-8", "replace").strip()


def registry_request(address, path, headers=None, timeout=5):
    """(status, body) of a GET on the registry, or (None, b"") when it does not answer."""
    host, dummy, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None, b""
    finally:
        conn.close()


def registry_answers(address):
    return registry_request(address, "/v2/", timeout=2)[0] == 200


def registry_image_id(address, spec):
    """The image ID (config digest) the registry holds under the spec's name, or None."""
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    status, body = registry_request(address, "/v2/%s/manifests/%s" % (spec.repo, spec.tag), {"Accept": accept})
    if status != 200:
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return json.loads(body)["config"]["digest"]
    return None


def socket_answers(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def ssh_banner(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
