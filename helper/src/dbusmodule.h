/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbusmodule.h - the D-Bus module (slirp-helper-dbus.so), loaded on demand
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "netstack.h"
#include "options.h"
#include "transport.h"

/* the module's bus connection (dbus.c); opaque here */
typedef struct HelperBus HelperBus;

bool dbusmodule_load(GError **error);
HelperBus *dbusmodule_connect(const HelperConfig *cfg, HelperNetstack *ns,
                              HelperTransport *transport, int stop_fd, GError **error);
void dbusmodule_free(HelperBus *bus);
void dbusmodule_keep_pool_thread(void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperBus, dbusmodule_free)
