/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * control.h - org.libvirt_slirp.Helper1 (forwards, statistics) and the
 * org.freedesktop.Slirp1.Helper compatibility object
 */
#pragma once

#include <gio/gio.h>

#include "netstack.h"
#include "options.h"
#include "transport.h"

typedef struct HelperControl HelperControl;

HelperControl *control_export(GDBusConnection *conn, const HelperConfig *cfg, HelperNetstack *ns,
                              HelperTransport *transport, GError **error);
void control_free(HelperControl *ctl);
char *control_bus_name(const char *dbus_id);
bool control_caller_allowed(guint32 uid, gint64 control_uid);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperControl, control_free)
