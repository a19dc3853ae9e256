/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbus.h - the helper's bus connection, objects and names
 *
 * dbus_connect(), dbus_free() and dbus_keep_pool_thread() are the entry
 * points of the D-Bus module: dbusmodule.c looks them up by these names and
 * calls them through pointers of the same types, so change both together.
 */
#pragma once

#include <gio/gio.h>

#include "netstack.h"
#include "options.h"
#include "transport.h"

typedef struct HelperBus HelperBus;

HelperBus *dbus_connect(const HelperConfig *cfg, HelperNetstack *ns, HelperTransport *transport,
                        int stop_fd, GError **error);
void dbus_free(HelperBus *bus);
void dbus_keep_pool_thread(void);
const char *dbus_error_name(const GError *error);
void dbus_return_error(GDBusMethodInvocation *inv, const GError *error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperBus, dbus_free)
