/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-dns6.c - dns6.c's I/O-free parts: which resolver lists name an IPv6
 * server, and removing the DNS server options from DHCPv6 replies and
 * router advertisements (lengths and checksums checked independently)
 */
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "dns6.h"

static void test_resolv(void)
{
    static const struct {
        const char *text;
        bool ipv6;
    } cases[] = {
        { "", false },
        { "nameserver 10.0.2.3\n", false },
        { "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n", false },
        { "nameserver ::1\n", true },
        { "nameserver 10.0.2.3\nnameserver 2001:db8::53\n", true },
        { "nameserver\tfe80::1%eth0\n", true },
        { "nameserver fe80::1%eth0", true }, /* no final newline */
        { "# nameserver ::1\n", false },
        { "nameserver6 ::1\n", false },
        { "nameserver::1\n", false },
        { "nameserver ::1x\n", false },
        { "search ::1\n", false },
        { "domain x\nnameserver  \t  ::ffff:10.0.0.1  # comment\n", true },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (dns6_resolv_names_ipv6(cases[i].text, strlen(cases[i].text)) != cases[i].ipv6) {
            g_test_message("'%s': expected %s", cases[i].text, cases[i].ipv6 ? "IPv6" : "none");
            g_test_fail();
        }
    }
    /* only @len bytes are read */
    g_assert_false(dns6_resolv_names_ipv6("nameserver ::1\n", 12));
}

/* the Internet checksum over the IPv6 pseudo-header and the L4 bytes */
static guint16 verify_sum(const guint8 *frame, size_t len)
{
    const guint8 *ip6 = frame + 14;
    size_t l4_len = (size_t)ip6[4] << 8 | ip6[5];
    guint32 sum = 0;

    g_assert_cmpuint(14 + 40 + l4_len, <=, len);
    for (size_t i = 8; i < 40; i += 2)
        sum += (guint32)ip6[i] << 8 | ip6[i + 1];
    sum += (guint32)l4_len + ip6[6];
    for (size_t i = 0; i < l4_len; i += 2)
        sum += (guint32)ip6[40 + i] << 8 | (i + 1 < l4_len ? ip6[40 + i + 1] : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)sum;
}

/* an Ethernet/IPv6 frame from fe80::2 to fec0::15 with @l4 as payload */
static size_t build_frame(guint8 *frame, guint8 nh, const guint8 *l4, size_t l4_len)
{
    static const guint8 eth[14] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52,
                                    0x56, 0,    0, 0,    2,    0x86, 0xdd };
    guint8 *ip6 = frame + 14;

    memcpy(frame, eth, sizeof(eth));
    memset(ip6, 0, 40);
    ip6[0] = 0x60;
    ip6[4] = (guint8)(l4_len >> 8);
    ip6[5] = (guint8)l4_len;
    ip6[6] = nh;
    ip6[7] = 255;
    inet_pton(AF_INET6, "fe80::2", ip6 + 8);
    inet_pton(AF_INET6, "fec0::15", ip6 + 24);
    memcpy(ip6 + 40, l4, l4_len);
    return 14 + 40 + l4_len;
}

static void test_dhcpv6(void)
{
    /* a reply as libslirp builds it: client id, DNS servers, boot URL */
    /* one protocol field or option per line */
    /* clang-format off */
    static const guint8 udp[] = {
        0x23, 0x02, 0x02, 0x22, 0, 8 + 4 + 14 + 20 + 9, 0, 0, /* from 8962 to 546 */
        7, 0x12, 0x34, 0x56,                                  /* reply, xid */
        0, 1, 0, 10, 0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56,
        0, 23, 0, 16, 0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3,
        0, 59, 0, 5, 't', 'f', 't', 'p', ':',
    };
    /* clang-format on */
    guint8 frame[256];
    size_t len = build_frame(frame, 17, udp, sizeof(udp));
    size_t out;

    g_assert_true(dns6_is_advertisement(frame, len));
    out = dns6_strip_advertisement(frame, len);
    g_assert_cmpuint(out, ==, len - 20);
    g_assert_cmpuint((guint)frame[18] << 8 | frame[19], ==, sizeof(udp) - 20); /* IPv6 */
    g_assert_cmpuint((guint)frame[58] << 8 | frame[59], ==, sizeof(udp) - 20); /* UDP */
    g_assert_cmpuint(verify_sum(frame, out), ==, 0xffff);
    g_assert_cmpmem(frame + 54 + 12, 14, udp + 12, 14);    /* client id kept */
    g_assert_cmpmem(frame + 54 + 26, 9, udp + 26 + 20, 9); /* boot URL moved up */

    /* nothing to strip: unchanged */
    g_assert_cmpuint(dns6_strip_advertisement(frame, out), ==, out);

    /* an option running past the end: unchanged */
    len = build_frame(frame, 17, udp, sizeof(udp));
    frame[54 + 29] = 200;
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);
    g_assert_cmpmem(frame + 54 + 30, 20, udp + 30, 20);

    /* not a reply (an information request), or not to port 546: unchanged */
    len = build_frame(frame, 17, udp, sizeof(udp));
    frame[54 + 8] = 11;
    g_assert_false(dns6_is_advertisement(frame, len));
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);
    len = build_frame(frame, 17, udp, sizeof(udp));
    frame[54 + 3] = 53;
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);

    /* a UDP length that disagrees with the IPv6 payload length: unchanged */
    len = build_frame(frame, 17, udp, sizeof(udp));
    frame[54 + 5]--;
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);

    /* truncated frames of every length are left alone and not overread */
    for (size_t n = 0; n < sizeof(udp); n++) {
        len = build_frame(frame, 17, udp, sizeof(udp));
        g_assert_cmpuint(dns6_strip_advertisement(frame, 54 + n), ==, 54 + n);
    }
}

static void test_ra(void)
{
    /* an RA as libslirp builds it: source link-layer, prefix, RDNSS */
    /* one option per line */
    /* clang-format off */
    static const guint8 icmp[] = {
        134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, /* header */
        1, 1, 0x52, 0x56, 0, 0, 0, 2,                           /* link-layer */
        3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0, /* prefix */
        0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        25, 3, 0, 0, 0, 0, 0x04, 0xb0, /* RDNSS */
        0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3,
    };
    /* clang-format on */
    guint8 frame[256];
    size_t len = build_frame(frame, 58, icmp, sizeof(icmp));
    size_t out;

    g_assert_true(dns6_is_advertisement(frame, len));
    out = dns6_strip_advertisement(frame, len);
    g_assert_cmpuint(out, ==, len - 24);
    g_assert_cmpuint((guint)frame[18] << 8 | frame[19], ==, sizeof(icmp) - 24);
    g_assert_cmpuint(verify_sum(frame, out), ==, 0xffff);
    g_assert_cmpmem(frame + 54 + 16, 40, icmp + 16, 40);

    /* a zero option length (RFC 4861: discard) or one past the end: unchanged */
    len = build_frame(frame, 58, icmp, sizeof(icmp));
    frame[54 + 17] = 0;
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);
    len = build_frame(frame, 58, icmp, sizeof(icmp));
    frame[54 + 57] = 4;
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);

    /* other ICMPv6 (a neighbour advertisement): not an advertisement of DNS */
    len = build_frame(frame, 58, icmp, sizeof(icmp));
    frame[54] = 136;
    g_assert_false(dns6_is_advertisement(frame, len));
    g_assert_cmpuint(dns6_strip_advertisement(frame, len), ==, len);

    for (size_t n = 0; n < sizeof(icmp); n++) {
        len = build_frame(frame, 58, icmp, sizeof(icmp));
        g_assert_cmpuint(dns6_strip_advertisement(frame, 54 + n), ==, 54 + n);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dns6/resolv", test_resolv);
    g_test_add_func("/dns6/dhcpv6", test_dhcpv6);
    g_test_add_func("/dns6/ra", test_ra);
    return g_test_run();
}
