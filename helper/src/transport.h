/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * transport.h - Ethernet frames to and from QEMU over a Unix socket
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "frame.h"

typedef enum {
    TRANSPORT_DGRAM,
    TRANSPORT_STREAM,
    TRANSPORT_KIND_LAST,
} TransportKind;

typedef enum {
    TRANSPORT_OK,
    TRANSPORT_PEER_GONE,
    TRANSPORT_STATUS_LAST,
} TransportStatus;

/* what the loop wants from QEMU's socket this iteration */
typedef enum {
    TRANSPORT_INPUT_READ,  /* read and deliver guest frames */
    TRANSPORT_INPUT_WATCH, /* note that a frame is waiting, but leave it there */
    TRANSPORT_INPUT_HOLD,  /* do not watch for frames at all */
    TRANSPORT_INPUT_LAST,
} TransportInput;

typedef struct {
    guint64 rx_frames;
    guint64 rx_bytes;
    guint64 tx_frames;
    guint64 tx_bytes;
    guint64 tx_dropped_full;                /* output queue full (QEMU not reading): dropped */
    guint64 tx_dropped_error;               /* any other send failure */
    guint64 rx_dropped[FRAME_VERDICT_LAST]; /* by verdict; [FRAME_OK] stays 0 */
    guint64 rejected_connections;
} TransportStats;

typedef struct HelperTransport HelperTransport;

HelperTransport *transport_new_fd(int fd, guint mtu, GError **error);
HelperTransport *transport_new_listen(const char *path, guint mtu, GError **error);
void transport_free(HelperTransport *t);
TransportKind transport_kind(const HelperTransport *t);
const char *transport_kind_name(TransportKind kind);
void transport_add_pollfds(HelperTransport *t, GArray *pollfds, TransportInput input);
bool transport_input_waiting(const HelperTransport *t);
TransportStatus transport_dispatch(HelperTransport *t, const GArray *pollfds, FrameFunc func,
                                   void *opaque);
TransportStatus transport_send(HelperTransport *t, const guint8 *frame, size_t len);
TransportStatus transport_flush(HelperTransport *t);
TransportStatus transport_check_peer(HelperTransport *t);
bool transport_wants_peer_checks(const HelperTransport *t);
const TransportStats *transport_stats(const HelperTransport *t);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperTransport, transport_free)
