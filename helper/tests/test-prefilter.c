/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-prefilter.c - the guest frame pre-filter: every verdict, urgent data
 * stripping with a checksum that stays right, the flow cap and the counters
 */
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "options.h"
#include "prefilter.h"

static HelperConfig test_cfg;

/* defaults (as options_init() leaves them) with TFTP and fragments chosen */
static void test_config(PrefilterConfig *pc, bool tftp, bool frags)
{
    options_init(&test_cfg);
    prefilter_config_init(pc, &test_cfg);
    options_clear(&test_cfg);
    pc->tftp_enabled = tftp;
    pc->drop_fragments = frags;
    pc->ipv4 = pc->ipv6 = true;
    inet_pton(AF_INET, "10.0.2.2", &pc->vhost);
    inet_pton(AF_INET6, "fec0::2", &pc->vhost6);
    g_assert_cmpuint(pc->max_frame, ==, 1500 + 18);
}

static guint16 test_csum(const guint8 *p, size_t len, guint32 sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (guint32)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (guint32)(p[len - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)~sum;
}

/* Builds Ethernet + IPv4 + @l4 (protocol @proto) into @out; returns the length. */
static size_t test_ipv4(guint8 *out, guint8 proto, const guint8 *l4, size_t l4_len, const char *dst,
                        guint16 frag)
{
    static const guint8 eth[14] = { 0x52, 0x55, 10,   0,    2,    2,    0x52,
                                    0x54, 0,    0x12, 0x34, 0x56, 0x08, 0x00 };
    guint8 *ip = out + 14;
    size_t total = 20 + l4_len;

    memcpy(out, eth, 14);
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[2] = (guint8)(total >> 8);
    ip[3] = (guint8)total;
    ip[6] = (guint8)(frag >> 8);
    ip[7] = (guint8)frag;
    ip[8] = 64;
    ip[9] = proto;
    inet_pton(AF_INET, "10.0.2.15", ip + 12);
    inet_pton(AF_INET, dst, ip + 16);
    memcpy(ip + 20, l4, l4_len);
    return 14 + total;
}

/* TCP header with a correct checksum for 10.0.2.15 -> @dst */
static size_t test_tcp(guint8 *out, guint8 flags, guint16 urp, const char *dst)
{
    guint8 tcp[24] = { 0x9c,
                       0x40,
                       0x00,
                       0x50,
                       0,
                       0,
                       0x03,
                       0xe8,
                       0,
                       0,
                       0,
                       0,
                       0x50,
                       flags,
                       0xff,
                       0xff,
                       0,
                       0,
                       (guint8)(urp >> 8),
                       (guint8)urp,
                       'd',
                       'a',
                       't',
                       'a' };
    size_t len = test_ipv4(out, 6, tcp, sizeof(tcp), dst, 0);
    guint8 pseudo[12];
    guint32 sum = 0;
    guint16 c;

    memcpy(pseudo, out + 14 + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    pseudo[10] = 0;
    pseudo[11] = sizeof(tcp);
    for (int i = 0; i < 12; i += 2)
        sum += (guint32)(pseudo[i] << 8 | pseudo[i + 1]);
    c = test_csum(out + 34, sizeof(tcp), sum);
    out[34 + 16] = (guint8)(c >> 8);
    out[34 + 17] = (guint8)c;
    return len;
}

static bool test_tcp_csum_ok(const guint8 *frame, size_t len)
{
    guint32 sum = 0;
    size_t tlen = len - 34;
    guint8 pseudo[12];

    memcpy(pseudo, frame + 14 + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    pseudo[10] = (guint8)(tlen >> 8);
    pseudo[11] = (guint8)tlen;
    for (int i = 0; i < 12; i += 2)
        sum += (guint32)(pseudo[i] << 8 | pseudo[i + 1]);
    return test_csum(frame + 34, tlen, sum) == 0;
}

static void test_layer2(void)
{
    PrefilterConfig pc;
    PrefilterInfo info;
    guint8 f[2000] = { 0 };

    test_config(&pc, false, false);
    g_assert_cmpint(prefilter_check(&pc, f, 13, &info), ==, PREFILTER_RUNT);
    f[12] = 0x88;
    f[13] = 0xf8; /* NC-SI */
    g_assert_cmpint(prefilter_check(&pc, f, 60, &info), ==, PREFILTER_ETHERTYPE);
    f[12] = 0x08;
    f[13] = 0x06; /* ARP */
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 27, &info), ==, PREFILTER_MALFORMED);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 28, &info), ==, PREFILTER_PASS);
    g_assert_cmpint(prefilter_check(&pc, f, 1519, &info), ==, PREFILTER_OVERSIZE);
    g_assert_cmpint(prefilter_check(&pc, f, 1518, &info), ==, PREFILTER_PASS);
    pc.ipv6 = false;
    f[12] = 0x86;
    f[13] = 0xdd;
    g_assert_cmpint(prefilter_check(&pc, f, 100, &info), ==, PREFILTER_ETHERTYPE);
}

static void test_ipv4_headers(void)
{
    PrefilterConfig pc;
    PrefilterInfo info;
    guint8 f[200];
    size_t len;

    test_config(&pc, false, false);
    len = test_tcp(f, 0x02, 0, "1.2.3.4");
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    g_assert_cmpuint(info.urgent_offset, ==, 0);
    /* total length beyond the frame */
    g_assert_cmpint(prefilter_check(&pc, f, len - 1, &info), ==, PREFILTER_MALFORMED);
    /* header length below 20 */
    f[14] = 0x44;
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_MALFORMED);
    f[14] = 0x45;
    /* TCP data offset beyond the segment */
    f[34 + 12] = 0xf0;
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_MALFORMED);
    /* an ACK is not a new flow */
    len = test_tcp(f, 0x10, 0, "1.2.3.4");
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_false(info.new_flow);
    /* Ethernet padding after the IP packet is fine */
    g_assert_cmpint(prefilter_check(&pc, f, len + 6, &info), ==, PREFILTER_PASS);
}

static void test_urgent(void)
{
    PrefilterConfig pc;
    PrefilterInfo info;
    guint8 f[200];
    size_t len;

    test_config(&pc, false, false);
    len = test_tcp(f, 0x18 | 0x20, 2, "1.2.3.4");
    g_assert_true(test_tcp_csum_ok(f, len));
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_cmpuint(info.urgent_offset, ==, 34);
    prefilter_strip_urgent(f, len, info.urgent_offset);
    g_assert_cmpint(f[34 + 13], ==, 0x18);
    g_assert_cmpint(f[34 + 18] | f[34 + 19], ==, 0);
    g_assert_true(test_tcp_csum_ok(f, len));
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_cmpuint(info.urgent_offset, ==, 0);
}

static void test_udp_tftp(void)
{
    PrefilterConfig pc;
    PrefilterInfo info;
    guint8 f[200];
    guint8 udp[16] = { 0x07, 0xd0, 0x00, 69, 0x00, 16, 0, 0, 0, 1, 'a', 0, 'o', 'c', 0, 0 };
    size_t len;

    test_config(&pc, false, false);
    len = test_ipv4(f, 17, udp, sizeof(udp), "10.0.2.2", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_TFTP_OFF);
    len = test_ipv4(f, 17, udp, sizeof(udp), "192.0.2.1", 0); /* TFTP elsewhere: NAT */
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    test_config(&pc, true, false);
    len = test_ipv4(f, 17, udp, sizeof(udp), "10.0.2.2", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_false(info.new_flow);
    /* UDP length beyond the packet */
    udp[5] = 17;
    len = test_ipv4(f, 17, udp, sizeof(udp), "192.0.2.1", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_MALFORMED);
    /* BOOTP opens no socket */
    udp[3] = 67;
    udp[5] = 16;
    len = test_ipv4(f, 17, udp, sizeof(udp), "255.255.255.255", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_false(info.new_flow);
    len = test_ipv4(f, 17, udp, sizeof(udp), "10.0.2.2", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_false(info.new_flow);
    /* but port 67 of any other address is NAT'd: libslirp opens a socket */
    len = test_ipv4(f, 17, udp, sizeof(udp), "192.0.2.1", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    len = test_ipv4(f, 17, udp, sizeof(udp), "10.0.2.255", 0);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
}

static void test_fragments(void)
{
    PrefilterConfig pc;
    PrefilterInfo info;
    guint8 f[200];
    /* the first fragment's UDP length counts the later fragments too */
    guint8 junk[8] = { 0x07, 0xd0, 0x00, 0x35, 0x05, 0xdc, 0, 0 };
    size_t len;

    test_config(&pc, false, false);
    len = test_ipv4(f, 17, junk, sizeof(junk), "1.2.3.4", 0x2000);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    len = test_ipv4(f, 17, junk, sizeof(junk), "1.2.3.4", 0); /* unfragmented: too long */
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_MALFORMED);
    len = test_ipv4(f, 17, junk, 3, "1.2.3.4", 0x0010); /* later fragment: no UDP header */
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
    test_config(&pc, false, true);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_FRAGMENT);
    len = test_ipv4(f, 17, junk, sizeof(junk), "1.2.3.4", 0x2000);
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_FRAGMENT);
    junk[4] = 0;
    junk[5] = 8;
    len = test_ipv4(f, 17, junk, sizeof(junk), "1.2.3.4", 0x4000); /* DF only */
    g_assert_cmpint(prefilter_check(&pc, f, len, &info), ==, PREFILTER_PASS);
}

static void test_ipv6(void)
{
    PrefilterConfig pc;
    PrefilterInfo info;
    guint8 f[200] = { 0x33, 0x33, 0, 0, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x86, 0xdd };
    guint8 *ip = f + 14;

    test_config(&pc, false, false);
    memset(ip, 0, 40 + 16);
    ip[0] = 0x60;
    ip[5] = 16; /* payload length */
    ip[6] = 17;
    inet_pton(AF_INET6, "fec0::2", ip + 24);
    ip[40 + 3] = 69;
    ip[40 + 5] = 16;
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_TFTP_OFF);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 55, &info), ==, PREFILTER_MALFORMED);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 39, &info), ==, PREFILTER_MALFORMED);
    /* UDP: only DHCPv6 (547) to the host or All_DHCP_Relay_Agents_and_Servers
     * is answered without a socket; port 67 means nothing special in IPv6 */
    ip[40 + 3] = 67;
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    inet_pton(AF_INET6, "2001:db8::1", ip + 24);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    ip[40 + 2] = 547 >> 8;
    ip[40 + 3] = 547 & 0xff;
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    inet_pton(AF_INET6, "fec0::2", ip + 24);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    g_assert_false(info.new_flow);
    inet_pton(AF_INET6, "ff02::1:2", ip + 24);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    g_assert_false(info.new_flow);
    ip[6] = 58;
    ip[40] = 128; /* echo request */
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    g_assert_true(info.new_flow);
    ip[6] = 44;
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_PASS);
    test_config(&pc, false, true);
    g_assert_cmpint(prefilter_check(&pc, f, 14 + 56, &info), ==, PREFILTER_FRAGMENT);
}

static bool test_no_room(void)
{
    return false;
}

static void test_apply_counts(void)
{
    g_autoptr(HelperPrefilter) pf = NULL;
    const PrefilterStats *st;
    guint8 f[200];
    guint8 copy[200];
    size_t len;

    options_init(&test_cfg);
    pf = prefilter_new(&test_cfg, test_no_room);
    st = prefilter_stats(pf);
    len = test_tcp(f, 0x02, 0, "1.2.3.4");
    g_assert_null(prefilter_apply(pf, f, len)); /* SYN, no room */
    len = test_tcp(f, 0x10 | 0x20, 1, "1.2.3.4");
    memcpy(copy, f, len);
    const guint8 *out = prefilter_apply(pf, f, len);
    g_assert_nonnull(out);
    g_assert_true(out != f);
    g_assert_cmpmem(f, len, copy, len); /* the input is left alone */
    g_assert_cmpint(out[34 + 13], ==, 0x10);
    g_assert_null(prefilter_apply(pf, f, 5));
    g_assert_cmpuint(st->dropped[PREFILTER_FLOW_LIMIT], ==, 1);
    g_assert_cmpuint(st->dropped[PREFILTER_RUNT], ==, 1);
    g_assert_cmpuint(st->passed, ==, 1);
    g_assert_cmpuint(st->urgent_stripped, ==, 1);
    g_assert_cmpuint(st->dropped[PREFILTER_PASS], ==, 0);
    prefilter_log_stats(pf);
    options_clear(&test_cfg);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/prefilter/layer2", test_layer2);
    g_test_add_func("/prefilter/ipv4-headers", test_ipv4_headers);
    g_test_add_func("/prefilter/urgent", test_urgent);
    g_test_add_func("/prefilter/udp-tftp", test_udp_tftp);
    g_test_add_func("/prefilter/fragments", test_fragments);
    g_test_add_func("/prefilter/ipv6", test_ipv6);
    g_test_add_func("/prefilter/apply-counts", test_apply_counts);
    return g_test_run();
}
