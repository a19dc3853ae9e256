/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-forward.c - libFuzzer target: port forward specs from the control
 * interface (AddForward) and the command line
 *
 * The input, cut at the first NUL, goes to forward_parse_host() and
 * forward_parse_guest().  What parses must format back to a spec that
 * parses to the same forward.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "forward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *spec = g_strndup((const char *)data, size);
    HostForward host, again;
    GuestForward guest = { 0 }, guest2 = { 0 };

    if (forward_parse_host(spec, &host, NULL)) {
        g_autofree char *text = forward_format_host(&host);

        g_assert(forward_parse_host(text, &again, NULL));
        g_assert(forward_host_same_listener(&host, &again));
        g_assert(memcmp(&host.guest, &again.guest, sizeof(host.guest)) == 0);
    }
    if (forward_parse_guest(spec, &guest, NULL)) {
        g_autofree char *text = forward_format_guest(&guest);

        g_assert(forward_parse_guest(text, &guest2, NULL));
        g_assert(guest.port == guest2.port && guest.addr.s_addr == guest2.addr.s_addr);
        g_assert(strcmp(guest.unix_path, guest2.unix_path) == 0);
        forward_guest_clear(&guest2);
    }
    forward_guest_clear(&guest);
    return 0;
}
