"""<mtu> on a user interface run by the slirp-helper.

The fork hands the MTU to both ends of the link: QEMU's virtio-net gets it
as host_mtu, which the guest driver adopts, and the helper gets --mtu, so
libslirp's side of the link takes frames that large.  Upstream 9.0.0 has no
<mtu> for user interfaces on the helper.  Whether the large frames are
really used shows in the guest's receive counters: a fetch at MTU 65520
arrives in frames far larger than an Ethernet frame at 1500.  <mtu> on a
passt interface, which upstream failed to start, starts with the fork.
"""

import libvirt_harness as H

MTU = 65520


def rx_counters(vm, iface):
    out = vm.check("cat /sys/class/net/%s/statistics/rx_bytes "
                   "/sys/class/net/%s/statistics/rx_packets" % (iface, iface))
    rx_bytes, rx_packets = (int(v) for v in out.split())
    return rx_bytes, rx_packets


def test_mtu_reaches_guest_and_helper(lv, vm_factory, http):
    vm = vm_factory(lv, "mtu", [H.nic_xml(H.mac_for(1, 60), mtu=MTU)])
    vm.boot()
    helpers = vm.dom.slirp_helpers()
    argv = vm.dom.helper_argv(helpers["net0"])
    assert "--mtu=%d" % MTU in argv, argv
    assert vm.check("cat /sys/class/net/eth0/mtu").strip() == str(MTU)

    vm.console.dhcp("eth0")
    bytes0, packets0 = rx_counters(vm, "eth0")
    assert H.fetch_ok(vm, http, "10.0.2.2")
    bytes1, packets1 = rx_counters(vm, "eth0")
    received, frames = bytes1 - bytes0, packets1 - packets0
    assert received >= http.size, (received, http.size)
    # at 1500 no frame carries more than 1514 bytes; large frames average far above
    average = received / frames
    print("fetch of %d bytes arrived in %d frames, %.0f bytes each" % (http.size, frames, average))
    assert average > 4 * 1514, "frames average %.0f bytes: the large MTU is not used" % average


def test_passt_interface_with_mtu_starts(instances, our_helper, vm_factory):
    """<mtu> on an interface with the passt backend: there is no host
    interface whose MTU libvirt could set, passt and the virtio NIC get
    it.  Upstream called virNetDevSetMTU() without an interface name,
    which fails ("Cannot set interface MTU on '(null)': No such device" in
    9.0.0's qemuxml2argvtest); the fork's 'Don't set a host MTU for user
    interfaces' skips that.  Under the DAC driver, as hosts run passt:
    passt started as root turns itself into nobody, who then cannot
    write its pidfile in the root-owned directory libvirt gives it."""
    lv = instances.get("dac", our_helper, mode="dac")
    vm = vm_factory(lv, "passtmtu", [H.nic_xml(H.mac_for(1, 61), mtu=9000, backend="passt")])
    vm.boot()
    assert vm.dom.slirp_helpers() == {}, "a passt interface got a slirp-helper"
    assert vm.check("cat /sys/class/net/eth0/mtu").strip() == "9000"
