#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""dnsns.py - run slirp-helper against a resolver list and DNS servers of
the test's choosing.

libslirp reads /etc/resolv.conf by path and forwards the guest's DNS to the
nameservers it names on port 53, so test-io.py starts this script under
`unshare --mount --net --propagation private`: here it brings up loopback,
bind-mounts RESOLV over /etc/resolv.conf, answers DNS on 127.0.0.1:53 and
[::1]:53 of the private network namespace (an A record 192.0.2.4 for
queries that came over IPv4, 192.0.2.6 over IPv6, so the test can tell
which upstream answered), and runs the helper until it exits or this script
gets SIGTERM.  Nothing of the host's is touched.

Usage: dnsns.py RESOLV HELPER [HELPER-ARGS...]   (exit status: the helper's)
"""
import select
import signal
import socket
import struct
import subprocess
import sys

ANSWER = {socket.AF_INET: "192.0.2.4", socket.AF_INET6: "192.0.2.6"}


def answer(query, family):
    """A response to @query with one A record, or None if it is no query."""
    if len(query) < 12 or query[2] & 0x80:
        return None
    pos = 12
    while pos < len(query) and query[pos]:
        pos += query[pos] + 1
    question = query[12:pos + 5]
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ANSWER[family])
    return header + question + record


def main():
    resolv, helper_argv = sys.argv[1], sys.argv[2:]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
    servers = []
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        servers.append(s)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    # the helper inherits the frame socket (--fd) from test-io.py through us
    helper = subprocess.Popen(helper_argv, close_fds=False)
    while not stop and helper.poll() is None:
        try:
            ready = select.select(servers, [], [], 0.2)[0]
        except InterruptedError:
            continue
        for s in ready:
            query, peer = s.recvfrom(4096)
            reply = answer(query, s.family)
            if reply:
                s.sendto(reply, peer)
    if helper.poll() is None:
        helper.terminate()
    sys.exit(helper.wait())


if __name__ == "__main__":
    main()
