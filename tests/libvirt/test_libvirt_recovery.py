"""A helper that dies while its guest runs is replaced (issue 14).

The fork connects a helper that accepts a stream to a socket QEMU listens
on; when the helper dies, QEMU reports NETDEV_STREAM_DISCONNECTED and
libvirt connects a new helper to the same socket, telling management
applications through its nic-backend event.  These tests kill the
helper as a crash would and check what the guest and libvirt see; the
time from the kill to the guest's first working fetch is printed (the
2 s target is measured by bench/restart.sh, not asserted here).

The 9.0.0 backport restarts the helper too but has no nic-backend event;
there the tests check everything else, and QEMU's own event.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import libvirt_harness as H

pytestmark = pytest.mark.xfail(
    not H.fork_has("slirp-%d-%s.sock"), strict=True,
    reason="issue 14: this build connects the helper over a datagram socketpair, "
    "so a helper that dies is not replaced")


class TrickleSink:
    """A host TCP server that reads what one client sends, and records how
    the connection ended; the guest holds a connection to it open."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    self.received += len(data)
            except OSError:
                pass
        self.ended.set()

    def close(self):
        self.sock.close()


# The 11.3.0 series' VIR_DOMAIN_EVENT_ID_NIC_BACKEND
HAS_NIC_BACKEND_EVENT = H.SERIES != "9.0.0"


class EventWatcher:
    """A management client: `virsh event --loop` (or `qemu-monitor-event`,
    for QEMU's own events) for one event of one domain, its lines collected
    as they come."""

    def __init__(self, lv, name, event, command="event"):
        self.proc = subprocess.Popen([H.VIRSH, "-c", lv.uri, command, "--domain", name,
                                      "--event", event, "--loop"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        # virsh prints nothing once it is registered; give it time to be.
        time.sleep(2)
        if self.proc.poll() is not None:
            pytest.fail("virsh %s --event %s exited: %s" % (command, event, self.lines))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def nic_backend_states(self, alias="net0"):
        """The states of the nic-backend events of @alias seen so far."""
        return [m.group(1) for line in self.lines
                for m in [re.search(r"alias: '%s' state: '(\w+)'" % alias, line)] if m]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(5)


@pytest.fixture
def watch_events():
    """Starts EventWatchers, stopped (by their virsh's pid) after the test."""
    watchers = []

    def start(*args, **kwargs):
        watchers.append(EventWatcher(*args, **kwargs))
        return watchers[-1]

    yield start
    for watcher in watchers:
        watcher.stop()


def guest_fetch_works(vm, http):
    out, status = vm.run("timeout 5 wget -q -O /dev/null %s && echo fetched" % http.url("10.0.2.2"),
                         timeout=30)
    return status == 0 and "fetched" in out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_helper_that_dies_is_replaced(lv, vm_factory, http, watch_events, sig):
    mac = H.mac_for(1, 60 + int(sig))
    boot_port, live_port = H.guest.free_tcp_port(), H.guest.free_tcp_port()
    boot_fwd = H.port_forward_xml("tcp", "127.0.0.1", boot_port, 80)
    vm = vm_factory(lv, "recover-%d" % int(sig), [H.nic_xml(mac, forwards=[boot_fwd], mtu=9000)])
    vm.boot()
    if H.netdev_transport(lv.helper) != "stream":
        pytest.fail("helper %s does not accept a stream: nothing can replace it" % lv.helper)
    old = vm.dom.slirp_helpers()["net0"]
    lease = vm.console.dhcp("eth0")
    assert lease["ip"] == "10.0.2.15", lease
    vm.check("httpd -p 80 -h /srv")

    # A forward added live must survive the restart too.
    live_fwd = H.port_forward_xml("tcp", "127.0.0.1", live_port, 80)
    path = os.path.join(vm.dom.dir, "nic-update.xml")
    with open(path, "w") as f:
        f.write(H.live_interface_xml(lv, vm.dom.name, mac, [boot_fwd, live_fwd]))
    lv.virsh("update-device", vm.dom.name, path, "--live")
    for port in (boot_port, live_port):
        H.wait_for(lambda: H.forward_reaches_guest(port), 15,
                   "127.0.0.1:%d to reach the guest before the kill" % port)

    # Mid-transfer: the guest streams to the host and fetches a blob in a loop.
    sink = TrickleSink()
    vm.check("(while :; do echo x; sleep 0.2; done | nc 10.0.2.2 %d; echo nc-exit=$? > /tmp/nc.rc) "
             ">/dev/null 2>&1 &" % sink.port)
    vm.check("(while :; do wget -q -O /dev/null %s; done) >/dev/null 2>&1 &" % http.url("10.0.2.2"))
    H.wait_for(lambda: sink.received > 0, 15, "the guest's stream to reach the host")

    if HAS_NIC_BACKEND_EVENT:
        assert H.virsh_knows_event("nic-backend")
        events = watch_events(lv, vm.dom.name, "nic-backend")
    qemu_events = watch_events(lv, vm.dom.name, "NETDEV_STREAM_DISCONNECTED",
                               command="qemu-monitor-event")
    mark = lv.log_mark()
    t0 = time.monotonic()
    os.kill(old, sig)
    H.wait_for(lambda: not H.pid_alive(old), 10, "helper %d to die of %s" % (old, sig.name))

    H.wait_for(lambda: guest_fetch_works(vm, http), 30, "the guest's next fetch to succeed")
    print("\n%s: the guest fetched again %.2f s after the kill" % (sig.name, time.monotonic() - t0))

    # One new helper, in the status XML, connected to QEMU; the old one gone.
    # libvirt writes the status once it has checked the new helper, which
    # may already serve the guest by then.
    new = H.wait_for(lambda: vm.dom.slirp_helpers()["net0"] != old and vm.dom.slirp_helpers()["net0"],
                     10, "the status XML to name the new helper")
    assert H.pid_alive(new)
    assert [p for p, _ in vm.dom.helper_processes()] == [new]
    assert len(vm.dom.slirp_sockets()) == 1, vm.dom.slirp_sockets()
    assert len(vm.dom.slirp_pidfiles()) == 1, vm.dom.slirp_pidfiles()
    argv = vm.dom.helper_argv(new)
    assert "--mtu=9000" in argv, argv
    for port in (boot_port, live_port):
        assert "--hostfwd=tcp:127.0.0.1:%d-:80" % port in argv, argv

    # The guest keeps its address, and gets it again when it renews.
    assert "10.0.2.15/24" in vm.check("ip -4 -o addr show dev eth0")
    lease = vm.console.dhcp("eth0")
    assert lease["ip"] == "10.0.2.15", lease
    assert guest_fetch_works(vm, http)

    # Both forwards work again.
    for port in (boot_port, live_port):
        H.wait_for(lambda: H.forward_reaches_guest(port), 15,
                   "127.0.0.1:%d to reach the guest after the restart" % port)

    # The guest's open connection was reset, not left hanging.
    H.wait_for(lambda: "nc-exit=" in vm.run("cat /tmp/nc.rc 2>/dev/null")[0], 30,
               "the guest's connection through the dead helper to end")
    assert sink.ended.wait(10), "the host side of the guest's connection did not end"
    sink.close()

    # Logged in both logs, and libvirt's event and QEMU's reached
    # management clients.
    text = lv.log_since(mark)
    assert "slirp-helper of interface 'net0' of domain '%s' (pid %d) is gone, restarting it" % (
        vm.dom.name, old) in text, text[-3000:]
    log = open(vm.dom.domain_log(), errors="replace").read()
    assert "slirp-helper of interface 'net0' restarted as pid %d" % new in log, log[-2000:]
    if HAS_NIC_BACKEND_EVENT:
        H.wait_for(lambda: "restarted" in events.nic_backend_states(), 10,
                   "the event of the new helper")
        assert events.nic_backend_states() == ["exited", "restarted"], events.lines
    assert any("NETDEV_STREAM_DISCONNECTED" in line and "hostnet0" in line
               for line in qemu_events.lines), qemu_events.lines

    vm.dom.destroy()
    assert vm.dom.slirp_pidfiles() == []
    assert not H.pid_alive(new)


DYING_HELPER = """#!/bin/sh
case "$*" in
*--print-capabilities*) exec {real} "$@";;
esac
if [ -e {broken} ]; then
    exit 1
fi
exec {real} "$@"
"""


def wired_helpers(dom, exe):
    """Pids of processes running @exe that are connected to @dom's QEMU
    (the instance's helper is a wrapper script that execs @exe)."""
    qemu_socks = H.socket_inodes(dom.qemu_pid())
    peers = H.unix_peer_map()
    return [pid for pid, _ in dom.lv.processes(exe)
            if any(peers.get(i) in qemu_socks for i in H.socket_inodes(pid))]


def test_helper_that_keeps_dying_is_given_up(instances, run_dir, our_helper, vm_factory, http,
                                             watch_events):
    """A helper that exits at once on every start: libvirt backs off
    (0.25, 0.5, 1, 2 s), then sets the link down and says so in its logs
    and an event; setting the link up again starts a working helper."""
    broken = os.path.join(run_dir, "dying-helper.broken")
    path = os.path.join(run_dir, "dying-helper")
    with open(path, "w") as f:
        f.write(DYING_HELPER.format(real=our_helper, broken=broken))
    os.chmod(path, 0o755)
    lv = instances.get("dying", path)
    mac = H.mac_for(1, 70)
    vm = vm_factory(lv, "dying", [H.nic_xml(mac)])
    started = time.monotonic()
    vm.boot()
    vm.console.dhcp("eth0")
    assert guest_fetch_works(vm, http)
    old = vm.dom.slirp_helpers()["net0"]
    assert wired_helpers(vm.dom, our_helper) == [old]
    # A helper that ran 10 s is healthy: its death is the first failure,
    # restarted at once, and the four after it are backed off.
    time.sleep(max(0, started + 15 - time.monotonic()))

    open(broken, "w").close()
    if HAS_NIC_BACKEND_EVENT:
        events = watch_events(lv, vm.dom.name, "nic-backend")
    mark = lv.log_mark()
    os.kill(old, signal.SIGKILL)
    given_up = "slirp-helper of interface 'net0' failed 5 times in a row, not restarting it"
    H.wait_for(lambda: given_up in open(vm.dom.domain_log(), errors="replace").read(), 30,
               "libvirt to give the helper up")

    text = lv.log_since(mark)
    # Every attempt to start a helper in the dead one's place, whether it
    # fails during its start (11.3.0 sees the exit) or right after it,
    # when QEMU reports the connection's end (9.0.0).
    attempts = [m.group(1) for m in re.finditer(
        r"^(\S+ \S+): \d+: debug : virCommandRunAsync:\d+ : About to run \S*dying-helper --fd=",
        text, re.M)]
    assert len(attempts) == 5, text[-4000:]
    stamps = [time.mktime(time.strptime(a[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + a[19:23])
              for a in attempts]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    for gap, delay in zip(gaps, (0.25, 0.5, 1, 2)):
        assert gap >= delay * 0.9, "back-off gaps %r, expected at least 0.25, 0.5, 1, 2 s" % gaps
    assert "failed 5 times in a row, not restarting it: the interface's link is set down" in text
    if HAS_NIC_BACKEND_EVENT:
        H.wait_for(lambda: "failed" in events.nic_backend_states(), 10,
                   "the event saying the helper is given up")
        assert events.nic_backend_states() == ["exited", "failed"], events.lines

    assert "down" in lv.virsh("domif-getlink", vm.dom.name, mac).stdout
    assert "<link state='down'/>" in open(vm.dom.status_path()).read()
    assert wired_helpers(vm.dom, our_helper) == []
    assert vm.dom.state() == "running"

    # No restart on later reports either: the interface stays given up.
    time.sleep(2)
    assert lv.processes(our_helper) == []

    # Recovery: the helper works again, and the link is set up.
    os.unlink(broken)
    lv.virsh("domif-setlink", vm.dom.name, mac, "up")
    new = vm.dom.slirp_helpers()["net0"]
    assert H.pid_alive(new) and wired_helpers(vm.dom, our_helper) == [new]
    assert "up" in lv.virsh("domif-getlink", vm.dom.name, mac).stdout
    if HAS_NIC_BACKEND_EVENT:
        H.wait_for(lambda: len(events.nic_backend_states()) == 3, 10, "the event of the new helper")
        assert events.nic_backend_states() == ["exited", "failed", "restarted"], events.lines
    vm.console.dhcp("eth0")
    assert guest_fetch_works(vm, http)
    vm.dom.destroy()
