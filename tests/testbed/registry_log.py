"""What a registry served, from distribution's log: every answer is a `response completed` line with its method,
URI and `http.response.written` bytes. For the bytes the origin served behind the pull-through cache."""

import os
import re
import time

_RESPONSE = re.compile(r'msg="response completed".*?http\.request\.method=(\w+) .*?http\.request\.uri="?([^" ]+)"?.*?'
                       r'http\.response\.written=(\d+)')


def log_offset(log_path):
    """Where the log ends now: pass it to bytes_served after the traffic to measure."""
    return os.path.getsize(log_path)


def bytes_served(log_path, since, repository=None, kind="blobs", settle=0.3):
    """Bytes the registry wrote answering GETs since the log offset since: of repository's (every repository's with
    None) blobs (kind "manifests": manifests; None: both). Read until two reads settle seconds apart agree, since a
    line is logged just after its answer is sent."""
    prefix = "/v2/" + ("%s/" % repository if repository else "")
    total, previous = None, -1
    while total != previous:
        previous = total
        time.sleep(settle if previous is not None else 0)
        with open(log_path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode("utf-8", "replace")
        total = sum(int(found.group(3)) for found in map(_RESPONSE.search, text.splitlines())
                    if found and found.group(1) == "GET" and _wanted(found.group(2), prefix, kind))
    return total


def _wanted(uri, prefix, kind):
    if not uri.startswith(prefix):
        return False
    parts = uri.split("/")
    return kind is None or (len(parts) >= 3 and parts[-2] == kind)
