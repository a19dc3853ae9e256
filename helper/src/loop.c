/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * loop.c - the one poll loop: GLib, libslirp, the QEMU socket and signals
 *
 * Theory of operation.  One thread does all the work, in one poll(2) per
 * iteration over four sets of descriptors:
 *
 *   1. a signalfd for SIGTERM, SIGINT and SIGHUP (blocked in loop_new(),
 *      before GDBus starts its worker thread, so every thread inherits the
 *      mask): any of them ends the loop with exit status 0;
 *   2. the QEMU socket (transport.c), read only while guest traffic is not
 *      held back for a migration Load (--dbus-incoming);
 *   3. libslirp's host sockets (slirp_pollfds_fill);
 *   4. the default GMainContext's descriptors, which carry D-Bus.
 *
 * The sleep is the shortest of: libslirp's wish (it starts at UINT32_MAX,
 * "forever", and libslirp lowers it to 2 ms or 499 ms while its TCP timers
 * run; starting from 0 would skip that entirely), GLib's, the next libslirp
 * timer (the router advertisement), and the next sock_diag peer check for a
 * datagram socket (every LOOP_PEER_CHECK_MS, so QEMU's death is seen within
 * about half a second even when idle).
 *
 * Frames for the guest that libslirp emitted during an iteration are queued
 * by transport.c and sent together by transport_flush() at the start of the
 * next, before the poll: one system call, and one wake-up of QEMU, per
 * iteration rather than per frame.
 *
 * Held guest traffic is released by a successful Load (vmstate.c), by the
 * loss of the bus (dbus.c), or here: QEMU calls Load during the incoming
 * migration, before the guest runs, so a guest frame waiting on the socket
 * means no Load is coming (stock libvirt after a daemon restart starts the
 * helper with --dbus-incoming but saved no state for it).  While held, the
 * socket is only watched (TRANSPORT_INPUT_WATCH) until a frame waits; then,
 * LOOP_INCOMING_GRACE_MS later, the loop goes on with fresh state, logged
 * once.  Measuring from the first frame rather than from start-up leaves a
 * long restore (gigabytes of RAM read from disk) all the time it needs.
 *
 * After poll, libslirp and the QEMU socket are served before GLib dispatch,
 * so that the poll results are used before a D-Bus handler changes the
 * stack (netstack.c also ignores results that belong to an instance that
 * is no longer the running one).
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "autofd.h"
#include "log.h"

struct HelperLoop {
    GMainContext *ctx;
    HelperTransport *transport;
    HelperNetstack *ns;
    GArray *pollfds;
    int signal_fd;
    bool quit;
    int exit_code;
    gint64 next_peer_check;
    gint64 held_frame_ms; /* when a guest frame was first seen held, 0: not yet */
};

/**
 * loop_new() - block termination signals and prepare the loop
 * @transport: the QEMU socket; must outlive the loop
 * @error: set if the signalfd cannot be created
 *
 * Return: the loop, or NULL
 */
HelperLoop *loop_new(HelperTransport *transport, GError **error)
{
    HelperLoop *loop;
    sigset_t mask;
    int fd;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "Cannot set up signal handling: %s", g_strerror(errno));
        return NULL;
    }

    loop = g_new0(HelperLoop, 1);
    loop->ctx = g_main_context_ref(g_main_context_default());
    loop->transport = transport;
    loop->pollfds = g_array_sized_new(FALSE, TRUE, sizeof(GPollFD), 32);
    loop->signal_fd = fd;
    return loop;
}

/**
 * loop_attach_netstack() - give the loop the stack it drives
 * @loop: the loop
 * @ns: the netstack; must outlive the loop
 */
void loop_attach_netstack(HelperLoop *loop, HelperNetstack *ns)
{
    loop->ns = ns;
}

/**
 * loop_signal_fd() - the signalfd of the termination signals
 * @loop: the loop
 *
 * For start-up code that waits (the D-Bus connection): it polls this
 * descriptor for input, without reading it, to stop waiting on a signal.
 *
 * Return: the descriptor, owned by @loop
 */
int loop_signal_fd(const HelperLoop *loop)
{
    return loop->signal_fd;
}

/**
 * loop_signal_pending() - whether a termination signal is waiting
 * @loop: the loop
 *
 * Return: true if SIGTERM, SIGINT or SIGHUP arrived and was not read yet
 */
bool loop_signal_pending(const HelperLoop *loop)
{
    GPollFD p = { .fd = loop->signal_fd, .events = G_IO_IN };

    return g_poll(&p, 1, 0) == 1 && (p.revents & G_IO_IN);
}

/**
 * loop_free() - release the loop
 * @loop: the loop, or NULL
 */
void loop_free(HelperLoop *loop)
{
    if (!loop)
        return;
    autofd_close(&loop->signal_fd);
    g_array_unref(loop->pollfds);
    g_main_context_unref(loop->ctx);
    g_free(loop);
}

/**
 * loop_output_frame() - netstack output: a frame for the guest
 * @frame: the frame
 * @len: its length
 * @opaque: the loop
 *
 * Ends the loop (status 0) when the send shows that QEMU is gone.
 */
void loop_output_frame(const guint8 *frame, size_t len, void *opaque)
{
    HelperLoop *loop = opaque;

    if (transport_send(loop->transport, frame, len) == TRANSPORT_PEER_GONE && !loop->quit) {
        log_info("QEMU closed its end of the socket; exiting");
        loop->quit = true;
    }
}

static void loop_input_frame(const guint8 *frame, size_t len, void *opaque)
{
    HelperLoop *loop = opaque;

    netstack_input(loop->ns, frame, len);
}

/**
 * loop_read_signals() - act on a readable signalfd
 * @loop: the loop
 */
static void loop_read_signals(HelperLoop *loop)
{
    struct signalfd_siginfo si;

    while (read(loop->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        log_info("Received signal %u; exiting", si.ssi_signo);
        loop->quit = true;
        loop->exit_code = 0;
    }
}

/**
 * loop_input_mode() - what to do with QEMU's socket this iteration
 * @loop: the loop
 *
 * Return: read frames unless traffic is held; while held, watch for the
 * guest's first frame, then stop watching
 */
static TransportInput loop_input_mode(const HelperLoop *loop)
{
    if (!netstack_is_waiting(loop->ns))
        return TRANSPORT_INPUT_READ;
    return loop->held_frame_ms ? TRANSPORT_INPUT_HOLD : TRANSPORT_INPUT_WATCH;
}

/**
 * loop_check_held_traffic() - release held guest traffic if no Load came
 * @loop: the loop
 * @now: netstack_now_ms()
 *
 * Return: the deadline at which held traffic will be released, or -1
 */
static gint64 loop_check_held_traffic(HelperLoop *loop, gint64 now)
{
    if (!netstack_is_waiting(loop->ns))
        return -1;
    if (!loop->held_frame_ms) {
        if (!transport_input_waiting(loop->transport))
            return -1;
        loop->held_frame_ms = now;
        log_debug("The guest sent a frame while migration state is awaited");
    }
    if (now < loop->held_frame_ms + LOOP_INCOMING_GRACE_MS)
        return loop->held_frame_ms + LOOP_INCOMING_GRACE_MS;
    log_warn("No migration state was loaded within %d ms of the guest's first frame; "
             "going on with fresh network state",
             LOOP_INCOMING_GRACE_MS);
    netstack_set_waiting(loop->ns, false);
    return -1;
}

static gint64 loop_min_timeout(gint64 a, gint64 b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return MIN(a, b);
}

/**
 * loop_iterate() - one poll and the work it reveals
 * @loop: the loop
 */
static void loop_iterate(HelperLoop *loop)
{
    GArray *fds = loop->pollfds;
    TransportInput input = loop_input_mode(loop);
    bool traffic = input == TRANSPORT_INPUT_READ;
    bool peer_checks = transport_wants_peer_checks(loop->transport);
    guint32 slirp_timeout = UINT32_MAX;
    gint glib_timeout = -1;
    gint max_priority = 0;
    gint64 timeout = -1;
    gint64 held_deadline;
    gint64 now;
    guint glib_start;
    gint glib_n = 0;
    gint glib_room = 8;
    int ret;

    if (transport_flush(loop->transport) == TRANSPORT_PEER_GONE && !loop->quit) {
        log_info("QEMU closed its end of the socket; exiting");
        loop->quit = true;
        return;
    }

    g_array_set_size(fds, 0);
    GPollFD sig = { .fd = loop->signal_fd, .events = G_IO_IN };
    g_array_append_val(fds, sig);
    transport_add_pollfds(loop->transport, fds, input);
    if (traffic)
        netstack_add_pollfds(loop->ns, fds, &slirp_timeout);

    g_main_context_prepare(loop->ctx, &max_priority);
    glib_start = fds->len;
    for (;;) {
        g_array_set_size(fds, glib_start + (guint)glib_room);
        glib_n = g_main_context_query(loop->ctx, max_priority, &glib_timeout,
                                      &g_array_index(fds, GPollFD, glib_start), glib_room);
        if (glib_n <= glib_room)
            break;
        glib_room = glib_n;
    }
    g_array_set_size(fds, glib_start + (guint)glib_n);

    now = netstack_now_ms();
    if (slirp_timeout != UINT32_MAX)
        timeout = slirp_timeout;
    timeout = loop_min_timeout(timeout, glib_timeout);
    if (traffic) {
        gint64 deadline = netstack_next_deadline_ms(loop->ns);

        if (deadline >= 0)
            timeout = loop_min_timeout(timeout, MAX(0, deadline - now));
    }
    held_deadline = loop_check_held_traffic(loop, now);
    if (held_deadline >= 0)
        timeout = loop_min_timeout(timeout, held_deadline - now);
    if (peer_checks) {
        if (loop->next_peer_check == 0)
            loop->next_peer_check = now + LOOP_PEER_CHECK_MS;
        timeout = loop_min_timeout(timeout, MAX(0, loop->next_peer_check - now));
    }

    ret = g_poll((GPollFD *)fds->data, fds->len, (gint)MIN(timeout, G_MAXINT));
    if (ret < 0 && errno != EINTR)
        log_warn("poll failed: %s", g_strerror(errno));

    g_main_context_check(loop->ctx, max_priority, &g_array_index(fds, GPollFD, glib_start), glib_n);

    if (g_array_index(fds, GPollFD, 0).revents & G_IO_IN)
        loop_read_signals(loop);

    if (transport_dispatch(loop->transport, fds, loop_input_frame, loop) == TRANSPORT_PEER_GONE &&
        !loop->quit) {
        log_info("QEMU closed its end of the socket; exiting");
        loop->quit = true;
    }
    if (traffic) {
        netstack_dispatch(loop->ns, fds, ret < 0);
        netstack_run_timers(loop->ns);
    }

    now = netstack_now_ms();
    loop_check_held_traffic(loop, now);
    if (peer_checks && now >= loop->next_peer_check) {
        loop->next_peer_check = now + LOOP_PEER_CHECK_MS;
        if (transport_check_peer(loop->transport) == TRANSPORT_PEER_GONE && !loop->quit) {
            log_info("QEMU's end of the socket is gone; exiting");
            loop->quit = true;
        }
    }

    g_main_context_dispatch(loop->ctx);
}

/**
 * loop_run() - run until a signal arrives or QEMU goes away
 * @loop: the loop, with a netstack attached
 *
 * Return: the process exit status (0 for both of those ends)
 */
int loop_run(HelperLoop *loop)
{
    if (!g_main_context_acquire(loop->ctx)) {
        log_error("Cannot acquire the main context");
        return 1;
    }
    while (!loop->quit)
        loop_iterate(loop);
    g_main_context_release(loop->ctx);
    return loop->exit_code;
}
