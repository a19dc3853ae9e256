/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dns6.c - libFuzzer target: the IPv6 DNS advertisement rewrite
 *
 * dns6_strip_advertisement() edits frames libslirp sends to the guest, and
 * those can carry bytes the guest chose (a DHCPv6 reply copies its client
 * id).  The input is taken as such a frame: the rewrite must never grow it,
 * never read or write past it, and must be finished after one pass (a
 * second pass changes nothing).  The same bytes also go to the resolver
 * list reader, dns6_resolv_names_ipv6().
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "dns6.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any access past the frame */
    g_autofree guint8 *frame = g_memdup2(data, size);
    size_t len = dns6_strip_advertisement(frame, size);

    g_assert(len <= size);
    g_assert(dns6_strip_advertisement(frame, len) == len);
    (void)dns6_resolv_names_ipv6((const char *)data, size);
    return 0;
}
