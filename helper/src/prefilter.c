/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prefilter.c - what a guest frame may carry into libslirp
 *
 * Theory of operation.  Every frame from the guest passes prefilter_check()
 * just before slirp_input().  It is a small, I/O-free, length-checked
 * function (unit-tested in tests/test-prefilter.c, fuzzed through the whole
 * input path in tests/fuzz/) that keeps the parts of libslirp with a bug
 * history out of the guest's reach where the helper loses nothing:
 *
 *  - runts and frames longer than the MTU allows (transport.c's frame_check
 *    already drops these; repeated here so this function stands alone);
 *  - EtherTypes other than ARP, IPv4 and IPv6: NC-SI (0x88F8,
 *    CVE-2020-29129) and anything else libslirp would parse for nothing;
 *  - ARP, IPv4, IPv6, TCP and UDP headers that do not fit the frame or
 *    contradict their own lengths (the "length check after mtod" CVE class:
 *    ARP CVE-2020-29130, bootp, udp, udp6, tftp);
 *  - with --drop-fragments, IPv4 fragments (ip_reass had three CVEs) and
 *    IPv6 fragment headers.  Off by default: it breaks large UDP datagrams;
 *  - without --tftp, UDP to port 69 of the virtual host (tftp.c still parses
 *    requests when no TFTP root is set);
 *  - TCP urgent data: the URG flag and urgent pointer are cleared and the
 *    checksum fixed (prefilter_strip_urgent()), so the bytes arrive as
 *    ordinary data and libslirp's sosendoob()/urgent path (a reported 2026
 *    CVE) is never used.
 *
 * It also marks packets that may make libslirp open a host socket (a TCP
 * SYN, any UDP datagram except those libslirp answers itself, an ICMP echo
 * request): the
 * glue prefilter_apply() refuses those, as PREFILTER_FLOW_LIMIT, while the
 * sandbox says descriptors are nearly exhausted (sandbox_flow_allowed()).
 * This caps concurrent guest connections below --max-fds, which libslirp
 * itself cannot do.
 *
 * Every drop is counted by reason; the counts are in the control
 * interface's GetInfo and logged at exit.
 */
#include "prefilter.h"

#include <string.h>

#include "frame.h"
#include "log.h"

#define PREFILTER_ARP_LEN 28
#define PREFILTER_IP4_HLEN 20
#define PREFILTER_IP6_HLEN 40
#define PREFILTER_TCP_HLEN 20
#define PREFILTER_UDP_HLEN 8
#define PREFILTER_TFTP_PORT 69
#define PREFILTER_BOOTP_PORT 67
#define PREFILTER_DHCPV6_PORT 547

#define PREFILTER_PROTO_ICMP 1
#define PREFILTER_PROTO_TCP 6
#define PREFILTER_PROTO_UDP 17
#define PREFILTER_PROTO_FRAG6 44
#define PREFILTER_PROTO_ICMP6 58

#define PREFILTER_TCP_SYN 0x02
#define PREFILTER_TCP_ACK 0x10
#define PREFILTER_TCP_URG 0x20

/* ff02::1:2, All_DHCP_Relay_Agents_and_Servers (RFC 8415) */
static const guint8 prefilter_all_dhcp6[16] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0,
                                                0,    0,    0, 0, 0, 1, 0, 2 };

struct HelperPrefilter {
    PrefilterConfig config;
    PrefilterFlowFunc flow_allowed;
    PrefilterStats stats;
    guint8 *scratch; /* a copy of a frame whose urgent data is stripped */
};

static const char *const prefilter_verdict_names[] = {
    [PREFILTER_PASS] = "passed",         [PREFILTER_RUNT] = "runt",
    [PREFILTER_OVERSIZE] = "oversize",   [PREFILTER_ETHERTYPE] = "ethertype",
    [PREFILTER_MALFORMED] = "malformed", [PREFILTER_FRAGMENT] = "fragment",
    [PREFILTER_TFTP_OFF] = "tftp-off",   [PREFILTER_FLOW_LIMIT] = "flow-limit",
};
G_STATIC_ASSERT(G_N_ELEMENTS(prefilter_verdict_names) == PREFILTER_VERDICT_LAST);

/**
 * prefilter_verdict_name() - short name of a verdict, for counters and logs
 * @verdict: the verdict
 *
 * Return: a static string
 */
const char *prefilter_verdict_name(PrefilterVerdict verdict)
{
    return prefilter_verdict_names[verdict];
}

static guint16 prefilter_be16(const guint8 *p)
{
    return (guint16)((p[0] << 8) | p[1]);
}

/**
 * prefilter_config_init() - the filter's view of the configuration
 * @pc: filled in
 * @cfg: the helper's configuration
 */
void prefilter_config_init(PrefilterConfig *pc, const HelperConfig *cfg)
{
    memset(pc, 0, sizeof(*pc));
    pc->max_frame = cfg->mtu + FRAME_L2_OVERHEAD;
    pc->tftp_enabled = cfg->tftp_dir != NULL;
    pc->drop_fragments = cfg->drop_fragments;
    pc->ipv4 = cfg->ipv4;
    pc->ipv6 = cfg->ipv6;
    pc->vhost = cfg->host;
    pc->vhost6 = cfg->host6;
}

/**
 * prefilter_check_tcp() - TCP header checks shared by IPv4 and IPv6
 * @l4: the TCP header
 * @l4_len: bytes from it to the end of the IP payload
 * @l4_offset: its offset in the frame
 * @info: new_flow and urgent_offset are set
 *
 * Return: PREFILTER_PASS or PREFILTER_MALFORMED
 */
static PrefilterVerdict prefilter_check_tcp(const guint8 *l4, size_t l4_len, size_t l4_offset,
                                            PrefilterInfo *info)
{
    size_t doff;
    guint8 flags;

    if (l4_len < PREFILTER_TCP_HLEN)
        return PREFILTER_MALFORMED;
    doff = (size_t)(l4[12] >> 4) * 4;
    if (doff < PREFILTER_TCP_HLEN || doff > l4_len)
        return PREFILTER_MALFORMED;
    flags = l4[13];
    info->new_flow = (flags & (PREFILTER_TCP_SYN | PREFILTER_TCP_ACK)) == PREFILTER_TCP_SYN;
    if ((flags & PREFILTER_TCP_URG) || prefilter_be16(l4 + 18) != 0)
        info->urgent_offset = l4_offset;
    return PREFILTER_PASS;
}

/**
 * prefilter_check_udp() - UDP header checks shared by IPv4 and IPv6
 * @pc: the configuration
 * @l4: the UDP header
 * @l4_len: bytes from it to the end of the IP payload
 * @to_vhost: the destination is the virtual host
 * @dhcp_port: the DHCP server port of the IP version (67, or 547 for DHCPv6)
 * @to_dhcp_server: the destination is one libslirp answers DHCP on: the
 *                  virtual host, or the version's DHCP broadcast or
 *                  multicast address
 * @fragment: the first fragment of a larger datagram (its UDP length
 *            counts bytes in later fragments)
 * @info: new_flow is set
 *
 * Only what libslirp answers itself opens no host socket: DHCP to
 * @to_dhcp_server and TFTP to the virtual host (udp.c, udp6.c).  The same
 * ports anywhere else are NAT'd like any datagram, and count as new flows.
 *
 * Return: PREFILTER_PASS, PREFILTER_MALFORMED or PREFILTER_TFTP_OFF
 */
static PrefilterVerdict prefilter_check_udp(const PrefilterConfig *pc, const guint8 *l4,
                                            size_t l4_len, bool to_vhost, guint16 dhcp_port,
                                            bool to_dhcp_server, bool fragment,
                                            PrefilterInfo *info)
{
    guint16 ulen, dport;

    if (l4_len < PREFILTER_UDP_HLEN)
        return PREFILTER_MALFORMED;
    ulen = prefilter_be16(l4 + 4);
    if (ulen < PREFILTER_UDP_HLEN || (ulen > l4_len && !fragment))
        return PREFILTER_MALFORMED;
    dport = prefilter_be16(l4 + 2);
    if (dport == PREFILTER_TFTP_PORT && to_vhost) {
        if (!pc->tftp_enabled)
            return PREFILTER_TFTP_OFF;
        return PREFILTER_PASS; /* answered by libslirp itself, no socket */
    }
    info->new_flow = !(dport == dhcp_port && to_dhcp_server);
    return PREFILTER_PASS;
}

/**
 * prefilter_check_ipv4() - IPv4 and its TCP/UDP/ICMP header
 * @pc: the configuration
 * @frame: the frame
 * @len: its length, at least FRAME_ETH_HLEN
 * @info: filled for passed frames
 *
 * Return: the verdict
 */
static PrefilterVerdict prefilter_check_ipv4(const PrefilterConfig *pc, const guint8 *frame,
                                             size_t len, PrefilterInfo *info)
{
    const guint8 *ip = frame + FRAME_ETH_HLEN;
    size_t avail = len - FRAME_ETH_HLEN;
    size_t ihl, total;
    guint16 frag;
    bool to_vhost;

    if (avail < PREFILTER_IP4_HLEN || (ip[0] >> 4) != 4)
        return PREFILTER_MALFORMED;
    ihl = (size_t)(ip[0] & 0x0f) * 4;
    total = prefilter_be16(ip + 2);
    if (ihl < PREFILTER_IP4_HLEN || total < ihl || total > avail)
        return PREFILTER_MALFORMED;
    frag = prefilter_be16(ip + 6);
    if (frag & 0x3fff) { /* more fragments, or an offset */
        if (pc->drop_fragments)
            return PREFILTER_FRAGMENT;
        if (frag & 0x1fff)
            return PREFILTER_PASS; /* not the first fragment: no L4 header here */
    }
    to_vhost = memcmp(ip + 16, &pc->vhost, 4) == 0;
    switch (ip[9]) {
    case PREFILTER_PROTO_TCP:
        return prefilter_check_tcp(ip + ihl, total - ihl, FRAME_ETH_HLEN + ihl, info);
    case PREFILTER_PROTO_UDP:
        return prefilter_check_udp(pc, ip + ihl, total - ihl, to_vhost, PREFILTER_BOOTP_PORT,
                                   to_vhost || memcmp(ip + 16, "\xff\xff\xff\xff", 4) == 0,
                                   (frag & 0x2000) != 0, info);
    case PREFILTER_PROTO_ICMP:
        info->new_flow = total - ihl >= 1 && ip[ihl] == 8; /* echo request */
        return PREFILTER_PASS;
    }
    return PREFILTER_PASS;
}

/**
 * prefilter_check_ipv6() - IPv6 and its TCP/UDP/ICMPv6 header
 * @pc: the configuration
 * @frame: the frame
 * @len: its length, at least FRAME_ETH_HLEN
 * @info: filled for passed frames
 *
 * libslirp 4.7 follows no extension headers (it drops such packets), so only
 * the first next-header value matters.
 *
 * Return: the verdict
 */
static PrefilterVerdict prefilter_check_ipv6(const PrefilterConfig *pc, const guint8 *frame,
                                             size_t len, PrefilterInfo *info)
{
    const guint8 *ip = frame + FRAME_ETH_HLEN;
    size_t avail = len - FRAME_ETH_HLEN;
    size_t plen;
    bool to_vhost;

    if (avail < PREFILTER_IP6_HLEN || (ip[0] >> 4) != 6)
        return PREFILTER_MALFORMED;
    plen = prefilter_be16(ip + 4);
    if (plen > avail - PREFILTER_IP6_HLEN)
        return PREFILTER_MALFORMED;
    to_vhost = memcmp(ip + 24, &pc->vhost6, 16) == 0;
    switch (ip[6]) {
    case PREFILTER_PROTO_TCP:
        return prefilter_check_tcp(ip + PREFILTER_IP6_HLEN, plen,
                                   FRAME_ETH_HLEN + PREFILTER_IP6_HLEN, info);
    case PREFILTER_PROTO_UDP:
        return prefilter_check_udp(pc, ip + PREFILTER_IP6_HLEN, plen, to_vhost,
                                   PREFILTER_DHCPV6_PORT,
                                   to_vhost || memcmp(ip + 24, prefilter_all_dhcp6, 16) == 0,
                                   false, info);
    case PREFILTER_PROTO_ICMP6:
        info->new_flow = plen >= 1 && ip[PREFILTER_IP6_HLEN] == 128; /* echo request */
        return PREFILTER_PASS;
    case PREFILTER_PROTO_FRAG6:
        return pc->drop_fragments ? PREFILTER_FRAGMENT : PREFILTER_PASS;
    }
    return PREFILTER_PASS;
}

/**
 * prefilter_check() - decide whether a guest frame goes to libslirp
 * @pc: the configuration
 * @frame: the frame, starting with the Ethernet header; not modified
 * @len: its length
 * @info: for passed frames: whether it may open a host socket and whether
 *        urgent data must be stripped first (zeroed for every frame)
 *
 * No I/O, no allocation; reads only inside @frame[0..@len).
 *
 * Return: PREFILTER_PASS, or why the frame must be dropped
 */
PrefilterVerdict prefilter_check(const PrefilterConfig *pc, const guint8 *frame, size_t len,
                                 PrefilterInfo *info)
{
    guint16 ethertype;

    memset(info, 0, sizeof(*info));
    if (len < FRAME_ETH_HLEN)
        return PREFILTER_RUNT;
    if (len > pc->max_frame)
        return PREFILTER_OVERSIZE;
    ethertype = prefilter_be16(frame + 12);
    switch (ethertype) {
    case 0x0806: /* ARP */
        return len - FRAME_ETH_HLEN < PREFILTER_ARP_LEN ? PREFILTER_MALFORMED : PREFILTER_PASS;
    case 0x0800:
        return pc->ipv4 ? prefilter_check_ipv4(pc, frame, len, info) : PREFILTER_ETHERTYPE;
    case 0x86dd:
        return pc->ipv6 ? prefilter_check_ipv6(pc, frame, len, info) : PREFILTER_ETHERTYPE;
    }
    return PREFILTER_ETHERTYPE;
}

/**
 * prefilter_csum_replace() - update an Internet checksum for a changed word
 * @csum: the checksum field (big-endian, in place)
 * @old: the old 16-bit word
 * @new: the new one
 *
 * RFC 1624: HC' = ~(~HC + ~m + m').
 */
static void prefilter_csum_replace(guint8 *csum, guint16 old, guint16 new)
{
    guint32 sum = (guint16)~prefilter_be16(csum);

    sum += (guint16)~old;
    sum += new;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    sum = ~sum & 0xffff;
    csum[0] = (guint8)(sum >> 8);
    csum[1] = (guint8)sum;
}

/**
 * prefilter_strip_urgent() - clear URG and the urgent pointer of a TCP header
 * @frame: a frame prefilter_check() passed with info.urgent_offset set
 * @len: its length
 * @tcp_offset: info.urgent_offset
 *
 * The checksum is fixed incrementally, so a segment with a right checksum
 * keeps a right one.
 */
void prefilter_strip_urgent(guint8 *frame, size_t len, size_t tcp_offset)
{
    guint8 *tcp = frame + tcp_offset;
    guint16 old_flags, old_urp;

    if (tcp_offset == 0 || tcp_offset + PREFILTER_TCP_HLEN > len)
        return;
    old_flags = prefilter_be16(tcp + 12);
    old_urp = prefilter_be16(tcp + 18);
    tcp[13] &= (guint8)~PREFILTER_TCP_URG;
    tcp[18] = tcp[19] = 0;
    prefilter_csum_replace(tcp + 16, old_flags, prefilter_be16(tcp + 12));
    prefilter_csum_replace(tcp + 16, old_urp, 0);
}

/**
 * prefilter_new() - the filter for one netstack
 * @cfg: the configuration
 * @flow_allowed: asked before a frame may open a host socket, or NULL
 *
 * Return: the filter
 */
HelperPrefilter *prefilter_new(const HelperConfig *cfg, PrefilterFlowFunc flow_allowed)
{
    HelperPrefilter *pf = g_new0(HelperPrefilter, 1);

    prefilter_config_init(&pf->config, cfg);
    pf->flow_allowed = flow_allowed;
    pf->scratch = g_malloc(pf->config.max_frame);
    return pf;
}

/**
 * prefilter_free() - release the filter
 * @pf: the filter, or NULL
 */
void prefilter_free(HelperPrefilter *pf)
{
    if (!pf)
        return;
    g_free(pf->scratch);
    g_free(pf);
}

/**
 * prefilter_apply() - check, count, and strip one guest frame
 * @pf: the filter
 * @frame: the frame
 * @len: its length
 *
 * Return: the bytes to give libslirp (@frame itself, or the filter's copy
 * with urgent data stripped, valid until the next call), or NULL to drop
 */
const guint8 *prefilter_apply(HelperPrefilter *pf, const guint8 *frame, size_t len)
{
    PrefilterInfo info;
    PrefilterVerdict verdict = prefilter_check(&pf->config, frame, len, &info);

    if (verdict == PREFILTER_PASS && info.new_flow && pf->flow_allowed && !pf->flow_allowed())
        verdict = PREFILTER_FLOW_LIMIT;
    if (verdict != PREFILTER_PASS) {
        if (pf->stats.dropped[verdict]++ == 0)
            log_debug("Dropping a guest frame: %s (counted from now on)",
                      prefilter_verdict_name(verdict));
        return NULL;
    }
    pf->stats.passed++;
    if (info.urgent_offset) {
        memcpy(pf->scratch, frame, len); /* len <= max_frame: checked */
        prefilter_strip_urgent(pf->scratch, len, info.urgent_offset);
        pf->stats.urgent_stripped++;
        return pf->scratch;
    }
    return frame;
}

/**
 * prefilter_stats() - the counters
 * @pf: the filter
 *
 * Return: the counters, owned by @pf
 */
const PrefilterStats *prefilter_stats(const HelperPrefilter *pf)
{
    return &pf->stats;
}

/**
 * prefilter_log_stats() - one line with every non-zero counter
 * @pf: the filter
 */
void prefilter_log_stats(const HelperPrefilter *pf)
{
    g_autoptr(GString) line = g_string_new(NULL);

    for (int v = PREFILTER_PASS + 1; v < PREFILTER_VERDICT_LAST; v++) {
        if (pf->stats.dropped[v])
            g_string_append_printf(line, ", %s %" G_GUINT64_FORMAT,
                                   prefilter_verdict_name((PrefilterVerdict)v),
                                   pf->stats.dropped[v]);
    }
    log_info("Guest frames: %" G_GUINT64_FORMAT " passed, %" G_GUINT64_FORMAT
             " with urgent data stripped%s%s",
             pf->stats.passed, pf->stats.urgent_stripped, line->len ? "; dropped: " : "",
             line->len ? line->str + 2 : "");
}
