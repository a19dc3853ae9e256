/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* placeholder until D-Bus lands */
#include "dbus.h"

struct HelperBus {
    int unused;
};

HelperBus *dbus_connect(const HelperConfig *cfg, HelperNetstack *ns, HelperTransport *transport,
                        GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "D-Bus is not implemented yet");
    return NULL;
}

void dbus_free(HelperBus *bus)
{
    g_free(bus);
}
