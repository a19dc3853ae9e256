#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""capture-corpus.py - seeds for fuzz-input from a real guest's traffic.

A network namespace plays the guest (a Linux network stack, busybox tools)
behind the benchmark's forwarder (bench/forwarder.c, built by bench/Makefile)
and a confined slirp-helper.  Every frame the guest sends on its tap device
is captured (AF_PACKET, outgoing only) while it runs DHCP, ARP, DNS, ping,
TCP to a host listener and UDP, and written as fuzz-input records to
corpus/input/real-*, one file per phase.  Needs root.  Rerun to refresh.

Usage: capture-corpus.py [PATH-TO-slirp-helper]
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
HELPER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build", "helper", "src",
                                                            "slirp-helper")
FORWARDER = os.path.join(TOP, "build", "bench", "forwarder")

CAPTURE = r'''
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("tap0", 0))
out = open(sys.argv[1], "wb", buffering=0)
while True:
    data, addr = s.recvfrom(70000)
    if addr[2] == socket.PACKET_OUTGOING:
        out.write(struct.pack("!H", len(data)) + data)
'''


def sh(ns, cmd, check=True):
    return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", cmd], capture_output=True,
                          text=True, timeout=60, check=check)


def main():
    if not os.path.exists(FORWARDER):
        subprocess.run(["make", "-s", "-C", os.path.join(TOP, "bench"),
                        "OUT=" + os.path.dirname(FORWARDER)], check=True)
    ns = "fuzzcap-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    procs = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def serve():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            data = c.recv(65536)
            c.sendall(b"pong " + data)
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    frames_path = "/tmp/fuzzcap-%d.raw" % os.getpid()
    phases = []
    try:
        hs, fs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        procs.append(subprocess.Popen([HELPER, "--fd=%d" % hs.fileno()], pass_fds=[hs.fileno()],
                                      stderr=subprocess.DEVNULL))
        fwd = subprocess.Popen([FORWARDER, "--fd=%d" % fs.fileno(), "--mode=dgram", "--tap=tap0",
                                "--netns=/run/netns/" + ns], pass_fds=[fs.fileno()],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(fwd)
        hs.close()
        fs.close()
        assert fwd.stdout.readline().startswith(b"READY")
        sh(ns, "ip link set lo up && ip link set tap0 up")
        cap = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", CAPTURE,
                                frames_path])
        procs.append(cap)
        time.sleep(0.5)

        def phase(name, cmd, check=True):
            start = os.path.getsize(frames_path) if os.path.exists(frames_path) else 0
            sh(ns, cmd, check)
            time.sleep(0.5)
            phases.append((name, start, os.path.getsize(frames_path)))
        phase("dhcp", "busybox udhcpc -i tap0 -n -q -f -s /bin/true")
        sh(ns, "ip addr add 10.0.2.15/24 dev tap0 && ip route add default via 10.0.2.2")
        phase("dns", "busybox nslookup example.org 10.0.2.3", check=False)
        phase("ping", "busybox ping -c 2 -W 2 10.0.2.2")
        phase("tcp", "%s -c \"import socket; s=socket.create_connection(('10.0.2.2', %d)); "
                     "s.sendall(b'ping'); print(s.recv(100))\"" % (sys.executable, port))
        phase("udp", "%s -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                     "[s.sendto(b'x' * n, ('10.0.2.2', 9)) for n in (1, 1400, 4000)]\""
              % sys.executable)
        phase("ipv6", "ip -6 addr add fec0::15/64 dev tap0 nodad; sleep 1; "
                      "busybox ping -6 -c 1 -W 2 fec0::2", check=False)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        listener.close()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    with open(frames_path, "rb") as f:
        raw = f.read()
    os.unlink(frames_path)
    out_dir = os.path.join(HERE, "corpus", "input")
    for name, start, end in phases:
        records = b""
        pos = start
        while pos + 2 <= end:
            n = struct.unpack("!H", raw[pos:pos + 2])[0]
            frame = raw[pos + 2:pos + 2 + n]
            pos += 2 + n
            records += bytes([0]) + struct.pack("!H", len(frame)) + frame + bytes([2, 0, 0])
        with open(os.path.join(out_dir, "real-" + name), "wb") as f:
            f.write(records)
        print("real-%s: %d bytes" % (name, len(records)))


if __name__ == "__main__":
    main()
