/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbus.c - the helper's bus connection, objects and names
 *
 * Theory of operation: with --dbus-address the helper connects to libvirt's
 * per-VM bus during start-up (so a bad address fails the start, with the
 * reason on stderr), exports its objects, and only then requests its names,
 * so that nobody who sees a name can find its objects missing:
 *
 *   org.qemu.VMState1             queued (no DO_NOT_QUEUE): QEMU walks the
 *                                 queue of this name to find every helper
 *   org.libvirt_slirp.Helper1.ID  this helper's control name (control.c)
 *   org.freedesktop.Slirp1_PID    what Debian's libslirp-helper owns
 *
 * GDBus does its socket I/O in its worker thread but calls our handlers in
 * the default main context, which loop.c iterates; so handlers run in the
 * main thread between poll iterations.
 *
 * Start-up never blocks in GDBus: the connection, its authentication and
 * the name requests are asynchronous, and dbus_wait() iterates the main
 * context until they finish, also watching the termination signals'
 * signalfd (loop.c).  A bus that accepts the connection but never answers
 * would otherwise hold the helper for GDBus's 25 s timeout with SIGTERM
 * blocked; now a signal ends the wait at once, and main.c exits 0.
 *
 * Losing the bus does not stop the
 * network: it is logged once, migration becomes impossible, and guest
 * traffic held for a Load (--dbus-incoming) goes on with fresh state.
 */
#include "dbus.h"

#include <glib-unix.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "vmstate.h"

struct HelperBus {
    GDBusConnection *conn;
    HelperVmstate *vmstate;
    HelperControl *control;
    HelperNetstack *ns; /* for dbus_on_closed() */
};

static const char *const dbus_error_names[] = {
    [NETSTACK_ERROR_FAILED] = "org.libvirt_slirp.Helper1.Error.Failed",
    [NETSTACK_ERROR_INVALID_SPEC] = "org.libvirt_slirp.Helper1.Error.InvalidSpec",
    [NETSTACK_ERROR_BAD_ADDRESS] = "org.libvirt_slirp.Helper1.Error.BadAddress",
    [NETSTACK_ERROR_PORT_IN_USE] = "org.libvirt_slirp.Helper1.Error.PortInUse",
    [NETSTACK_ERROR_NO_SUCH_RULE] = "org.libvirt_slirp.Helper1.Error.NoSuchRule",
    [NETSTACK_ERROR_BAD_STATE] = "org.libvirt_slirp.Helper1.Error.BadState",
    [NETSTACK_ERROR_NOT_ALLOWED] = "org.libvirt_slirp.Helper1.Error.NotAllowed",
};
G_STATIC_ASSERT(G_N_ELEMENTS(dbus_error_names) == NETSTACK_ERROR_LAST);

/* How long to keep trying a bus that refuses connections (see dbus_open_connection()) */
#define DBUS_CONNECT_PATIENCE_US (2 * G_USEC_PER_SEC)
/* Pause between those attempts */
#define DBUS_CONNECT_RETRY_MS 20
/* How long a name request may take */
#define DBUS_REQUEST_TIMEOUT_MS 5000

/* One asynchronous start-up step that dbus_wait() waits for: the callback
 * and the waiter each hold a reference, so a step abandoned on a signal
 * can still complete later without touching freed memory. */
typedef struct {
    gint refs;
    GAsyncResult *result; /* set by dbus_step_done() */
    bool timed_out;       /* a pause (no operation) has ended */
} DbusStep;

static DbusStep *dbus_step_new(void)
{
    DbusStep *step = g_new0(DbusStep, 1);

    step->refs = 2;
    return step;
}

static void dbus_step_unref(DbusStep *step)
{
    if (--step->refs > 0)
        return;
    g_clear_object(&step->result);
    g_free(step);
}

/* implements GAsyncReadyCallback: keep the result for the waiter */
static void dbus_step_done(GObject *source, GAsyncResult *res, gpointer data)
{
    DbusStep *step = data;

    step->result = g_object_ref(res);
    dbus_step_unref(step);
}

/* implements GSourceFunc: a pause between connection attempts is over */
static gboolean dbus_step_pause_over(gpointer data)
{
    DbusStep *step = data;

    step->timed_out = true;
    dbus_step_unref(step);
    return G_SOURCE_REMOVE;
}

/* implements GUnixFDSourceFunc: a termination signal is waiting */
static gboolean dbus_on_stop_fd(gint fd, GIOCondition cond, gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

/**
 * dbus_wait() - iterate the main context until a start-up step is done
 * @step: the step; its waiter's reference is dropped here
 * @stop_fd: the signalfd of the termination signals (loop_signal_fd())
 * @cancel: cancelled when a signal ends the wait
 * @error: G_IO_ERROR_CANCELLED if a termination signal arrived
 *
 * The signal is left unread on @stop_fd for main.c to see.
 *
 * Return: the step's result (owned by the caller), or NULL after a signal
 * or when the step was a pause that is over
 */
static GAsyncResult *dbus_wait(DbusStep *step, int stop_fd, GCancellable *cancel, GError **error)
{
    bool stopped = false;
    guint stop_source = g_unix_fd_add(stop_fd, G_IO_IN, dbus_on_stop_fd, &stopped);
    GAsyncResult *result = NULL;

    while (!step->result && !step->timed_out && !stopped)
        g_main_context_iteration(NULL, TRUE);
    if (!stopped)
        g_source_remove(stop_source);
    if (step->result) {
        result = g_steal_pointer(&step->result);
    } else if (stopped) {
        g_cancellable_cancel(cancel);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                    "Stopped by a signal while connecting to the bus");
    }
    dbus_step_unref(step);
    return result;
}

/**
 * dbus_open_connection() - connect to the per-VM bus, riding out its start-up
 * @address: the --dbus-address value
 * @stop_fd: the signalfd of the termination signals
 * @cancel: for the pending operation, cancelled on a signal
 * @error: set on failure (G_IO_ERROR_CANCELLED after a signal)
 *
 * libvirt 9.0.0 starts the bus daemon and then this helper as soon as the
 * daemon's socket file exists, which happens when it binds, a moment before
 * it listens: a connection in between is refused (the fork waits until the
 * bus accepts a connection; other managers may not).  Such refusals (and a
 * socket file not there yet) are retried for a short while; any other
 * failure is final.  A bus that died stays refused, and the error then
 * names it.
 *
 * Return: the connection, or NULL
 */
static GDBusConnection *dbus_open_connection(const char *address, int stop_fd,
                                             GCancellable *cancel, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + DBUS_CONNECT_PATIENCE_US;

    for (;;) {
        g_autoptr(GError) local = NULL;
        DbusStep *step = dbus_step_new();
        g_autoptr(GAsyncResult) res = NULL;
        GDBusConnection *conn;

        g_dbus_connection_new_for_address(address,
                                          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                              G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                          NULL, cancel, dbus_step_done, step);
        res = dbus_wait(step, stop_fd, cancel, error);
        if (!res)
            return NULL;
        conn = g_dbus_connection_new_for_address_finish(res, &local);
        if (conn)
            return conn;
        if (!(g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
              g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) ||
            g_get_monotonic_time() >= deadline) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_clear_error(&local);
        step = dbus_step_new();
        g_timeout_add(DBUS_CONNECT_RETRY_MS, dbus_step_pause_over, step);
        dbus_wait(step, stop_fd, cancel, &local);
        if (local) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
    }
}

/**
 * dbus_error_name() - the D-Bus error name for a helper error
 * @error: the error
 *
 * Return: a static name; ...Error.Failed for errors outside NETSTACK_ERROR
 */
const char *dbus_error_name(const GError *error)
{
    if (error->domain == NETSTACK_ERROR && error->code >= 0 && error->code < NETSTACK_ERROR_LAST)
        return dbus_error_names[error->code];
    return dbus_error_names[NETSTACK_ERROR_FAILED];
}

/**
 * dbus_return_error() - reply to a call with a named error and its message
 * @inv: the call; consumed
 * @error: the error
 */
void dbus_return_error(GDBusMethodInvocation *inv, const GError *error)
{
    g_dbus_method_invocation_return_dbus_error(inv, dbus_error_name(error), error->message);
}

/**
 * dbus_request_name() - ask the bus for a name
 * @conn: the connection
 * @name: the name
 * @flags: RequestName flags (0: queue)
 * @stop_fd: the signalfd of the termination signals
 * @cancel: for the pending call, cancelled on a signal
 * @error: set if the call fails or the name cannot be had
 *         (G_IO_ERROR_CANCELLED after a signal)
 *
 * Return: true if we own the name or are queued for it
 */
static bool dbus_request_name(GDBusConnection *conn, const char *name, guint32 flags,
                              int stop_fd, GCancellable *cancel, GError **error)
{
    DbusStep *step = dbus_step_new();
    g_autoptr(GAsyncResult) res = NULL;
    g_autoptr(GVariant) reply = NULL;
    guint32 result;

    g_dbus_connection_call(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "RequestName",
                           g_variant_new("(su)", name, flags), G_VARIANT_TYPE("(u)"),
                           G_DBUS_CALL_FLAGS_NONE, DBUS_REQUEST_TIMEOUT_MS, cancel, dbus_step_done,
                           step);
    res = dbus_wait(step, stop_fd, cancel, error);
    if (!res)
        return false;
    reply = g_dbus_connection_call_finish(conn, res, error);
    if (!reply) {
        g_prefix_error(error, "Cannot request the bus name '%s': ", name);
        return false;
    }
    g_variant_get(reply, "(u)", &result);
    if (result != 1 /* primary owner */ && result != 2 /* in queue */ &&
        result != 4 /* already owner */) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "The bus name '%s' is already taken",
                    name);
        return false;
    }
    return true;
}

/**
 * dbus_on_closed() - the bus connection is gone (GDBusConnection::closed)
 * @conn: the connection
 * @remote_peer_vanished: whether the bus went away (rather than we closed)
 * @error: why, or NULL
 * @data: the netstack
 *
 * Emitted once, in the main loop's thread.  No Load can arrive any more, so
 * guest traffic held for one is released now, with fresh state: stock
 * libvirt's per-VM dbus-daemon can die (SIGPIPE) while QEMU lives on, and
 * the guest must keep its network.
 */
static void dbus_on_closed(GDBusConnection *conn, gboolean remote_peer_vanished, GError *error,
                           gpointer data)
{
    HelperNetstack *ns = data;
    bool waiting = netstack_is_waiting(ns);

    netstack_set_waiting(ns, false);
    log_warn("Lost the D-Bus connection%s%s; networking continues%s, migration will fail",
             error ? ": " : "", error ? error->message : "",
             waiting ? " with fresh state (no migration state was loaded)" : "");
}

/**
 * dbus_connect() - connect to --dbus-address and export the helper's objects
 * @cfg: the configuration; must outlive the bus
 * @ns: the netstack; must outlive the bus
 * @transport: the QEMU socket, for statistics; must outlive the bus
 * @stop_fd: the signalfd of the termination signals (loop_signal_fd()): a
 *           signal stops the wait for the bus, left unread for main.c
 * @error: set on failure, naming --dbus-address or --dbus-id
 *
 * Return: the bus, or NULL
 */
HelperBus *dbus_connect(const HelperConfig *cfg, HelperNetstack *ns, HelperTransport *transport,
                        int stop_fd, GError **error)
{
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(HelperBus) bus = g_new0(HelperBus, 1);
    g_autofree char *control_name = control_bus_name(cfg->dbus_id);
    g_autofree char *compat_name = g_strdup_printf("org.freedesktop.Slirp1_%d", (int)getpid());
    g_autoptr(GError) local = NULL;

    bus->ns = ns;
    bus->conn = dbus_open_connection(cfg->dbus_address, stop_fd, cancel, &local);
    if (!bus->conn && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (!bus->conn) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "Cannot connect to --dbus-address '%s': %s", cfg->dbus_address, local->message);
        return NULL;
    }
    g_dbus_connection_set_exit_on_close(bus->conn, FALSE);
    g_signal_connect(bus->conn, "closed", G_CALLBACK(dbus_on_closed), ns);

    bus->vmstate = vmstate_export(bus->conn, cfg, ns, error);
    if (!bus->vmstate)
        return NULL;
    bus->control = control_export(bus->conn, cfg, ns, transport, error);
    if (!bus->control)
        return NULL;

    if (!dbus_request_name(bus->conn, "org.qemu.VMState1", 0, stop_fd, cancel, error))
        return NULL;
    if (!dbus_request_name(bus->conn, control_name, 4 /* DO_NOT_QUEUE */, stop_fd, cancel,
                           &local)) {
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "Invalid --dbus-id value '%s': another helper on the bus uses it (%s)",
                    cfg->dbus_id, local->message);
        return NULL;
    }
    if (!dbus_request_name(bus->conn, compat_name, 4 /* DO_NOT_QUEUE */, stop_fd, cancel,
                           &local)) {
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        log_warn("%s", local->message);
        g_clear_error(&local);
    }
    return g_steal_pointer(&bus);
}

/**
 * dbus_free() - unexport the objects and drop the connection
 * @bus: the bus, or NULL
 */
void dbus_free(HelperBus *bus)
{
    if (!bus)
        return;
    g_clear_pointer(&bus->control, control_free);
    g_clear_pointer(&bus->vmstate, vmstate_free);
    if (bus->conn) {
        /* No flush: g_dbus_connection_flush_sync() can wait forever for the
         * worker when the bus goes away at the same moment (seen when the
         * per-VM bus and QEMU die together), and the signal mask would then
         * leave only SIGKILL.  Nothing unsent matters once we exit. */
        g_signal_handlers_disconnect_by_func(bus->conn, dbus_on_closed, bus->ns);
        g_object_unref(bus->conn);
    }
    g_free(bus);
}

/* implements GTaskThreadFunc: nothing, the point is the thread */
static void dbus_pool_task(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    g_task_return_boolean(task, TRUE);
}

/**
 * dbus_keep_pool_thread() - start GLib's task thread now, and keep it
 *
 * Called by sandbox_enter() (stage 2) before the limits.  Once confined, no
 * thread can be created (RLIMIT_NPROC 0, seccomp).  GDBus still needs one
 * GLib pool thread when the connection is flushed at exit
 * (g_output_stream_flush_async runs in a thread); without it that flush
 * would wait forever.  So one task runs now, and idle pool threads are told
 * never to time out.
 */
void dbus_keep_pool_thread(void)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, NULL, NULL);

    g_thread_pool_set_max_idle_time(0);
    g_thread_pool_set_max_unused_threads(-1);
    g_task_run_in_thread_sync(task, dbus_pool_task);
}
