/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-vmstate.c - libFuzzer target: a migration blob given to Load
 *
 * The input is the byte array org.qemu.VMState1.Load receives: the
 * envelope check (vmstate.c), then, if it passes, libslirp's state loader
 * into a fresh instance (netstack_load_state()), exactly as a Load does.
 */
#include <glib.h>
#include <stdint.h>

#include "netstack.h"
#include "options.h"
#include "vmstate.h"

static HelperConfig fuzz_cfg;
static HelperNetstack *fuzz_ns;

/* implements NetstackOutputFunc */
static void fuzz_output(const guint8 *frame, size_t len, void *opaque)
{
    g_assert(len > 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *args[] = { (char *)"slirp-helper", (char *)"--fd=3", NULL };

    options_init(&fuzz_cfg);
    g_assert(options_parse(&fuzz_cfg, 2, args, NULL));
    fuzz_ns = netstack_new(&fuzz_cfg, fuzz_output, NULL, NULL);
    g_assert(fuzz_ns);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    const guint8 *payload;
    size_t payload_len;
    guint8 *copy = g_memdup2(data, size);

    if (vmstate_envelope_open(copy, size, 4, &payload, &payload_len, &error)) {
        g_assert(payload >= copy && payload + payload_len <= copy + size);
        if (!netstack_load_state(fuzz_ns, 4, payload, payload_len, &error))
            g_assert(error != NULL);
    } else {
        g_assert(error != NULL);
    }
    g_free(copy);
    return 0;
}
