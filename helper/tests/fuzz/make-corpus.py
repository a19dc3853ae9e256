#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-corpus.py - write the seed corpora in corpus/<target>/.

input/: records for fuzz-input ([op][len16][bytes], op 0 = a datagram,
1 = stream bytes, 2 = a loop turn, 3 = save and load), one file per
scenario: ordinary traffic (ARP, DHCP, DNS, TCP handshake and data, UDP,
ICMP, TFTP, IPv6 neighbour discovery) and one crafted reproducer per CVE
class of libslirp (tcp_emu, IP reassembly, bootp, tftp, udp/udp6, arp,
ncsi, icmp6, urgent data).  vmstate/: Load blobs.  forward/: specs.
The files are small and committed; rerun this after changing a scenario.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import guestframes as gf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def rec(op, data=b""):
    return bytes([op]) + struct.pack("!H", len(data)) + data


def frames(*fs):
    return b"".join(rec(0, f) for f in fs) + rec(2)


def stream(*fs):
    return rec(1, b"".join(struct.pack("!I", len(f)) + f for f in fs)) + rec(2)


def ip6(nxt, payload, src="fec0::15", dst="fec0::2"):
    import socket
    hdr = struct.pack("!IHBB", 0x60000000, len(payload), nxt, 64)
    return hdr + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload


def eth6(payload):
    return gf.eth(payload, gf.ETH_IP6, dst=bytes.fromhex("333300000001"))


def main():
    arp = gf.arp_request()
    syn = gf.tcp_frame(40000, 22, 1000, 0, gf.TCP_SYN)
    inputs = {
        "arp-dhcp": frames(arp, gf.dhcp_discover()),
        "dhcp-stream": stream(gf.dhcp_discover(), arp),
        "dns": frames(arp, gf.eth(gf.udp4(5353, 53, gf.dns_query("example.org"), dst=gf.DNS_IP))),
        "tcp-handshake-data": frames(arp, syn) + frames(
            gf.tcp_frame(40000, 22, 1001, 1, gf.TCP_ACK),
            gf.tcp_frame(40000, 22, 1001, 1, gf.TCP_ACK | gf.TCP_PSH, b"hello\n"),
            gf.tcp_frame(40000, 22, 1007, 1, gf.TCP_FIN | gf.TCP_ACK)),
        "udp-icmp": frames(arp, gf.eth(gf.udp4(1234, 9, b"x" * 100, dst="192.0.2.1")),
                           gf.eth(gf.ipv4(1, b"\x08\x00\xf7\xff\x00\x00\x00\x00", dst=gf.HOST_IP))),
        "tftp": frames(arp, gf.tftp_rrq("boot.bin")) + frames(
            gf.eth(gf.udp4(2000, 69, b"\x00\x04\x00\x01", dst=gf.HOST_IP))),
        "migrate": frames(arp, gf.dhcp_discover()) + rec(3) + frames(arp),
        "ipv6-ns": frames(eth6(ip6(58, bytes([135, 0, 0, 0, 0, 0, 0, 0]) + bytes(16), dst="ff02::1"))),
        # --- one reproducer per CVE class ---
        # tcp_emu (CVE-2019-6778, 2020-7039, 2020-8608): FTP/IRC/ident commands
        "cve-tcp-emu": frames(arp, gf.tcp_frame(40001, 21, 1000, 0, gf.TCP_SYN),
                              gf.tcp_frame(40001, 21, 1001, 1, gf.TCP_ACK | gf.TCP_PSH,
                                           b"PORT 10,0,2,15,200,1\r\n" + b"A" * 300),
                              gf.tcp_frame(40002, 113, 1000, 0, gf.TCP_SYN),
                              gf.tcp_frame(40002, 113, 1001, 1, gf.TCP_ACK | gf.TCP_PSH,
                                           b"1 , 2" + b" " * 200)),
        # ip_reass (CVE-2019-14378, 2019-15890, 2020-1983): overlapping and
        # oversized fragments
        "cve-ip-reass": frames(arp,
                               gf.eth(gf.ipv4(17, b"\x04\xd2\x00\x09\x05\xdc\x00\x00" + b"A" * 1472,
                                              dst="192.0.2.1", ident=7, frag=0x2000)),
                               gf.eth(gf.ipv4(17, b"B" * 1480, dst="192.0.2.1", ident=7, frag=0x2000 | 1)),
                               gf.eth(gf.ipv4(17, b"C" * 64, dst="192.0.2.1", ident=7, frag=8191))),
        # bootp (CVE-2021-3592): options running past the packet
        "cve-bootp": frames(gf.dhcp_discover()[:-4] + bytes([53, 1, 3, 50, 40]),
                            gf.dhcp_discover()[:14 + 20 + 8 + 200]),
        # tftp (CVE-2020-7211, 2021-3595, UAF c29ec30): long names, traversal,
        # an error while a transfer runs
        "cve-tftp": frames(arp, gf.tftp_rrq("../../etc/passwd"), gf.tftp_rrq("A" * 600),
                           gf.eth(gf.udp4(2000, 69, b"\x00\x01boot.bin", dst=gf.HOST_IP)),
                           gf.tftp_rrq("boot.bin", sport=2001),
                           gf.eth(gf.udp4(2001, 69, b"\x00\x05\x00\x00err\x00", dst=gf.HOST_IP))),
        # udp / udp6 (CVE-2021-3594, 2021-3593): lengths that lie
        "cve-udp": frames(arp, gf.eth(gf.ipv4(17, struct.pack("!HHHH", 1, 53, 200, 0) + b"x",
                                              dst=gf.DNS_IP)),
                          eth6(ip6(17, struct.pack("!HHHH", 1, 53, 200, 0) + b"x", dst="fec0::3"))),
        # icmp6 (CVE-2020-10756): echo request with a short body
        "cve-icmp6": frames(eth6(ip6(58, bytes([128, 0, 0, 0]) + b"\x00\x01", dst="fec0::2"))),
        # arp (CVE-2020-29130): a truncated ARP
        "cve-arp": frames(arp[:14 + 10], arp[:14 + 27]),
        # ncsi (CVE-2020-29129): NC-SI frames, short and long
        "cve-ncsi": frames(gf.eth(b"\x00" * 10, 0x88F8), gf.eth(b"\x00\x01" + b"\xff" * 60, 0x88F8)),
        # urgent data (sosendoob, CVE-2026-9539 [unconfirmed]): URG pointer past the data
        "cve-urgent": frames(arp, gf.tcp_frame(40003, 7, 1000, 0, gf.TCP_SYN),
                             gf.tcp_frame(40003, 7, 1001, 1, gf.TCP_ACK | gf.TCP_PSH | gf.TCP_URG,
                                          b"u" * 10, urg=5000)) + rec(2) + rec(2),
        # tcp reassembly (bdba265): out-of-order segments queued, then the gap
        "tcp-reass": frames(arp, gf.tcp_frame(40004, 7, 1000, 0, gf.TCP_SYN),
                            gf.tcp_frame(40004, 7, 1011, 1, gf.TCP_ACK, b"b" * 10),
                            gf.tcp_frame(40004, 7, 1021, 1, gf.TCP_ACK, b"c" * 10),
                            gf.tcp_frame(40004, 7, 1001, 1, gf.TCP_ACK, b"a" * 10)),
        "stream-bogus-lengths": rec(1, struct.pack("!I", 0) + struct.pack("!I", 3) + b"abc"
                                    + struct.pack("!I", 0xFFFFFFF0) + b"zz"),
    }
    vmstate = {
        "valid-empty": struct.pack("!I", 4) + b"\x00" + b"\x00\x01" + b"\x00" * 128,
        "valid-lease": struct.pack("!I", 4) + b"\x00" + b"\x00\x01" + b"\x00\x01" + gf.GUEST_MAC
                       + b"\x00" * 120,
        "socket-record": struct.pack("!I", 4) + b"\x2a" + b"\x00" * 200,
        "version-5": struct.pack("!I", 5) + b"\x00" * 131,
        "short": b"\x00\x00\x00",
    }
    forward = {
        "tcp": b"tcp:127.0.0.1:8080-:80",
        "udp6": b"udp:[::1]:5353-[fec0::15]:53",
        "any": b"tcp::2222-10.0.2.15:22",
        "guest": b"tcp:10.0.2.100:1234-unix:/run/x.sock",
        "bad": b"tcp:[::1:80-:8",
    }
    for target, table in (("input", inputs), ("vmstate", vmstate), ("forward", forward)):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in table.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (target, len(table)))


if __name__ == "__main__":
    main()
