"""Live migration between two private virtqemud instances on this host.

Each instance has its own runtime directories and host_uuid, so libvirt
accepts a same-host migration.  The helper's state moves through
dbus-vmstate: the destination helper is started for incoming state, the
source helper is gone afterwards, and the guest keeps its network on the
destination without a new DHCP exchange, with the source helper's lease
table.

Each interface keeps the backend it had at the source: one on QEMU's
built-in slirp stays on it at a destination that has a helper, and one on
a helper cannot move to a host without one.
"""

import os
import re

import libvirt_harness as H


def migrate(vm, dst, check=True):
    """virsh migrate --live of @vm to the instance @dst, the domain's console
    moved to @dst's paths; returns the Domain at @dst and virsh's process."""
    src = vm.lv
    target = H.Domain(dst, vm.dom.name, vm.dom.nics)
    xml = src.virsh("dumpxml", "--migratable", vm.dom.name).stdout
    xml = xml.replace(vm.dom.console_sock, target.console_sock)
    xml = xml.replace(vm.dom.console_log, target.console_log)
    with open(target.xml_path, "w") as f:
        f.write(xml)
    vm.disconnect()
    port = H.guest.free_tcp_port()
    proc = src.virsh("migrate", "--live", "--xml", target.xml_path, vm.dom.name, dst.uri,
                     "--migrateuri", "tcp://127.0.0.1:%d" % port, timeout=300, check=check)
    return target, proc


def netdev_types(dom):
    return [n["type"] for n in H.netdev_args(dom.qemu_cmdline())]


def test_live_migration(instances, our_helper, vm_factory, http, request):
    helper = our_helper
    src = instances.get("migsrc", helper)
    dst = instances.get("migdst", helper)
    assert src.host_uuid != dst.host_uuid

    vm = vm_factory(src, "migrate", [H.nic_xml(H.mac_for(1, 30))])
    vm.boot()
    vm.console.dhcp("eth0")
    assert H.fetch_ok(vm, http, "10.0.2.2")
    assert H.lease_for_mac(vm, "eth0", H.mac_for(0xb0, 30)) == "10.0.2.16"
    src_helper = vm.dom.slirp_helpers()["net0"]
    src_qemu = vm.dom.qemu_pid()

    mark = src.log_mark()
    target, _ = migrate(vm, dst)
    assert H.NESTED_JOB_WARNING not in src.log_since(mark), "G7: dbus-vmstate set up outside a nested job"

    moved = H.VM(target)
    request.node.used_vms.append(moved)
    try:
        assert target.state() == "running"
        assert vm.dom.state() != "running"
        H.wait_for(lambda: not H.pid_alive(src_helper), 5, "source helper %d to exit" % src_helper)
        assert not H.pid_alive(src_qemu)

        helpers = target.slirp_helpers()
        assert list(helpers) == ["net0"], helpers
        argv = target.helper_argv(helpers["net0"])
        assert "--dbus-incoming" in argv, argv

        moved.connect()
        addr = moved.check("ip -4 -o addr show dev eth0")
        assert re.search(r"inet 10\.0\.2\.15/24", addr), addr
        assert H.fetch_ok(moved, http, "10.0.2.2")
        assert H.lease_for_mac(moved, "eth0", H.mac_for(0xc0, 30)) == "10.0.2.17", \
            "the destination helper did not get the source helper's lease table"
    finally:
        moved.disconnect()
        dst.virsh("destroy", target.name, check=False)


def test_migration_keeps_the_builtin_slirp_of_the_source(instances, run_dir, our_helper,
                                                         vm_factory, http, request):
    """The source has no helper, so the NIC runs on QEMU's built-in slirp.
    A destination that requires the helper refuses the migration, naming
    the interface and the setting, and the domain keeps running at the
    source.  A destination with a helper keeps the NIC on the built-in
    slirp, whose state is in QEMU's stream, says so at info level, and the
    guest's network works there."""
    src = instances.get("missing", os.path.join(run_dir, "no-such-slirp-helper"))
    strict = instances.get("migdst-required", our_helper,
                           extra_qemu_conf="slirp_helper_required = 1\n")
    dst = instances.get("migdst", our_helper)

    vm = vm_factory(src, "migbuiltin", [H.nic_xml(H.mac_for(1, 31))])
    vm.boot()
    vm.console.dhcp("eth0")
    assert H.fetch_ok(vm, http, "10.0.2.2")
    assert netdev_types(vm.dom) == ["user"]

    _, proc = migrate(vm, strict, check=False)
    assert proc.returncode != 0, "the migration to a host that requires the helper succeeded"
    assert "'net0'" in proc.stderr and "slirp_helper_required" in proc.stderr, proc.stderr
    assert vm.dom.state() == "running"
    H.wait_for(lambda: strict.processes() == [], 10, "no process left by the refused migration")
    vm.connect()
    assert H.fetch_ok(vm, http, "10.0.2.2")

    mark = dst.log_mark()
    target, _ = migrate(vm, dst)
    moved = H.VM(target)
    request.node.used_vms.append(moved)
    try:
        assert target.state() == "running"
        assert netdev_types(target) == ["user"]
        assert target.slirp_helpers() == {}
        assert dst.processes(our_helper) == []
        chose = [line for line in dst.log_since(mark).splitlines()
                 if "'net0' of domain 'migbuiltin' uses QEMU's built-in slirp" in line]
        assert chose and all(": info : " in line for line in chose), chose
        moved.connect()
        addr = moved.check("ip -4 -o addr show dev eth0")
        assert re.search(r"inet 10\.0\.2\.15/24", addr), addr
        assert H.fetch_ok(moved, http, "10.0.2.2")
    finally:
        moved.disconnect()
        dst.virsh("destroy", target.name, check=False)


def test_migration_to_a_host_without_the_helper_is_refused(instances, run_dir, our_helper,
                                                           vm_factory, http):
    """The helper's state travels through dbus-vmstate, which QEMU's built-in
    slirp cannot load: a destination without a helper refuses, naming the
    interface and why it cannot use a helper, and the domain and its
    helper keep running at the source."""
    src = instances.get("migsrc", our_helper)
    dst = instances.get("missing", os.path.join(run_dir, "no-such-slirp-helper"))

    vm = vm_factory(src, "mighelper", [H.nic_xml(H.mac_for(1, 32))])
    vm.boot()
    vm.console.dhcp("eth0")
    helper = vm.dom.slirp_helpers()["net0"]

    _, proc = migrate(vm, dst, check=False)
    assert proc.returncode != 0, "the migration to a host without a helper succeeded"
    assert "interface 'net0' is to load the state of a slirp-helper, but cannot use one" \
        in proc.stderr and "does not exist" in proc.stderr, proc.stderr
    assert vm.dom.state() == "running"
    assert vm.dom.slirp_helpers() == {"net0": helper} and H.pid_alive(helper)
    vm.connect()
    assert H.fetch_ok(vm, http, "10.0.2.2")
