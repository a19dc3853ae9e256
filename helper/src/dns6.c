/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dns6.c - name the IPv6 DNS proxy to the guest only when it can answer
 *
 * Theory of operation.  libslirp proxies DNS sent to --dns6 (fec0::3) only
 * to an IPv6 nameserver of the host's resolver list (/etc/resolv.conf); it
 * never relays such a query to an IPv4 nameserver, so on a host whose list
 * has only IPv4 servers every query to fec0::3 goes unanswered and the
 * guest waits for its resolver's time-out before it tries the next server.
 * libslirp 4.7 and 4.8 already leave the RDNSS option out of their router
 * advertisements then, but their DHCPv6 server still names fec0::3 to any
 * guest that asks (stateless DHCPv6, as dhclient -6 -S, NetworkManager and
 * systemd-networkd do), and with --disable-dns nothing answers at all.
 *
 * So the helper looks at every frame libslirp sends to the guest, and when
 * the proxy cannot answer (--disable-dns, or the resolver list names no
 * IPv6 server) removes the advertisement of it: the DNS Recursive Name
 * Server option (OPTION_DNS_SERVERS, 23) from DHCPv6 replies and the RDNSS
 * option (25) from router advertisements, with lengths and checksums
 * fixed.  The guest then uses the IPv4 proxy (--dns, 10.0.2.3), which
 * answers AAAA queries just as well.  Relaying IPv6 queries to the IPv4
 * servers instead was rejected: it would be a DNS proxy of our own beside
 * libslirp's, parsing guest bytes outside libslirp, for TCP as well as UDP.
 *
 * Like libslirp, the helper reads the resolver list at most once per
 * DNS6_RESOLV_CACHE_MS and only when a frame needs the answer (DHCPv6
 * replies and router advertisements are rare).  Inside the sandbox the file
 * is the host's, bind-mounted (sandbox.c), so both see the same list.
 *
 * dns6_resolv_names_ipv6() and dns6_strip_advertisement() are I/O-free and
 * unit-tested (tests/test-dns6.c); dns6_upstream_has_ipv6() is the only
 * function here that reads a file.
 */
#include "dns6.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#define DNS6_ETH_HLEN 14
#define DNS6_IP6_HLEN 40
#define DNS6_UDP_HLEN 8
#define DNS6_ETHERTYPE_IPV6 0x86DD
#define DNS6_PROTO_UDP 17
#define DNS6_PROTO_ICMP6 58

#define DNS6_DHCPV6_SERVER_PORT 547
/* libslirp 4.7 and 4.8 send DHCPv6 replies from 547 byte-swapped (no htons) */
#define DNS6_DHCPV6_SERVER_PORT_SWAPPED 0x2302
#define DNS6_DHCPV6_CLIENT_PORT 546
#define DNS6_DHCPV6_REPLY 7
#define DNS6_DHCPV6_HLEN 4 /* message type, transaction id */
#define DNS6_DHCPV6_OPTION_DNS_SERVERS 23

#define DNS6_ICMP6_RA 134
#define DNS6_RA_HLEN 16 /* type, code, checksum, hop limit, flags, lifetimes */
#define DNS6_NDP_OPTION_RDNSS 25

/* the longest resolv.conf this reads; libslirp stops after a few servers too */
#define DNS6_RESOLV_MAX 65536

/**
 * dns6_get16() - read a big-endian 16-bit number
 * @p: two bytes
 *
 * Return: the number
 */
static guint dns6_get16(const guint8 *p)
{
    return (guint)p[0] << 8 | p[1];
}

/**
 * dns6_put16() - write a big-endian 16-bit number
 * @p: two bytes
 * @v: the number (only its low 16 bits)
 */
static void dns6_put16(guint8 *p, guint v)
{
    p[0] = (guint8)(v >> 8);
    p[1] = (guint8)v;
}

/**
 * dns6_checksum() - the Internet checksum of an IPv6 upper-layer packet
 * @ip6: the IPv6 header (addresses and next header are taken from it)
 * @l4: the upper-layer packet, its checksum field already zero
 * @len: its length
 *
 * Return: the checksum to store (0 is returned as 0xffff, as UDP needs)
 */
static guint dns6_checksum(const guint8 *ip6, const guint8 *l4, size_t len)
{
    guint64 sum = 0;

    for (size_t i = 8; i < DNS6_IP6_HLEN; i += 2) /* source and destination */
        sum += dns6_get16(ip6 + i);
    sum += (guint64)len + ip6[6];
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += dns6_get16(l4 + i);
    if (len & 1)
        sum += (guint)l4[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    sum = ~sum & 0xffff;
    return sum == 0 ? 0xffff : (guint)sum;
}

/**
 * dns6_resolv_names_ipv6() - whether a resolver list names an IPv6 server
 * @text: the contents of a resolv.conf (need not be NUL-terminated)
 * @len: its length
 *
 * Reads the list as libslirp does: a line "nameserver", blanks, then an
 * address, optionally followed by "%" and an interface name.  No I/O.
 *
 * Return: true if some nameserver line holds an IPv6 address
 */
bool dns6_resolv_names_ipv6(const char *text, size_t len)
{
    static const char keyword[] = "nameserver";
    const char *end = text + len;

    for (const char *line = text; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *p = line + sizeof(keyword) - 1;
        char addr[INET6_ADDRSTRLEN];
        struct in6_addr a;
        size_t n = 0;

        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > sizeof(keyword) &&
            memcmp(line, keyword, sizeof(keyword) - 1) == 0 && (*p == ' ' || *p == '\t')) {
            while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
            while (p + n < eol && p[n] != '%' && !g_ascii_isspace(p[n]) && n < sizeof(addr) - 1)
                n++;
            memcpy(addr, p, n);
            addr[n] = '\0';
            if (inet_pton(AF_INET6, addr, &a) == 1)
                return true;
        }
        line = eol + 1;
    }
    return false;
}

/**
 * dns6_upstream_has_ipv6() - whether libslirp has an IPv6 server for --dns6
 * @up: the cache, zero-initialised before first use
 * @now_ms: the current monotonic time in milliseconds
 *
 * Reads DNS6_RESOLV_CONF unless it was read less than DNS6_RESOLV_CACHE_MS
 * ago.  A file that cannot be read names no server (libslirp's view too).
 *
 * Return: true if the resolver list names an IPv6 nameserver
 */
bool dns6_upstream_has_ipv6(Dns6Upstream *up, gint64 now_ms)
{
    g_autofree char *text = NULL;
    ssize_t n = 0;
    int fd;

    if (up->checked_ms != 0 && now_ms - up->checked_ms < DNS6_RESOLV_CACHE_MS)
        return up->has_ipv6;

    text = g_malloc(DNS6_RESOLV_MAX);
    fd = open(DNS6_RESOLV_CONF, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        size_t got = 0;

        while (got < DNS6_RESOLV_MAX) {
            n = read(fd, text + got, DNS6_RESOLV_MAX - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        close(fd);
        n = (ssize_t)got;
    }
    up->has_ipv6 = n > 0 && dns6_resolv_names_ipv6(text, (size_t)n);
    up->checked_ms = now_ms ? now_ms : 1;
    return up->has_ipv6;
}

/**
 * dns6_find_l4() - the upper-layer packet of an Ethernet/IPv6 frame
 * @frame: the frame
 * @len: its length
 * @proto: the next header wanted (no extension headers: libslirp adds none)
 * @l4_len: receives the upper-layer length (the IPv6 payload length)
 *
 * Return: the offset of the upper-layer packet, or 0 if @frame is not
 *         IPv6 with @proto or its lengths do not fit
 */
static size_t dns6_find_l4(const guint8 *frame, size_t len, guint proto, size_t *l4_len)
{
    const guint8 *ip6;

    if (len < DNS6_ETH_HLEN + DNS6_IP6_HLEN || dns6_get16(frame + 12) != DNS6_ETHERTYPE_IPV6)
        return 0;
    ip6 = frame + DNS6_ETH_HLEN;
    if ((ip6[0] >> 4) != 6 || ip6[6] != proto)
        return 0;
    *l4_len = dns6_get16(ip6 + 4);
    if (*l4_len > len - DNS6_ETH_HLEN - DNS6_IP6_HLEN)
        return 0;
    return DNS6_ETH_HLEN + DNS6_IP6_HLEN;
}

/**
 * dns6_advert_layout() - where the options of a DHCPv6 reply or a router
 * advertisement are
 * @frame: the frame
 * @len: its length
 * @l4: receives the offset of the UDP or ICMPv6 header
 * @l4_len: receives the length of the UDP datagram or ICMPv6 message
 * @opts: receives the offset of the first option
 * @is_ra: receives true for a router advertisement, false for DHCPv6
 *
 * Return: true if @frame is a DHCPv6 reply or a router advertisement
 */
static bool dns6_advert_layout(const guint8 *frame, size_t len, size_t *l4, size_t *l4_len,
                               size_t *opts, bool *is_ra)
{
    if ((*l4 = dns6_find_l4(frame, len, DNS6_PROTO_UDP, l4_len))) {
        const guint8 *udp = frame + *l4;

        if (*l4_len < DNS6_UDP_HLEN + DNS6_DHCPV6_HLEN || dns6_get16(udp + 4) != *l4_len ||
            (dns6_get16(udp) != DNS6_DHCPV6_SERVER_PORT &&
             dns6_get16(udp) != DNS6_DHCPV6_SERVER_PORT_SWAPPED) ||
            dns6_get16(udp + 2) != DNS6_DHCPV6_CLIENT_PORT ||
            udp[DNS6_UDP_HLEN] != DNS6_DHCPV6_REPLY)
            return false;
        *opts = *l4 + DNS6_UDP_HLEN + DNS6_DHCPV6_HLEN;
        *is_ra = false;
        return true;
    }
    if ((*l4 = dns6_find_l4(frame, len, DNS6_PROTO_ICMP6, l4_len))) {
        if (*l4_len < DNS6_RA_HLEN || frame[*l4] != DNS6_ICMP6_RA || frame[*l4 + 1] != 0)
            return false;
        *opts = *l4 + DNS6_RA_HLEN;
        *is_ra = true;
        return true;
    }
    return false;
}

/**
 * dns6_is_advertisement() - whether a frame could name a DNS server
 * @frame: a frame libslirp sends to the guest
 * @len: its length
 *
 * Return: true for a DHCPv6 reply or a router advertisement, the frames
 *         dns6_strip_advertisement() may change
 */
bool dns6_is_advertisement(const guint8 *frame, size_t len)
{
    size_t l4, l4_len, opts;
    bool is_ra;

    return dns6_advert_layout(frame, len, &l4, &l4_len, &opts, &is_ra);
}

/**
 * dns6_strip_advertisement() - remove the DNS server options from a frame
 * @frame: a frame libslirp sends to the guest, changed in place
 * @len: its length
 *
 * In a DHCPv6 reply (UDP to port 546 from 547, or from 8962 as libslirp
 * sends it) every OPTION_DNS_SERVERS
 * option, in a router advertisement every RDNSS option, is removed; the
 * IPv6 payload length, the UDP length and the checksum are fixed.  Any
 * other frame, or one whose options do not add up, is left as it is.
 * No I/O.
 *
 * Return: the frame's new length (@len if nothing was removed)
 */
size_t dns6_strip_advertisement(guint8 *frame, size_t len)
{
    size_t l4, l4_len, opts, end, in, out;
    bool is_ra;

    if (!dns6_advert_layout(frame, len, &l4, &l4_len, &opts, &is_ra))
        return len;
    end = l4 + l4_len;

    /* check the whole option list before changing anything */
    for (in = opts; in < end;) {
        size_t opt_len;

        if (end - in < (is_ra ? 2u : 4u))
            return len;
        opt_len = is_ra ? (size_t)frame[in + 1] * 8 : 4 + dns6_get16(frame + in + 2);
        if (opt_len == 0 || opt_len > end - in)
            return len;
        in += opt_len;
    }
    for (in = out = opts; in < end;) {
        size_t opt_len = is_ra ? (size_t)frame[in + 1] * 8 : 4 + dns6_get16(frame + in + 2);
        guint type = is_ra ? frame[in] : dns6_get16(frame + in);

        if (type != (is_ra ? DNS6_NDP_OPTION_RDNSS : DNS6_DHCPV6_OPTION_DNS_SERVERS)) {
            memmove(frame + out, frame + in, opt_len);
            out += opt_len;
        }
        in += opt_len;
    }
    if (out == end)
        return len;

    l4_len = out - l4;
    dns6_put16(frame + DNS6_ETH_HLEN + 4, (guint)l4_len);
    if (is_ra) {
        dns6_put16(frame + l4 + 2, 0);
        dns6_put16(frame + l4 + 2, dns6_checksum(frame + DNS6_ETH_HLEN, frame + l4, l4_len));
    } else {
        dns6_put16(frame + l4 + 4, (guint)l4_len);
        dns6_put16(frame + l4 + 6, 0);
        dns6_put16(frame + l4 + 6, dns6_checksum(frame + DNS6_ETH_HLEN, frame + l4, l4_len));
    }
    return out;
}
