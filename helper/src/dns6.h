/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dns6.h - name the IPv6 DNS proxy to the guest only when it can answer
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

/* libslirp reads the host's resolver list from this path (Linux builds) */
#define DNS6_RESOLV_CONF "/etc/resolv.conf"

/* how long a look at DNS6_RESOLV_CONF is trusted; libslirp caches it as long */
#define DNS6_RESOLV_CACHE_MS 1000

typedef struct {
    gint64 checked_ms; /* when DNS6_RESOLV_CONF was last read; 0: never */
    bool has_ipv6;     /* it named an IPv6 nameserver then */
} Dns6Upstream;

bool dns6_resolv_names_ipv6(const char *text, size_t len);
bool dns6_upstream_has_ipv6(Dns6Upstream *up, gint64 now_ms);
size_t dns6_strip_advertisement(guint8 *frame, size_t len);
bool dns6_is_advertisement(const guint8 *frame, size_t len);
