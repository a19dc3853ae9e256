#!/usr/bin/python3
"""make demo: libvirt-slirp end to end, told in plain words.

Starts a private virtlogd + virtqemud from build/root-SERIES (the 11.3.0
fork unless $LIBVIRT_SERIES names another; they never touch a system
libvirt), defines and starts a tiny guest with one
<interface type='user'>, and shows:
  1. the slirp helper libvirt started for the NIC, and its command line;
  2. the lease the guest got from the helper's DHCP server;
  3. the guest fetching a file from a web server on the host's 127.0.0.1;
  4. the host reaching a web server in the guest through a <portForward>
     (when the fork and the helper support it);
  5. a second user NIC hotplugged with virsh attach-device, working;
then tears everything down.  Needs root, the fork (libvirt/build.sh), the
helper (helper/) and the guest (tests/guest/build.py); `make demo` builds them.

Usage: /usr/bin/python3 tests/libvirt/demo.py [--helper PATH] [--keep]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libvirt_harness as H  # noqa: E402

T0 = time.monotonic()


def say(text=""):
    print("[%5.1fs] %s" % (time.monotonic() - T0, text) if text else "", flush=True)


def detail(text):
    for line in text.rstrip("\n").splitlines():
        print("          " + line, flush=True)


def fetch_forwarded(port):
    try:
        return H.guest.tcp_get("127.0.0.1", port, "/hello.txt", timeout=5).decode()
    except (OSError, H.guest.GuestError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--helper", default=H.default_helper(),
                    help="slirp helper for qemu.conf (default: %(default)s)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the run directory (logs, console) afterwards")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo: run as root (it starts private libvirt daemons)")
    if not os.access(args.helper, os.X_OK):
        sys.exit("demo: no slirp helper at %s: build it first (make helper)" % args.helper)

    run_dir = H.new_run_dir("demo")
    lv = H.LibvirtInstance(run_dir, "demo", helper=args.helper)
    vm = None
    ok = False
    try:
        say("Starting private virtlogd and virtqemud from %s" % H.PREFIX)
        lv.start()
        say("virtqemud pid %d, socket %s" % (lv.qemud.pid, lv.socket))
        detail("qemu.conf: slirp_helper = \"%s\"" % args.helper)

        # Port forwarding needs both the fork's <portForward> support and a helper with hostfwd.
        fwd_port = None
        forwards = []
        if H.fork_has("does not support port forwarding") and "hostfwd" in H.helper_features(args.helper):
            fwd_port = H.guest.free_tcp_port()
            forwards = [H.port_forward_xml("tcp", "127.0.0.1", fwd_port, 80)]
        vm = H.VM(H.Domain(lv, "demo", [H.nic_xml(H.mac_for(1, 0xde), forwards=forwards)]).define())
        say("Defined domain 'demo' (q35, direct kernel boot, one <interface type='user'>); starting it")
        vm.boot()
        dom = vm.dom
        say("The guest is up (QEMU pid %d)." % dom.qemu_pid())

        helpers = dom.slirp_helpers()
        for alias, pid in sorted(helpers.items()):
            argv = H.cmdline(pid)
            say("libvirt started slirp helper pid %d for NIC %s:" % (pid, alias))
            detail(" ".join(argv))
        netdevs = H.netdev_args(dom.qemu_cmdline())
        say("QEMU got the NIC as a socket on an inherited fd, not its built-in slirp:")
        for n in netdevs:
            detail("-netdev %s" % H.json.dumps(n))

        lease = vm.console.dhcp("eth0")
        say("The guest asked for an address over DHCP and the helper leased it:")
        detail("eth0: %s/%s, gateway %s, DNS %s" % (lease["ip"], lease["mask"], lease["router"],
                                                   lease["dns"]))

        with H.guest.HttpFileServer(size=2 * 1024 * 1024) as http:
            say("A web server on the host listens on 127.0.0.1:%d; the guest fetches %s"
                % (http.port, http.url("10.0.2.2")))
            t = time.monotonic()
            H.fetch_ok(vm, http, "10.0.2.2")
            say("The guest downloaded %d bytes in %.1f s; its sha256 matches the host's (%s...)"
                % (http.size, time.monotonic() - t, http.sha256[:16]))

            if fwd_port:
                vm.check("httpd -p 80 -h /srv")
                say("The guest runs a web server on port 80; the domain XML forwards host "
                    "127.0.0.1:%d to it (<portForward>)" % fwd_port)
                body = H.wait_for(lambda: fetch_forwarded(fwd_port), 15, "the port forward")
                say("The host fetched http://127.0.0.1:%d/hello.txt from the guest: %r"
                    % (fwd_port, body.strip()))
            else:
                say("(Port forwarding skipped: this build or helper does not support it yet.)")

            nic = os.path.join(dom.dir, "second-nic.xml")
            with open(nic, "w") as f:
                f.write(H.nic_xml(H.mac_for(2, 0xde)))
            say("Hotplugging a second user NIC: virsh attach-device demo %s --live" % nic)
            lv.virsh("attach-device", dom.name, nic, "--live")
            after = H.wait_for(lambda: len(dom.slirp_helpers()) == 2 and dom.slirp_helpers(),
                               10, "the second helper")
            new_alias = (set(after) - set(helpers)).pop()
            say("libvirt started a second helper, pid %d, for NIC %s:" % (after[new_alias], new_alias))
            detail(" ".join(H.cmdline(after[new_alias])))
            H.wait_for(lambda: vm.run("test -e /sys/class/net/eth1", timeout=20)[1] == 0,
                       30, "eth1 in the guest")
            vm.check("ip link set eth0 down")
            lease1 = vm.console.dhcp("eth1")
            say("With eth0 down, the new NIC eth1 got its own lease from the new helper: %s via %s"
                % (lease1["ip"], lease1["router"]))
            H.fetch_ok(vm, http, "10.0.2.2")
            say("...and fetched the same file through it; checksum matches.")
            vm.check("ip -4 addr flush dev eth1; ip link set eth0 up")

            say("Unplugging it again: virsh detach-device demo %s --live" % nic)
            lv.virsh("detach-device", dom.name, nic, "--live")
            pid = after[new_alias]
            H.wait_for(lambda: not H.pid_alive(pid), 10, "helper %d to exit" % pid)
            say("Its helper (pid %d) is gone; eth0's helper (pid %d) keeps running."
                % (pid, helpers["net0"]))

        say("Destroying the guest")
        dom.destroy()
        left = [p for p in helpers.values() if H.pid_alive(p)]
        say("Guest stopped; helpers left running: %s" % (left or "none"))
        ok = True
    except (H.HarnessError, H.guest.GuestError) as e:
        say("DEMO FAILED: %s" % e)
        if vm is not None:
            detail(vm.diagnostics(20))
    finally:
        if vm is not None:
            vm.disconnect()
        leftovers = lv.stop()
        say("Stopped the private daemons%s." % (
            "" if not leftovers else " (killed leftovers: %r)" % leftovers))
        if args.keep or not ok:
            say("Logs and console kept in %s" % run_dir)
        else:
            H.shutil.rmtree(run_dir, ignore_errors=True)
    say("Demo %s in %.0f s." % ("finished" if ok else "FAILED", time.monotonic() - T0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
