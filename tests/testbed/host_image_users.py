"""The test images on the Host for pytest sessions (fixture host_images), shared by the sessions that run at once
(pytest-xdist workers, two people's runs on one bed): the last session that leaves untags what was pulled for them.

The Host keeps no copy of its own otherwise, so that tests really pull. A session that ended without leaving (killed)
counts no more once its process is gone.
"""

import contextlib
import json
import os

from .config import Config, TestbedError
from .engine import quote_reference
from .state import locked


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {"users": [], "pulled": []}


def _save(path, record):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(path + ".tmp", path)


def _folder(config):
    return (config or Config()).path("host-images")


def join(host, names, config=None):
    """Count this process among the users of names on the Host engine, pulling from the registry what is missing."""
    folder = _folder(config)
    with locked(folder):
        path = os.path.join(folder, "users.json")
        record = _load(path)
        for name in names:
            if not host.has_image(name):
                host.pull(name)
                record["pulled"] = sorted(set(record["pulled"]) | {name})
        record["users"] = [pid for pid in record["users"] if pid != os.getpid() and _alive(pid)] + [os.getpid()]
        _save(path, record)


def leave(host, config=None):
    """Count this process out; the last user untags what was pulled (an image a container still uses stays)."""
    folder = _folder(config)
    with locked(folder):
        path = os.path.join(folder, "users.json")
        record = _load(path)
        record["users"] = [pid for pid in record["users"] if pid != os.getpid() and _alive(pid)]
        if not record["users"]:
            for name in record["pulled"]:
                with contextlib.suppress(TestbedError):
                    host.call("DELETE", "/images/%s" % quote_reference(name), ok=(200, 404, 409))
            record["pulled"] = []
        _save(path, record)
