"""Live migration between two private virtqemud instances on this host.

Each instance has its own runtime directories and host_uuid, so libvirt
accepts a same-host migration.  The helper's state moves through
dbus-vmstate: the destination helper is started for incoming state, the
source helper is gone afterwards, and the guest keeps its network on the
destination without a new DHCP exchange, with the source helper's lease
table.
"""

import re

import libvirt_harness as H


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

    # The destination gets the same domain with its own console paths.
    target = H.Domain(dst, vm.dom.name, vm.dom.nics)
    xml = src.virsh("dumpxml", "--migratable", vm.dom.name).stdout
    xml = xml.replace(vm.dom.console_sock, target.console_sock)
    xml = xml.replace(vm.dom.console_log, target.console_log)
    with open(target.xml_path, "w") as f:
        f.write(xml)
    vm.disconnect()
    port = H.guest.free_tcp_port()
    mark = src.log_mark()
    src.virsh("migrate", "--live", "--xml", target.xml_path, vm.dom.name, dst.uri,
              "--migrateuri", "tcp://127.0.0.1:%d" % port, timeout=300)
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
