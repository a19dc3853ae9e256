/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbusmodule.c - find and load the D-Bus module, slirp-helper-dbus.so
 *
 * Theory of operation: the D-Bus code (dbus.c, vmstate.c, control.c) is the
 * only user of GIO.  Linked into the executable, GIO and the libraries it
 * pulls in would be mapped and relocated by the dynamic loader at every
 * exec, with or without --dbus-address, and libvirt execs the helper for
 * --print-capabilities before every NIC start (docs/design.md has the
 * numbers).  So that code is a module, opened here only for --dbus-address.
 *
 * main.c loads it right after parsing the options, while the host's file
 * system is still visible (sandbox_isolate() pivots into an empty root) and
 * long before seccomp.  The module is looked for in:
 *
 *   1. the directory of the running executable (/proc/self/exe): the build
 *      tree, where meson puts the module next to the binary.  Skipped when
 *      the kernel raised our privileges at exec (AT_SECURE), since whoever
 *      links the executable elsewhere would choose the code;
 *   2. HELPER_MODULE_DIR, where meson installs it (LIBDIR/slirp-helper).
 *
 * The first that exists is opened with RTLD_NOW (a missing symbol fails the
 * start now, not in the middle of a migration) and RTLD_LOCAL (GIO stays out
 * of the global namespace).  The module calls back into the executable for
 * the core functions listed in dbus-module.dynlist.  It is never unloaded:
 * GObject types cannot be unregistered.
 */
#include "dbusmodule.h"

#include <dlfcn.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "helper-config.h"

/* the module's entry points, exported by dbus.c under these names */
typedef HelperBus *(*DbusmoduleConnectFunc)(const HelperConfig *cfg, HelperNetstack *ns,
                                            HelperTransport *transport, int stop_fd,
                                            GError **error);
typedef void (*DbusmoduleFreeFunc)(HelperBus *bus);
typedef void (*DbusmoduleKeepPoolThreadFunc)(void);

static struct {
    void *handle;
    DbusmoduleConnectFunc connect;                 /* dbus_connect() */
    DbusmoduleFreeFunc free;                       /* dbus_free() */
    DbusmoduleKeepPoolThreadFunc keep_pool_thread; /* dbus_keep_pool_thread() */
} dbusmodule;

/**
 * dbusmodule_path() - where to load the module from (see the top of the file)
 *
 * Return: the first candidate that exists, else the installed path (whose
 * absence dlopen() then reports); free with g_free()
 */
static char *dbusmodule_path(void)
{
    g_autofree char *exe = getauxval(AT_SECURE) ? NULL : g_file_read_link("/proc/self/exe", NULL);

    if (exe) {
        g_autofree char *dir = g_path_get_dirname(exe);
        g_autofree char *path = g_build_filename(dir, HELPER_DBUS_MODULE, NULL);

        if (access(path, F_OK) == 0)
            return g_steal_pointer(&path);
    }
    return g_build_filename(HELPER_MODULE_DIR, HELPER_DBUS_MODULE, NULL);
}

/**
 * dbusmodule_load() - load the D-Bus module and look up its entry points
 * @error: set on failure, naming the module's path and dlerror()'s reason
 *
 * Must run before sandbox_isolate() (the module's file must be visible).
 * Loading twice is harmless.
 *
 * Return: true on success
 */
bool dbusmodule_load(GError **error)
{
    g_autofree char *path = NULL;
    void *handle;
    void *sym_connect;
    void *sym_free;
    void *sym_keep_pool_thread;

    if (dbusmodule.handle)
        return true;
    path = dbusmodule_path();
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle || !(sym_connect = dlsym(handle, "dbus_connect")) ||
        !(sym_free = dlsym(handle, "dbus_free")) ||
        !(sym_keep_pool_thread = dlsym(handle, "dbus_keep_pool_thread"))) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "Cannot load the D-Bus module '%s': %s", path, dlerror());
        return false;
    }
    dbusmodule.handle = handle;
    dbusmodule.connect = (DbusmoduleConnectFunc)sym_connect;
    dbusmodule.free = (DbusmoduleFreeFunc)sym_free;
    dbusmodule.keep_pool_thread = (DbusmoduleKeepPoolThreadFunc)sym_keep_pool_thread;
    return true;
}

/**
 * dbusmodule_connect() - dbus_connect(): connect to --dbus-address, export
 * the helper's objects, request its names
 * @cfg: the configuration; must outlive the bus
 * @ns: the netstack; must outlive the bus
 * @transport: the QEMU socket, for statistics; must outlive the bus
 * @stop_fd: the signalfd of the termination signals: a signal ends the wait
 *           for the bus (the call then fails, the signal left unread)
 * @error: set on failure, naming --dbus-address or --dbus-id
 *
 * Only after a successful dbusmodule_load().
 *
 * Return: the bus (free with dbusmodule_free()), or NULL
 */
HelperBus *dbusmodule_connect(const HelperConfig *cfg, HelperNetstack *ns,
                              HelperTransport *transport, int stop_fd, GError **error)
{
    g_return_val_if_fail(dbusmodule.handle, NULL);
    return dbusmodule.connect(cfg, ns, transport, stop_fd, error);
}

/**
 * dbusmodule_free() - dbus_free(): unexport the objects, drop the connection
 * @bus: from dbusmodule_connect(), or NULL
 */
void dbusmodule_free(HelperBus *bus)
{
    if (bus)
        dbusmodule.free(bus);
}

/**
 * dbusmodule_keep_pool_thread() - dbus_keep_pool_thread(): start the GLib
 * pool thread GDBus needs at exit, and keep it (sandbox.c, stage 2)
 *
 * Does nothing when the module is not loaded (no --dbus-address).
 */
void dbusmodule_keep_pool_thread(void)
{
    if (dbusmodule.handle)
        dbusmodule.keep_pool_thread();
}
