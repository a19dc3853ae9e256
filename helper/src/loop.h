/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * loop.h - the one poll loop: GLib, libslirp, the QEMU socket and signals
 */
#pragma once

#include <glib.h>

#include "netstack.h"
#include "transport.h"

#define LOOP_PEER_CHECK_MS 500
/* how long guest traffic stays held for a Load after the guest's first frame */
#define LOOP_INCOMING_GRACE_MS 3000

typedef struct HelperLoop HelperLoop;

HelperLoop *loop_new(HelperTransport *transport, GError **error);
void loop_attach_netstack(HelperLoop *loop, HelperNetstack *ns);
int loop_signal_fd(const HelperLoop *loop);
bool loop_signal_pending(const HelperLoop *loop);
void loop_output_frame(const guint8 *frame, size_t len, void *opaque);
int loop_run(HelperLoop *loop);
void loop_free(HelperLoop *loop);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperLoop, loop_free)
