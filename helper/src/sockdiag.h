/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sockdiag.h - ask the kernel whether a Unix socket still has a peer
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef enum {
    SOCKDIAG_PEER_PRESENT,
    SOCKDIAG_PEER_GONE,
    SOCKDIAG_PEER_UNKNOWN,
    SOCKDIAG_PEER_LAST,
} SockdiagPeer;

int sockdiag_open(GError **error);
SockdiagPeer sockdiag_query_peer(int nl_fd, int sock_fd, guint32 *seq);
