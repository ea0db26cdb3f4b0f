"""A TCP relay from listeners inside other network namespaces to addresses of this one (standard library only).

The runner daemons each live in a network namespace with only `lo`, so the test bed's registries on the Host's
127.0.0.1 are out of their reach. One forwarder process serves them all: for every mapping it enters the runner's
namespace (setns(2) through ctypes, this thread only), binds the listener there, and comes back; a socket stays in
the namespace it was made in, so every connection it accepts is relayed to the target from the Host's namespace.
Nothing listens outside the runner namespaces, and traffic stays on loopback.

    python3 forward.py [--owner FOLDER] NETNS_PATH,LISTEN_HOST:PORT,TARGET_HOST:PORT [...]

(--owner names the test bed's state folder on the command line, so that its sweeps find the process.)

`in_netns(path, function)` runs a function in another network namespace (a thread of its own), for probes.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
PROGRAM = "kr-forward"  # argv[0] of the process, so that sweeps find it by name
BUFFER = 1 << 18


def _setns(fd):
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "setns: %s" % os.strerror(error))


@contextlib.contextmanager
def entered(netns_path):
    """The calling thread in network namespace netns_path for the with block."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(netns_path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def in_netns(netns_path, function, *args):
    """function(*args) run by a thread inside network namespace netns_path; its result, or its exception raised."""
    outcome = {}

    def body():
        try:
            with entered(netns_path):
                outcome["value"] = function(*args)
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            outcome["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _address(text):
    host, dummy, port = text.rpartition(":")
    return host, int(port)


def parse_mapping(text):
    netns_path, listen, target = text.split(",")
    return netns_path, _address(listen), _address(target)


def _listen(netns_path, address):
    with entered(netns_path):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(address)
        server.listen(64)
    return server


def _pump(source, sink):
    """Copy source to sink until its end, then pass the end on: with splice(2) through a pipe (no copy through
    Python), or recv/send where the kernel refuses it."""
    try:
        _splice(source, sink)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _splice(source, sink):
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, BUFFER)
    try:
        while True:
            try:
                moved = os.splice(source.fileno(), write_end, BUFFER)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                return _copy(source, sink)
            if not moved:
                return None
            while moved:
                moved -= os.splice(read_end, sink.fileno(), moved)
    finally:
        os.close(read_end)
        os.close(write_end)


def _copy(source, sink):
    while True:
        data = source.recv(BUFFER)
        if not data:
            return
        sink.sendall(data)


def _relay(client, target):
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


def _serve(server, target):
    while True:
        client, dummy = server.accept()
        threading.Thread(target=_relay, args=(client, target), daemon=True).start()


def main(argv):
    if argv[:1] == ["--owner"]:
        argv = argv[2:]
    mappings = [parse_mapping(text) for text in argv]
    if not mappings:
        print("usage: forward.py [--owner FOLDER] NETNS_PATH,LISTEN_HOST:PORT,TARGET_HOST:PORT [...]", file=sys.stderr)
        return 2
    servers = [(_listen(netns_path, listen), target) for netns_path, listen, target in mappings]
    for server, target in servers:
        threading.Thread(target=_serve, args=(server, target), daemon=True).start()
    print("forwarding %s" % " ".join(argv), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.exit(main(sys.argv[1:]))
