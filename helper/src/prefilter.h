/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prefilter.h - what a guest frame may carry into libslirp (see prefilter.c)
 */
#pragma once

#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "options.h"

typedef enum {
    PREFILTER_PASS,       /* to libslirp (possibly with urgent data stripped) */
    PREFILTER_RUNT,       /* shorter than an Ethernet header */
    PREFILTER_OVERSIZE,   /* longer than the MTU allows */
    PREFILTER_ETHERTYPE,  /* not ARP, IPv4 or IPv6 (e.g. NC-SI 0x88F8) */
    PREFILTER_MALFORMED,  /* ARP/IP/TCP/UDP header cut short or inconsistent */
    PREFILTER_FRAGMENT,   /* IPv4/IPv6 fragment with --drop-fragments */
    PREFILTER_TFTP_OFF,   /* TFTP to the virtual host without --tftp */
    PREFILTER_FLOW_LIMIT, /* a new flow while descriptors are nearly exhausted */
    PREFILTER_VERDICT_LAST,
} PrefilterVerdict;

typedef struct {
    size_t max_frame; /* MTU + Ethernet header + one VLAN tag */
    bool tftp_enabled;
    bool drop_fragments;
    bool ipv4;
    bool ipv6;
    struct in_addr vhost;
    struct in6_addr vhost6;
} PrefilterConfig;

/* What prefilter_check() found out about a frame it passes. */
typedef struct {
    bool new_flow;        /* may make libslirp open a host socket */
    size_t urgent_offset; /* offset of the TCP header to strip URG from, 0: none */
} PrefilterInfo;

typedef struct {
    guint64 passed;
    guint64 dropped[PREFILTER_VERDICT_LAST]; /* [PREFILTER_PASS] stays 0 */
    guint64 urgent_stripped;
} PrefilterStats;

typedef bool (*PrefilterFlowFunc)(void);

typedef struct HelperPrefilter HelperPrefilter;

void prefilter_config_init(PrefilterConfig *pc, const HelperConfig *cfg);
PrefilterVerdict prefilter_check(const PrefilterConfig *pc, const guint8 *frame, size_t len,
                                 PrefilterInfo *info);
void prefilter_strip_urgent(guint8 *frame, size_t len, size_t tcp_offset);
const char *prefilter_verdict_name(PrefilterVerdict verdict);

HelperPrefilter *prefilter_new(const HelperConfig *cfg, PrefilterFlowFunc flow_allowed);
void prefilter_free(HelperPrefilter *pf);
const guint8 *prefilter_apply(HelperPrefilter *pf, const guint8 *frame, size_t len);
const PrefilterStats *prefilter_stats(const HelperPrefilter *pf);
void prefilter_log_stats(const HelperPrefilter *pf);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperPrefilter, prefilter_free)
