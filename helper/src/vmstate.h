/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmstate.h - org.qemu.VMState1: migration of the network state
 */
#pragma once

#include <gio/gio.h>
#include <stdbool.h>

#include "netstack.h"
#include "options.h"

/* QEMU's DBUS_VMSTATE_SIZE_LIMIT */
#define VMSTATE_SIZE_MAX (1024 * 1024)
#define VMSTATE_HEADER_LEN 4
/* libslirp state version 4 without guest-forward sockets: a 0 end marker,
 * ip_id (u16) and 16 BOOTP slots of 8 bytes */
#define VMSTATE_V4_PAYLOAD_LEN (1 + 2 + 16 * 8)

bool vmstate_envelope_open(const guint8 *blob, size_t len, guint32 version, const guint8 **payload,
                           size_t *payload_len, GError **error);
bool vmstate_load_allowed(bool loaded, bool seen_traffic, GError **error);
GBytes *vmstate_envelope_seal(guint32 version, GBytes *payload, GError **error);

typedef struct HelperVmstate HelperVmstate;

HelperVmstate *vmstate_export(GDBusConnection *conn, const HelperConfig *cfg, HelperNetstack *ns,
                              GError **error);
void vmstate_free(HelperVmstate *vm);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperVmstate, vmstate_free)
