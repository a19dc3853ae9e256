/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * main.c - slirp-helper: start-up order only
 *
 * The order matters and is the same on every start:
 *
 *   1. options      parse and validate; print-and-exit actions
 *   2. log          stderr for now (libvirt quotes it on failure)
 *   2a. sandbox     sandbox_pin_inherited(): before anything is opened,
 *                   placeholders below the inherited descriptors, so all
 *                   the helper opens is numbered above them (seccomp lets
 *                   it write only there: never to libvirt's pid file)
 *   2b. dbus        with --dbus-address only: load the D-Bus module
 *                   (dbusmodule.c) while its file is still visible, before
 *                   sandbox_isolate() and seccomp; without it, GIO is never
 *                   mapped
 *   3. transport    check --fd or bind --socket-path
 *   4. loop         block termination signals (before any thread exists)
 *   5. netstack     libslirp, guest forwards, host forward listeners
 *   6a. log         open the final log target (file or syslog socket)
 *   6b. sandbox     sandbox_isolate(): namespaces, empty root, descriptor
 *                   limit, ids, capabilities, Landlock; needs a single
 *                   thread, so it runs before GDBus starts one; refuses to
 *                   go on below --require-confinement
 *   6. dbus         connect, export VMState1 and the control interface,
 *                   request the bus names
 *   7. sandbox      sandbox_enter(): limits, --runas user, seccomp; logs
 *                   "Confinement: LEVEL" (sandbox.c documents every stage)
 *   8. log          start-up complete: leave stderr
 *   9. loop         run until SIGTERM/SIGINT/SIGHUP or QEMU goes away
 *
 * Exit status: 0 after a signal or when QEMU's end closes; 1 for any
 * start-up error, with one line on stderr naming the option and value.
 * The helper never forks and never closes descriptors it did not open
 * (libvirt's pid-file lock is inherited and must stay held).
 */
#include <signal.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>

#include "dbusmodule.h"
#include "helper-config.h"
#include "log.h"
#include "loop.h"
#include "netstack.h"
#include "options.h"
#include "sandbox.h"
#include "transport.h"

#ifdef HELPER_TEST_HOOKS
#include "testhooks.h"
#endif

/**
 * main_print_and_exit() - handle --print-capabilities, --help and --version
 * @cfg: the parsed options
 *
 * Return: true if one of them was given (and handled)
 */
static bool main_print_and_exit(const HelperConfig *cfg)
{
    if (cfg->print_capabilities) {
        g_autofree char *json = options_capabilities_json();

        fputs(json, stdout);
    } else if (cfg->show_help) {
        fputs(options_usage(), stdout);
    } else if (cfg->show_version) {
        printf("slirp-helper %s (libslirp %s)\n", HELPER_VERSION, slirp_version_string());
    } else {
        return false;
    }
    fflush(stdout);
    return true;
}

int main(int argc, char **argv)
{
    g_auto(HelperConfig) cfg = { 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(HelperTransport) transport = NULL;
    g_autoptr(HelperLoop) loop = NULL;
    g_autoptr(HelperNetstack) ns = NULL;
    g_autoptr(HelperBus) bus = NULL;
    int status;

    /* stderr may be a pipe nobody reads any more: never die of SIGPIPE */
    signal(SIGPIPE, SIG_IGN);

    options_init(&cfg);
    if (!options_parse(&cfg, argc, argv, &error)) {
        fprintf(stderr, "slirp-helper: %s\n", error->message);
        return 1;
    }
    if (main_print_and_exit(&cfg))
        return 0;

    log_init_early(cfg.debug);
    if (!sandbox_pin_inherited(&cfg, &error))
        goto fail;

    if (cfg.dbus_address && !dbusmodule_load(&error))
        goto fail;

    transport = cfg.socket_path ? transport_new_listen(cfg.socket_path, cfg.mtu, &error)
                                : transport_new_fd(cfg.fd, cfg.mtu, &error);
    if (!transport)
        goto fail;

    loop = loop_new(transport, &error);
    if (!loop)
        goto fail;

    ns = netstack_new(&cfg, loop_output_frame, loop, &error);
    if (!ns)
        goto fail;
    loop_attach_netstack(loop, ns);
    if (cfg.dbus_incoming)
        netstack_set_waiting(ns, true);

    if (!log_prepare(cfg.log_file, &error) || !sandbox_isolate(&cfg, &error))
        goto fail;

    if (cfg.dbus_address) {
        bus = dbusmodule_connect(&cfg, ns, transport, loop_signal_fd(loop), &error);
        if (!bus)
            goto fail;
    }

    if (!sandbox_enter(&cfg, &error))
        goto fail;

    log_info("Started: libslirp %s, %s socket, %s", slirp_version_string(),
             transport_kind_name(transport_kind(transport)),
             cfg.dbus_incoming ? "waiting for migration state" : "guest traffic enabled");
    if (!log_startup_complete(cfg.log_file, &error))
        goto fail;
#ifdef HELPER_TEST_HOOKS
    testhooks_run();
#endif

    status = loop_run(loop);
    log_info("Exiting with status %d", status);
    return status;

fail:
    /* a signal that ended a wait (for the bus) is a stop, not a failure */
    if (loop && loop_signal_pending(loop)) {
        log_info("Received a signal during start-up; exiting");
        return 0;
    }
    log_error("%s", error->message);
    return 1;
}
