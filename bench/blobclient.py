#!/usr/bin/python3
"""Guest side of the benchmark's integrity check.

    blobclient.py send|recv HOST PORT SIZE [TIMEOUT]

Connects to the runner's blob server, sends (or receives) SIZE random bytes,
reads the server's SHA-256 of what it saw, and prints one JSON line with both
digests. The runner compares them with its own record. Every socket operation
has a timeout, so a stalled path fails instead of hanging.
"""
import hashlib
import json
import os
import socket
import struct
import sys

CHUNK = 256 * 1024


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        part = s.recv(n - len(buf))
        if not part:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += part
    return bytes(buf)


def main():
    direction, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
    h = hashlib.sha256()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall((b"S" if direction == "send" else b"R") + struct.pack("!Q", size))
        moved = 0
        if direction == "send":
            while moved < size:
                chunk = os.urandom(min(CHUNK, size - moved))
                h.update(chunk)
                s.sendall(chunk)
                moved += len(chunk)
        else:
            while moved < size:
                chunk = s.recv(min(CHUNK, size - moved))
                if not chunk:
                    raise EOFError("connection closed after %d of %d bytes" % (moved, size))
                h.update(chunk)
                moved += len(chunk)
        peer = recv_exact(s, 32).hex()
    print(json.dumps({"direction": direction, "bytes": moved, "sha256": h.hexdigest(),
                      "peer_sha256": peer}))


if __name__ == "__main__":
    main()
