"""Ethernet frames for talking to a slirp helper without a guest: DHCP,
ARP, and the two framings (datagram; stream with a 32-bit big-endian length
before each frame).  Standard library only (struct).

``Link(sock)``: our end of the helper's socket (AF_UNIX, SOCK_DGRAM or
    SOCK_STREAM, detected).  ``.send(frame)``, ``.send_raw(bytes)`` (stream:
    bytes as they are, for split/bogus framing tests),
    ``.recv(timeout) -> frame or None``,
    ``.expect(predicate, timeout) -> (match, frames_seen)`` where
    predicate(frame) returns something truthy for the wanted frame.
``dhcp_discover(mac, xid)``, ``dhcp_request(mac, xid, ip, server)``,
``parse_dhcp(frame) -> dict or None`` (op, xid, yiaddr, chaddr, type,
    options {code: bytes}), ``dhcp_exchange(link, mac, timeout) -> ack dict``.
``arp_request(mac, sender_ip, target_ip)``, ``parse_arp(frame)``.
"""

import ipaddress
import os
import select
import socket
import struct
import time

BROADCAST = b"\xff" * 6
ETH_IP, ETH_ARP, ETH_IP6 = 0x0800, 0x0806, 0x86DD
DHCP_MSG = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK",
            6: "NAK", 7: "RELEASE", 8: "INFORM"}


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def ip4(s):
    return ipaddress.IPv4Address(s).packed


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4_udp(src, dst, sport, dport, payload, ttl=64):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, ttl, 17,
                      0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + udp


def _bootp(op_type, mac_b, xid, options, ciaddr=b"\0" * 4):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0,
                        0x8000, ciaddr, b"\0" * 4, b"\0" * 4, b"\0" * 4,
                        mac_b, b"", b"")
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, op_type])
    for code, val in options:
        opts += bytes([code, len(val)]) + val
    opts += b"\xff"
    return bootp + opts


def dhcp_discover(mac_s, xid):
    m = mac(mac_s)
    payload = _bootp(1, m, xid, [(55, bytes([1, 3, 6, 15]))])
    return eth(BROADCAST, m, ETH_IP,
               ipv4_udp(b"\0" * 4, b"\xff" * 4, 68, 67, payload))


def dhcp_request(mac_s, xid, ip, server):
    m = mac(mac_s)
    payload = _bootp(3, m, xid, [(50, ip4(ip)), (54, ip4(server)),
                                 (55, bytes([1, 3, 6, 15]))])
    return eth(BROADCAST, m, ETH_IP,
               ipv4_udp(b"\0" * 4, b"\xff" * 4, 68, 67, payload))


def parse_dhcp(frame):
    """The BOOTP reply in frame (server to client), or None."""
    if len(frame) < 14 + 20 + 8 + 240:
        return None
    if struct.unpack("!H", frame[12:14])[0] != ETH_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 17:
        return None
    udp = ip[ihl:]
    sport, dport = struct.unpack("!HH", udp[:4])
    if (sport, dport) != (67, 68):
        return None
    b = udp[8:]
    if len(b) < 240 or b[236:240] != b"\x63\x82\x53\x63":
        return None
    op, xid = b[0], struct.unpack("!I", b[4:8])[0]
    options, i = {}, 240
    while i < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        code, n = b[i], b[i + 1]
        options[code] = b[i + 2:i + 2 + n]
        i += 2 + n
    t = options.get(53, b"\0")[0]
    return {"op": op, "xid": xid,
            "yiaddr": str(ipaddress.IPv4Address(b[16:20])),
            "siaddr": str(ipaddress.IPv4Address(b[20:24])),
            "chaddr": mac_str(b[28:34]), "type": DHCP_MSG.get(t, t),
            "options": options, "ip_src": str(ipaddress.IPv4Address(ip[12:16]))}


def opt_ip(d, code):
    v = d["options"].get(code)
    return [str(ipaddress.IPv4Address(v[i:i + 4])) for i in
            range(0, len(v or b""), 4)]


def arp_request(mac_s, sender_ip, target_ip):
    m = mac(mac_s)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_IP, 6, 4, 1, m, ip4(sender_ip),
                      b"\0" * 6, ip4(target_ip))
    return eth(BROADCAST, m, ETH_ARP, arp)


def parse_arp(frame):
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = struct.unpack(
        "!HHBBH6s4s6s4s", frame[14:42])
    return {"op": op, "sha": mac_str(sha),
            "spa": str(ipaddress.IPv4Address(spa)), "tha": mac_str(tha),
            "tpa": str(ipaddress.IPv4Address(tpa)),
            "eth_dst": mac_str(frame[0:6]), "eth_src": mac_str(frame[6:12])}


class Link:
    """Our end of the helper's frame socket."""

    def __init__(self, sock):
        self.sock = sock
        self.stream = sock.getsockopt(socket.SOL_SOCKET,
                                      socket.SO_TYPE) == socket.SOCK_STREAM
        self._buf = b""
        self.eof = False
        self.zero_length_datagrams = 0

    def send(self, frame):
        if self.stream:
            self.sock.sendall(struct.pack("!I", len(frame)) + frame)
        else:
            self.sock.send(frame)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _pop(self):
        if len(self._buf) >= 4:
            n = struct.unpack("!I", self._buf[:4])[0]
            if len(self._buf) >= 4 + n:
                f = self._buf[4:4 + n]
                self._buf = self._buf[4 + n:]
                return f
        return None

    def recv(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.stream:
                f = self._pop()
                if f is not None:
                    return f
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            try:
                data = self.sock.recv(70000)
            except (ConnectionError, OSError):
                self.eof = True
                return None
            if self.stream:
                if not data:
                    self.eof = True
                self._buf += data
            else:
                if not data:
                    # A zero-length datagram: the helper must never send it
                    # (QEMU takes it as end of connection).
                    self.zero_length_datagrams += 1
                    continue
                return data

    def expect(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, seen
            f = self.recv(left)
            if f is None:
                return None, seen
            seen.append(f)
            m = predicate(f)
            if m:
                return m, seen


def dhcp_exchange(link, mac_s, timeout=10.0):
    """DISCOVER/OFFER/REQUEST/ACK; returns the parsed ACK (raises
    AssertionError with what was seen otherwise)."""
    xid = int.from_bytes(os.urandom(4), "big")
    link.send(dhcp_discover(mac_s, xid))
    offer, seen = link.expect(
        lambda f: (lambda d: d if d and d["xid"] == xid and
                   d["type"] == "OFFER" else None)(parse_dhcp(f)), timeout)
    assert offer, "no DHCP OFFER for %s (%d other frames)" % (mac_s, len(seen))
    server = opt_ip(offer, 54)[0]
    link.send(dhcp_request(mac_s, xid, offer["yiaddr"], server))
    ack, seen = link.expect(
        lambda f: (lambda d: d if d and d["xid"] == xid and
                   d["type"] in ("ACK", "NAK") else None)(parse_dhcp(f)),
        timeout)
    assert ack and ack["type"] == "ACK", "no DHCP ACK for %s: %r" % (mac_s,
                                                                     ack)
    return ack
