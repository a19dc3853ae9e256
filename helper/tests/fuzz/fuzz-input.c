/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-input.c - libFuzzer target: the guest's whole input path
 *
 * One input is a sequence of records, each [op][length, 16-bit big-endian]
 * [bytes]:
 *
 *   op % 4 == 0  one datagram, as transport.c receives it: frame_check(),
 *                then netstack_input() (the pre-filter, then slirp_input)
 *   op % 4 == 1  bytes of a stream: the 4-byte length-prefix decoder
 *                (frame.c) cuts them into frames that take the same path
 *   op % 4 == 2  one loop turn: libslirp's poll descriptors are polled with
 *                no wait, dispatched, and due timers run
 *   op % 4 == 3  migration: the state is saved and loaded back
 *
 * Each input gets a fresh netstack with IPv4, IPv6 and a TFTP root holding
 * one file, so the TFTP, BOOTP, DNS, ICMP, TCP and UDP code is reachable.
 * run.sh runs this in a network namespace with only loopback: flows the
 * guest opens cannot leave the machine.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "netstack.h"
#include "options.h"

static HelperConfig fuzz_cfg;

/* implements NetstackOutputFunc: frames for the guest are dropped */
static void fuzz_output(const guint8 *frame, size_t len, void *opaque)
{
    g_assert(len > 0);
    (void)frame;
}

/* implements FrameFunc: the receive path of transport.c */
static void fuzz_frame(const guint8 *frame, size_t len, void *opaque)
{
    HelperNetstack *ns = opaque;

    if (frame_check(frame, len, fuzz_cfg.mtu + FRAME_L2_OVERHEAD) == FRAME_OK)
        netstack_input(ns, frame, len);
}

static void fuzz_turn(HelperNetstack *ns)
{
    g_autoptr(GArray) fds = g_array_new(FALSE, TRUE, sizeof(GPollFD));
    guint32 timeout = UINT32_MAX;

    netstack_add_pollfds(ns, fds, &timeout);
    int ret = g_poll((GPollFD *)fds->data, fds->len, 0);
    netstack_dispatch(ns, fds, ret < 0);
    netstack_run_timers(ns);
}

static void fuzz_migrate(HelperNetstack *ns)
{
    g_autoptr(GBytes) state = netstack_save_state(ns, 1 << 20, NULL);
    gsize len;
    const guint8 *data;

    if (!state)
        return;
    data = g_bytes_get_data(state, &len);
    netstack_load_state(ns, 4, data, len, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autofree char *dir = g_dir_make_tmp("fuzz-tftp-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "boot.bin", NULL);
    g_autofree char *tftp = g_strdup_printf("--tftp=%s", dir);
    char *args[] = { (char *)"slirp-helper", (char *)"--fd=3", tftp, NULL };
    guint8 blob[3000];

    memset(blob, 'B', sizeof(blob));
    g_assert(g_file_set_contents(file, (const char *)blob, sizeof(blob), NULL));
    options_init(&fuzz_cfg);
    g_assert(options_parse(&fuzz_cfg, 3, args, NULL));
    g_log_set_always_fatal(G_LOG_LEVEL_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(HelperNetstack) ns = netstack_new(&fuzz_cfg, fuzz_output, NULL, NULL);
    FrameDecoder dec;

    g_assert(ns);
    frame_decoder_init(&dec, fuzz_cfg.mtu + FRAME_L2_OVERHEAD);
    while (size >= 3) {
        guint8 op = data[0];
        size_t len = MIN((size_t)((data[1] << 8) | data[2]), size - 3);
        guint8 *copy;

        data += 3;
        size -= 3;
        /* an exact-size copy, so ASan sees any read past the record */
        copy = g_memdup2(data, len);
        switch (op % 4) {
        case 0:
            fuzz_frame(copy, len, ns);
            break;
        case 1:
            frame_decoder_feed(&dec, copy, len, fuzz_frame, ns);
            break;
        case 2:
            fuzz_turn(ns);
            break;
        case 3:
            fuzz_migrate(ns);
            break;
        }
        g_free(copy);
        data += len;
        size -= len;
    }
    fuzz_turn(ns);
    frame_decoder_clear(&dec);
    return 0;
}
