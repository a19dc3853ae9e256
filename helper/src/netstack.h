/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netstack.h - the libslirp instance: configuration, polling, timers,
 * forwards and migration state
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "forward.h"
#include "options.h"
#include "prefilter.h"

#define NETSTACK_ERROR (netstack_error_quark())
GQuark netstack_error_quark(void);

typedef enum {
    NETSTACK_ERROR_FAILED,
    NETSTACK_ERROR_INVALID_SPEC,
    NETSTACK_ERROR_BAD_ADDRESS,
    NETSTACK_ERROR_PORT_IN_USE,
    NETSTACK_ERROR_NO_SUCH_RULE,
    NETSTACK_ERROR_BAD_STATE,
    NETSTACK_ERROR_NOT_ALLOWED,
    NETSTACK_ERROR_LAST,
} NetstackError;

/* at most this many host forward rules (each holds a listening socket) */
#define NETSTACK_FORWARDS_MAX 256

/* the backlog of TCP forward listeners (libslirp itself listens with 1) */
#define NETSTACK_LISTEN_BACKLOG 128
/* how long listeners are not polled after an accept failed for want of
 * descriptors */
#define NETSTACK_ACCEPT_PAUSE_MS 250

typedef struct {
    guint id;
    HostForward fwd;
    int listen_fd; /* libslirp's listening socket of a TCP rule, else -1 */
    int poll_idx;  /* its index in the poll array this iteration, else -1 */
} NetstackForward;

typedef struct {
    char *address;
    char *mac;
} NetstackLease;

typedef void (*NetstackOutputFunc)(const guint8 *frame, size_t len, void *opaque);

typedef struct HelperNetstack HelperNetstack;

HelperNetstack *netstack_new(const HelperConfig *cfg, NetstackOutputFunc output, void *opaque,
                             GError **error);
void netstack_free(HelperNetstack *ns);

void netstack_input(HelperNetstack *ns, const guint8 *frame, size_t len);
const PrefilterStats *netstack_prefilter_stats(const HelperNetstack *ns);
void netstack_add_pollfds(HelperNetstack *ns, GArray *pollfds, guint32 *timeout_ms);
void netstack_dispatch(HelperNetstack *ns, GArray *pollfds, bool poll_failed);
gint64 netstack_next_deadline_ms(const HelperNetstack *ns);
void netstack_run_timers(HelperNetstack *ns);
gint64 netstack_now_ms(void);

bool netstack_is_waiting(const HelperNetstack *ns);
void netstack_set_waiting(HelperNetstack *ns, bool waiting);
bool netstack_seen_traffic(const HelperNetstack *ns);

guint netstack_add_forward(HelperNetstack *ns, const HostForward *fwd, GError **error);
bool netstack_remove_forward(HelperNetstack *ns, guint id, GError **error);
const GArray *netstack_forwards(const HelperNetstack *ns);

GBytes *netstack_save_state(HelperNetstack *ns, size_t max_len, GError **error);
bool netstack_load_state(HelperNetstack *ns, int version, const guint8 *data, size_t len,
                         GError **error);

char *netstack_connection_info(HelperNetstack *ns);
void netstack_count_connections(HelperNetstack *ns, guint *tcp, guint *udp);
GPtrArray *netstack_leases(HelperNetstack *ns);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperNetstack, netstack_free)
