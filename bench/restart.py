#!/usr/bin/python3
"""How long a guest is without network when its slirp-helper dies (issue 14).

Starts a private virtqemud of the fork (build/root-SERIES, as the system
tests do), boots the test guest with one user NIC and has it fetch a small
file from a host web server in a tight loop. Then, REPS times: kills the
helper (SIGKILL), and measures on the host the time from the kill to the
first request of the guest that reaches the web server through the new
helper. Between kills it waits until the helper has run 12 s, so that
each kill is a first failure, restarted at once (a helper dying sooner
after its start is restarted after a back-off).

    /usr/bin/python3 bench/restart.py [--reps 10] [--signal KILL]

Needs root, the fork (make libvirt), the helper (make helper) and the
guest (make guest). Prints a Markdown table and writes it to
build/bench/restart.md. The target is 2 s.
"""

import argparse
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "libvirt"))
import libvirt_harness as H  # noqa: E402

STABLE_S = 12


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
    times = []
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
            H.wait_for(lambda: len(http.requests) > 2, 30, "the guest's fetch loop")
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
                seen = max(seen, len(http.requests))
                H.wait_for(lambda: len(http.requests) > seen, 60,
                           "a request of the guest through the new helper", interval=0.005)
                times.append(time.monotonic() - t0)
                new = H.wait_for(lambda: vm.dom.slirp_helpers()["net0"] != helper and
                                 vm.dom.slirp_helpers()["net0"], 10, "the new helper's pid")
                started = time.monotonic()
                print("kill %d: helper %d -> %d, guest's next request %.3f s after the kill"
                      % (rep + 1, helper, new, times[-1]), flush=True)
                helper = new
    finally:
        if vm is not None:
            vm.disconnect()
            lv.virsh("destroy", vm.dom.name, check=False)
        lv.stop()

    table = ("| signal | kills | median s | min s | max s | target |\n"
             "|---|---|---|---|---|---|\n"
             "| SIG%s | %d | %.3f | %.3f | %.3f | 2 s |\n"
             % (args.signal, len(times), statistics.median(times), min(times), max(times)))
    print(table)
    os.makedirs(os.path.dirname(args.md), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
