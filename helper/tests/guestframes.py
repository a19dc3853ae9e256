# SPDX-License-Identifier: LGPL-2.1-or-later
"""guestframes.py - Ethernet frames a guest would send, built by hand.

Used by test-sandbox.py (a guest played over the QEMU socket) and by
fuzz/make-corpus.py (seed frames).  Addresses default to QEMU's user
network: guest 10.0.2.15, host 10.0.2.2, DNS 10.0.2.3.
"""
import socket
import struct

GUEST_MAC = bytes.fromhex("525400123456")
SLIRP_MAC = bytes.fromhex("52550a000202")  # libslirp: 52:55 + the host address
GUEST_IP = "10.0.2.15"
HOST_IP = "10.0.2.2"
DNS_IP = "10.0.2.3"

ETH_IP4 = 0x0800
ETH_ARP = 0x0806
ETH_IP6 = 0x86DD

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 1, 2, 4, 8, 16, 32


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(payload, ethertype=ETH_IP4, dst=b"\xff" * 6, src=GUEST_MAC):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(proto, payload, src=GUEST_IP, dst=HOST_IP, ident=1, frag=0, ttl=64):
    """frag: the 16-bit flags+offset field (0x2000 = more fragments)."""
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def pseudo4(src, dst, proto, length):
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def udp4(sport, dport, data, src=GUEST_IP, dst=HOST_IP):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = csum(pseudo4(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return ipv4(17, seg[:6] + struct.pack("!H", c) + seg[8:], src, dst)


def tcp4(sport, dport, seq, ack, flags, data=b"", src=GUEST_IP, dst=HOST_IP, window=65535,
         urg=0):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, urg) + data
    c = csum(pseudo4(src, dst, 6, len(seg)) + seg)
    return ipv4(6, seg[:16] + struct.pack("!H", c) + seg[18:], src, dst)


def arp_request(target=HOST_IP, sender=GUEST_IP):
    return eth(bytes.fromhex("0001080006040001") + GUEST_MAC + socket.inet_aton(sender)
               + b"\0" * 6 + socket.inet_aton(target), ETH_ARP)


def dhcp_discover(xid=0x12345678):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, GUEST_MAC + b"\0" * 10,
                        b"", b"")
    bootp += bytes.fromhex("63825363") + bytes([53, 1, 1, 255])
    return eth(udp4(68, 67, bootp, "0.0.0.0", "255.255.255.255"))


def dns_query(name, ident=0x4242):
    q = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", 1, 1)


def tftp_rrq(filename, dst=HOST_IP, sport=2000):
    return eth(udp4(sport, 69, b"\0\x01" + filename.encode() + b"\0octet\0", dst=dst), dst=SLIRP_MAC)


def tcp_frame(sport, dport, seq, ack, flags, data=b"", dst=HOST_IP, urg=0):
    return eth(tcp4(sport, dport, seq, ack, flags, data, dst=dst, urg=urg), dst=SLIRP_MAC)


def parse_ipv4(frame):
    """(proto, src, dst, l4 bytes) of an IPv4 frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0xF) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    return (frame[23], socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34]),
            frame[14 + ihl:14 + total])


def parse_tcp(frame):
    """(sport, dport, seq, ack, flags, payload) of a TCP/IPv4 frame, or None."""
    ip = parse_ipv4(frame)
    if not ip or ip[0] != 6 or len(ip[3]) < 20:
        return None
    seg = ip[3]
    sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", seg[:14])
    return sport, dport, seq, ack, flags, seg[(off >> 4) * 4:]


def parse_udp(frame):
    """(sport, dport, payload) of a UDP/IPv4 frame, or None."""
    ip = parse_ipv4(frame)
    if not ip or ip[0] != 17 or len(ip[3]) < 8:
        return None
    sport, dport, length = struct.unpack("!HHH", ip[3][:6])
    return sport, dport, ip[3][8:length]


def dhcp_offer_address(frame):
    udp = parse_udp(frame)
    if not udp or udp[1] != 68 or len(udp[2]) < 240:
        return None
    return socket.inet_ntoa(udp[2][16:20])


def is_arp_reply(frame):
    return len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02"


GUEST_IP6 = "fec0::15"
HOST_IP6 = "fec0::2"
DNS_IP6 = "fec0::3"


def ipv6(nh, payload, src=GUEST_IP6, dst=HOST_IP6, hlim=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hlim,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def pseudo6(src, dst, nh, length):
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!IxxxB", length, nh))


def eth6(packet, dst):
    """An IPv6 frame to @dst (an address; multicast gets its 33:33 MAC)."""
    a = socket.inet_pton(socket.AF_INET6, dst)
    mac = b"\x33\x33" + a[12:] if a[0] == 0xFF else SLIRP_MAC
    return eth(packet, ETH_IP6, dst=mac)


def udp6(sport, dport, data, src=GUEST_IP6, dst=HOST_IP6):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = csum(pseudo6(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return eth6(ipv6(17, seg[:6] + struct.pack("!H", c) + seg[8:], src, dst), dst)


def router_solicitation(src=GUEST_IP6):
    """An RS with the guest's link-layer address, so libslirp learns it."""
    msg = struct.pack("!BBHI", 133, 0, 0, 0) + bytes([1, 1]) + GUEST_MAC
    c = csum(pseudo6(src, "ff02::2", 58, len(msg)) + msg)
    return eth6(ipv6(58, msg[:2] + struct.pack("!H", c) + msg[4:], src, "ff02::2", 255),
                "ff02::2")


def dhcpv6_information_request(xid=0x123456, src=GUEST_IP6):
    """Stateless DHCPv6 asking for the DNS servers (option 23)."""
    msg = struct.pack("!I", (11 << 24) | xid)
    msg += struct.pack("!HHHH", 1, 10, 3, 1) + GUEST_MAC  # client id, DUID-LL
    msg += struct.pack("!HHH", 6, 2, 23)                   # option request: DNS
    return udp6(546, 547, msg, src, "ff02::1:2")


def parse_ipv6(frame):
    """(next header, src, dst, payload) of an IPv6 frame, or None."""
    if len(frame) < 54 or frame[12:14] != b"\x86\xdd":
        return None
    plen = struct.unpack("!H", frame[18:20])[0]
    return (frame[20], socket.inet_ntop(socket.AF_INET6, frame[22:38]),
            socket.inet_ntop(socket.AF_INET6, frame[38:54]), frame[54:54 + plen])


def parse_udp6(frame):
    """(sport, dport, payload, checksum ok) of a UDP/IPv6 frame, or None."""
    ip = parse_ipv6(frame)
    if not ip or ip[0] != 17 or len(ip[3]) < 8:
        return None
    sport, dport, length = struct.unpack("!HHH", ip[3][:6])
    ok = csum(pseudo6(ip[1], ip[2], 17, len(ip[3])) + ip[3]) == 0
    return sport, dport, ip[3][8:length], ok


def router_advertisement_options(frame):
    """{type: [option bodies]} of a router advertisement with a valid
    checksum, or None for any other frame."""
    ip = parse_ipv6(frame)
    if not ip or ip[0] != 58 or len(ip[3]) < 16 or ip[3][0] != 134:
        return None
    assert csum(pseudo6(ip[1], ip[2], 58, len(ip[3])) + ip[3]) == 0, "bad RA checksum"
    opts, body = {}, ip[3][16:]
    while len(body) >= 8 and body[1]:
        opts.setdefault(body[0], []).append(body[2:body[1] * 8])
        body = body[body[1] * 8:]
    return opts


def dhcpv6_reply_options(frame, xid=0x123456):
    """{code: [option data]} of the DHCPv6 reply to @xid with a valid
    checksum, or None for any other frame."""
    udp = parse_udp6(frame)
    # not the source port: libslirp 4.7 sends from 8962 (547 byte-swapped)
    if not udp or udp[1] != 546 or len(udp[2]) < 4:
        return None
    if struct.unpack("!I", udp[2][:4])[0] != (7 << 24) | xid:
        return None
    assert udp[3], "bad DHCPv6 reply checksum"
    opts, body = {}, udp[2][4:]
    while len(body) >= 4:
        code, n = struct.unpack("!HH", body[:4])
        opts.setdefault(code, []).append(body[4:4 + n])
        body = body[4 + n:]
    return opts


def dns_answer_a(payload, ident):
    """The first A record of a DNS response to @ident, or None."""
    if len(payload) < 12 or struct.unpack("!H", payload[:2])[0] != ident:
        return None
    qd, an = struct.unpack("!HH", payload[4:8])
    pos = 12
    for _ in range(qd):
        while payload[pos]:
            pos += payload[pos] + 1
        pos += 5
    for _ in range(an):
        pos += 2  # a compressed name
        rtype, _, _, rdlen = struct.unpack("!HHIH", payload[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntoa(payload[pos:pos + 4])
        pos += rdlen
    return None
