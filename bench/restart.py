#!/usr/bin/python3
"""How long a guest is without network when its slirp-helper dies (issue 14).

Starts a private virtqemud of the fork (build/root-SERIES, as the system
tests do), boots the test guest with one user NIC, and has it open a new TCP
connection to the host every 50 ms (each in the background, so that one
whose SYN was lost does not hold up the next) and fetch a small file from
a host web server in a loop. Then, REPS times: kills the helper, and
measures on the host the time from the kill to the first connection, and
to the first HTTP request, that reach the host through the new helper.
The connections show when the network is back; the fetch adds what TCP
makes of the gap (a SYN lost while no helper ran is sent again after 1 s,
and wget gives up after 2 s). Between kills it waits until the helper has run 12 s, so that each
kill is a first failure, restarted at once (a helper dying sooner after
its start is restarted after a back-off).

    /usr/bin/python3 bench/restart.py [--reps 10] [--signal KILL]

Needs root, the fork (make libvirt), the helper (make helper) and the
guest (make guest). Prints a Markdown table and writes it to
build/bench/restart.md. The target is 2 s.
"""

import argparse
import os
import signal
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "libvirt"))
import libvirt_harness as H  # noqa: E402

STABLE_S = 12


class ConnectSink:
    """Records the time of every connection accepted on its port."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.arrivals = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.arrivals.append(time.monotonic())
            conn.close()

    def first_after(self, t):
        return next((a for a in self.arrivals if a > t), None)


def summary(name, times):
    return "| %s | %.3f | %.3f | %.3f | 2 s |\n" % (
        name, statistics.median(times), min(times), max(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--signal", default="KILL", choices=["KILL", "SEGV", "ABRT"])
    ap.add_argument("--md", default=os.path.join(REPO, "build", "bench", "restart.md"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("restart: run as root (it starts private libvirt daemons)")
    sig = getattr(signal, "SIG" + args.signal)

    run_dir = H.new_run_dir("bench-restart")
    lv = H.LibvirtInstance(run_dir, "restart", helper=H.default_helper())
    vm = None
    net_times, fetch_times = [], []
    probes = ConnectSink()
    try:
        lv.start()
        with H.guest.HttpFileServer(size=4096, host="127.0.0.1") as http:
            vm = H.VM(H.Domain(lv, "restart", [H.nic_xml(H.mac_for(1, 0xbe))]).define())
            vm.boot()
            if H.netdev_transport(lv.helper) != "stream":
                sys.exit("restart: this build or helper has no stream transport; "
                         "a dead helper is not replaced")
            vm.console.dhcp("eth0")
            vm.check("(while :; do timeout 2 wget -q -O /dev/null %s; done) >/dev/null 2>&1 &"
                     % http.url("10.0.2.2"))
            vm.check("(while :; do (echo x | nc 10.0.2.2 %d &); sleep 0.05; done) "
                     ">/dev/null 2>&1 &" % probes.port)
            H.wait_for(lambda: len(http.requests) > 2 and len(probes.arrivals) > 2, 30,
                       "the guest's fetch and connection loops")
            helper = vm.dom.slirp_helpers()["net0"]
            started = time.monotonic()
            for rep in range(args.reps):
                time.sleep(max(0.0, started + STABLE_S - time.monotonic()))
                seen = len(http.requests)
                t0 = time.monotonic()
                os.kill(helper, sig)
                H.wait_for(lambda: not H.pid_alive(helper), 10, "helper %d to die" % helper)
                # A request already under way when the helper died may
                # still arrive: count from the first one after its death.
                dead = time.monotonic()
                seen = max(seen, len(http.requests))
                H.wait_for(lambda: len(http.requests) > seen, 60,
                           "a request of the guest through the new helper", interval=0.005)
                fetch_times.append(time.monotonic() - t0)
                H.wait_for(lambda: probes.first_after(dead), 60,
                           "a connection through the new helper")
                net_times.append(probes.first_after(dead) - t0)
                new = H.wait_for(lambda: vm.dom.slirp_helpers()["net0"] != helper and
                                 vm.dom.slirp_helpers()["net0"], 10, "the new helper's pid")
                started = time.monotonic()
                print("kill %d: helper %d -> %d, the guest's next connection %.3f s and "
                      "next HTTP request %.3f s after the kill"
                      % (rep + 1, helper, new, net_times[-1], fetch_times[-1]), flush=True)
                helper = new
    finally:
        if vm is not None:
            vm.disconnect()
            lv.virsh("destroy", vm.dom.name, check=False)
        lv.stop()

    table = ("| SIG%s, %d kills | median s | min s | max s | target |\n"
             "|---|---|---|---|---|\n" % (args.signal, len(net_times))
             + summary("guest's next connection (one every 50 ms)", net_times)
             + summary("guest's next HTTP request (wget loop)", fetch_times))
    print(table)
    os.makedirs(os.path.dirname(args.md), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
