/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netstack.c - the libslirp instance: configuration, polling, timers,
 * forwards and migration state
 *
 * Theory of operation.  libslirp is driven, never threaded: the loop asks
 * netstack_add_pollfds() which host sockets libslirp wants watched and how
 * long it may sleep, polls, then calls netstack_dispatch() and
 * netstack_run_timers().  The SlirpConfig is version 4, so libslirp reports
 * its timers through timer_new_opaque(); they are kept here with absolute
 * deadlines on the monotonic clock (the same clock clock_get_ns returns) and
 * fired with slirp_handle_timer().
 *
 * A "NetstackInstance" wraps one Slirp.  There is normally one, but loading
 * migration state needs a second: libslirp 4.7 reads an empty or truncated
 * state as success and applies records as it reads them, so a bad blob
 * would leave a half-loaded stack.  netstack_load_state() therefore first
 * loads into a fresh probe instance (without host forwards) and checks that
 * libslirp succeeded and consumed exactly the bytes given; only then does it
 * load the same bytes into the running instance, as QEMU does with its own,
 * and frees the probe.  The running instance keeps its host-forward
 * listeners throughout: closing and binding them again would let a local
 * process take a port in between.  The callbacks get the instance, not the
 * Slirp, as their opaque pointer, so timers the probe creates die with it.
 *
 * Host forwards are kept in a table with ids so D-Bus callers can list and
 * remove them; libslirp itself has no way to enumerate them.
 *
 * TCP forward listeners are libslirp's sockets, and it listens with a
 * backlog of 1, so a forwarded service refused concurrent clients.
 * Neither libslirp 4.7 nor 4.8 can adopt a listening socket made by the
 * caller, so netstack_find_listener() finds libslirp's among the sockets it
 * asks to have polled (matching address, port and SO_ACCEPTCONN) and calls
 * listen() on it again with NETSTACK_LISTEN_BACKLOG, which Linux applies to
 * the listening socket as it is.  Knowing the listeners also stops a spin:
 * when libslirp's accept() fails for want of descriptors (EMFILE) the
 * connection stays queued and the listener stays readable, so every poll
 * would return at once.  After a readable listener, netstack_dispatch()
 * checks that a descriptor can still be had; if not, listeners are left
 * out of the poll for NETSTACK_ACCEPT_PAUSE_MS (logged once per episode),
 * and the queued clients wait in the backlog until descriptors are free.
 */
#include "netstack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns6.h"
#include "log.h"
#include "sandbox.h"

/*
 * The longest DHCPv6 reply or router advertisement dns6.c looks at: libslirp
 * builds both within a 1500-byte MTU (a reply carries at most a client id of
 * 256 bytes, one DNS server and a boot URL under 200 bytes)
 */
#define NETSTACK_ADVERT_MAX 1600

/* clang-format off: the quark name is stringified */
G_DEFINE_QUARK(slirp-helper-netstack-error-quark, netstack_error)
/* clang-format on */

typedef struct NetstackInstance NetstackInstance;

struct NetstackInstance {
    HelperNetstack *ns;
    Slirp *slirp;
};

typedef struct {
    NetstackInstance *inst;
    SlirpTimerId id;
    void *cb_opaque;
    gint64 expire_ms; /* -1: not armed */
} NetstackTimer;

struct HelperNetstack {
    const HelperConfig *cfg;
    NetstackOutputFunc output;
    void *output_opaque;
    NetstackInstance *inst;
    NetstackInstance *filled; /* instance whose fds are in the poll array */
    GPtrArray *timers;        /* of NetstackTimer, owned */
    GArray *forwards;         /* of NetstackForward */
    guint next_forward_id;
    bool waiting;
    bool seen_traffic;
    gint64 accept_paused_until; /* ms; listeners not polled before it */
    bool accept_pause_logged;   /* this episode of descriptor exhaustion */
    HelperPrefilter *prefilter; /* guest frames pass it before slirp_input */
    Dns6Upstream dns6;          /* whether --dns6 can be advertised (dns6.c) */
};

/**
 * netstack_now_ms() - the clock libslirp's timers run on
 *
 * Return: monotonic milliseconds
 */
gint64 netstack_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/**
 * netstack_dns6_answerable() - whether libslirp can answer DNS sent to --dns6
 * @ns: the netstack
 *
 * Return: false with --disable-dns or when the host's resolver list names
 *         no IPv6 server (dns6.c)
 */
static bool netstack_dns6_answerable(HelperNetstack *ns)
{
    return !ns->cfg->disable_dns && dns6_upstream_has_ipv6(&ns->dns6, netstack_now_ms());
}

/* implements SlirpCb.send_packet; see dns6.c for why adverts may be cut */
static ssize_t netstack_cb_send_packet(const void *buf, size_t len, void *opaque)
{
    NetstackInstance *inst = opaque;
    HelperNetstack *ns = inst->ns;
    guint8 copy[NETSTACK_ADVERT_MAX];

    if (len <= sizeof(copy) && dns6_is_advertisement(buf, len) &&
        !netstack_dns6_answerable(ns)) {
        memcpy(copy, buf, len);
        ns->output(copy, dns6_strip_advertisement(copy, len), ns->output_opaque);
        return (ssize_t)len;
    }
    ns->output(buf, len, ns->output_opaque);
    return (ssize_t)len;
}

/* implements SlirpCb.guest_error */
static void netstack_cb_guest_error(const char *msg, void *opaque)
{
    log_debug("Guest error: %s", msg);
}

/* implements SlirpCb.clock_get_ns */
static int64_t netstack_cb_clock_get_ns(void *opaque)
{
    return g_get_monotonic_time() * 1000;
}

/* implements SlirpCb.init_completed */
static void netstack_cb_init_completed(Slirp *slirp, void *opaque)
{
    NetstackInstance *inst = opaque;

    inst->slirp = slirp;
}

/* implements SlirpCb.timer_new_opaque */
static void *netstack_cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    NetstackInstance *inst = opaque;
    NetstackTimer *timer = g_new0(NetstackTimer, 1);

    timer->inst = inst;
    timer->id = id;
    timer->cb_opaque = cb_opaque;
    timer->expire_ms = -1;
    g_ptr_array_add(inst->ns->timers, timer);
    return timer;
}

/* implements SlirpCb.timer_free */
static void netstack_cb_timer_free(void *timer, void *opaque)
{
    NetstackInstance *inst = opaque;

    g_ptr_array_remove_fast(inst->ns->timers, timer);
}

/* implements SlirpCb.timer_mod; @expire_time is in ms on clock_get_ns's clock */
static void netstack_cb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
    ((NetstackTimer *)timer)->expire_ms = expire_time;
}

/* implements SlirpCb.register_poll_fd: every fd is polled each iteration anyway */
static void netstack_cb_register_poll_fd(int fd, void *opaque)
{
}

/* implements SlirpCb.unregister_poll_fd */
static void netstack_cb_unregister_poll_fd(int fd, void *opaque)
{
}

/* implements SlirpCb.notify: the loop re-polls libslirp every iteration */
static void netstack_cb_notify(void *opaque)
{
}

static const SlirpCb netstack_callbacks = {
    .send_packet = netstack_cb_send_packet,
    .guest_error = netstack_cb_guest_error,
    .clock_get_ns = netstack_cb_clock_get_ns,
    .timer_free = netstack_cb_timer_free,
    .timer_mod = netstack_cb_timer_mod,
    .register_poll_fd = netstack_cb_register_poll_fd,
    .unregister_poll_fd = netstack_cb_unregister_poll_fd,
    .notify = netstack_cb_notify,
    .init_completed = netstack_cb_init_completed,
    .timer_new_opaque = netstack_cb_timer_new_opaque,
};

/**
 * netstack_instance_free() - destroy a Slirp and every timer it left behind
 * @inst: the instance, or NULL
 */
static void netstack_instance_free(NetstackInstance *inst)
{
    HelperNetstack *ns;

    if (!inst)
        return;
    ns = inst->ns;
    if (inst->slirp)
        slirp_cleanup(inst->slirp);
    for (guint i = ns->timers->len; i > 0; i--) {
        NetstackTimer *timer = g_ptr_array_index(ns->timers, i - 1);

        if (timer->inst == inst)
            g_ptr_array_remove_index_fast(ns->timers, i - 1);
    }
    if (ns->filled == inst)
        ns->filled = NULL;
    g_free(inst);
}

/**
 * netstack_instance_new() - create a Slirp from the configuration, with the
 * guest forwards but without host forwards
 * @ns: the netstack
 * @error: set on failure
 *
 * Return: the instance, or NULL
 */
static NetstackInstance *netstack_instance_new(HelperNetstack *ns, GError **error)
{
    const HelperConfig *cfg = ns->cfg;
    NetstackInstance *inst = g_new0(NetstackInstance, 1);
    SlirpConfig sc = {
        .version = 4,
        .restricted = cfg->restricted,
        .in_enabled = cfg->ipv4,
        .vnetwork = cfg->net,
        .vnetmask = cfg->mask,
        .vhost = cfg->host,
        .in6_enabled = cfg->ipv6,
        .vprefix_addr6 = cfg->net6,
        .vprefix_len = (uint8_t)cfg->prefix6,
        .vhost6 = cfg->host6,
        .vhostname = cfg->hostname,
        .tftp_server_name = cfg->tftp_server_name,
        .tftp_path = cfg->tftp_dir,
        .bootfile = cfg->tftp_bootfile,
        .vdhcp_start = cfg->dhcp_start,
        .vnameserver = cfg->dns,
        .vnameserver6 = cfg->dns6,
        .vdnssearch = (const char **)cfg->dns_search,
        .vdomainname = cfg->domainname,
        .if_mtu = cfg->mtu,
        .if_mru = cfg->mtu,
        .disable_host_loopback = cfg->disable_host_loopback,
        .enable_emu = false,
        .disable_dns = cfg->disable_dns,
        .disable_dhcp = cfg->disable_dhcp,
    };

    inst->ns = ns;
    if (!slirp_new(&sc, &netstack_callbacks, inst) || !inst->slirp) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_FAILED,
                    "libslirp %s refused the network configuration", slirp_version_string());
        g_free(inst);
        return NULL;
    }

    for (guint i = 0; i < cfg->guestfwds->len; i++) {
        const GuestForward *gf = &g_array_index(cfg->guestfwds, GuestForward, i);
        struct in_addr addr = gf->addr;

        if (slirp_add_unix(inst->slirp, gf->unix_path, &addr, gf->port) < 0) {
            g_autofree char *spec = forward_format_guest(gf);

            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_ADDRESS,
                        "Invalid --guestfwd value '%s': the guest address and port are "
                        "outside the network or already taken",
                        spec);
            netstack_instance_free(inst);
            return NULL;
        }
    }
    return inst;
}

/**
 * netstack_guest_addr() - the libslirp guest address of a forward
 * @fwd: the forward
 * @out: receives the address
 * @out_len: receives its length
 */
static void netstack_guest_addr(const HostForward *fwd, struct sockaddr_storage *out,
                                socklen_t *out_len)
{
    if (fwd->guest.ss_family != AF_UNSPEC) {
        *out = fwd->guest;
        *out_len = fwd->guest_len;
        return;
    }
    /* an empty guest address is of the host address's family */
    memset(out, 0, sizeof(*out));
    if (fwd->host.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;

        sin->sin_family = AF_INET; /* 0.0.0.0: libslirp uses the first lease */
        sin->sin_port = ((const struct sockaddr_in *)&fwd->guest)->sin_port;
        *out_len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

        sin6->sin6_family = AF_INET6; /* ::, resolved by libslirp on use */
        sin6->sin6_port = ((const struct sockaddr_in *)&fwd->guest)->sin_port;
        *out_len = sizeof(*sin6);
    }
}

/**
 * netstack_check_guest_addr() - refuse guest addresses outside the network
 * @ns: the netstack
 * @fwd: the forward
 * @error: NETSTACK_ERROR_BAD_ADDRESS on failure
 *
 * Return: true if the guest side can be reached
 */
static bool netstack_check_guest_addr(const HelperNetstack *ns, const HostForward *fwd,
                                      GError **error)
{
    const HelperConfig *cfg = ns->cfg;
    g_autofree char *addr = forward_addr_string((const struct sockaddr *)&fwd->guest);

    if (fwd->guest.ss_family == AF_INET) {
        guint32 a = ((const struct sockaddr_in *)&fwd->guest)->sin_addr.s_addr;

        if (!cfg->ipv4) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_ADDRESS,
                        "Guest address '%s' is IPv4 but IPv4 is disabled", addr);
            return false;
        }
        if (a != 0 && ((a & cfg->mask.s_addr) != cfg->net.s_addr || a == cfg->host.s_addr ||
                       a == cfg->dns.s_addr)) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_ADDRESS,
                        "Guest address '%s' is not a guest address of the network", addr);
            return false;
        }
    } else if (fwd->guest.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&fwd->guest)->sin6_addr;

        if (!cfg->ipv6) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_ADDRESS,
                        "Guest address '%s' is IPv6 but IPv6 is disabled", addr);
            return false;
        }
        if (!IN6_IS_ADDR_UNSPECIFIED(a) &&
            (!options_in6_in_prefix(a, &cfg->net6, cfg->prefix6) ||
             memcmp(a, &cfg->host6, sizeof(*a)) == 0 || memcmp(a, &cfg->dns6, sizeof(*a)) == 0)) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_ADDRESS,
                        "Guest address '%s' is not a guest address of the prefix", addr);
            return false;
        }
    }
    return true;
}

/**
 * netstack_listen_forward() - make libslirp listen for one host forward
 * @ns: the netstack
 * @fwd: the forward
 * @error: PORT_IN_USE, BAD_ADDRESS or FAILED, saying which socket
 *
 * Return: true on success
 */
static bool netstack_listen_forward(HelperNetstack *ns, const HostForward *fwd, GError **error)
{
    struct sockaddr_storage guest;
    socklen_t guest_len;
    int flags = fwd->proto == FORWARD_UDP ? SLIRP_HOSTFWD_UDP : 0;
    int err;

    netstack_guest_addr(fwd, &guest, &guest_len);
    errno = 0;
    if (slirp_add_hostxfwd(ns->inst->slirp, (const struct sockaddr *)&fwd->host, fwd->host_len,
                           (const struct sockaddr *)&guest, guest_len, flags) == 0)
        return true;

    err = errno;
    switch (err) {
    case EADDRINUSE:
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_PORT_IN_USE,
                    "the host port is already in use");
        break;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_ADDRESS,
                    "the host address is not available here (%s)", g_strerror(err));
        break;
    case EACCES:
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED,
                    "not allowed to listen on the host port (%s)", g_strerror(err));
        break;
    default:
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_FAILED, "libslirp could not listen (%s)",
                    err ? g_strerror(err) : "unknown reason");
        break;
    }
    return false;
}

/**
 * netstack_new() - create the network stack for one NIC
 * @cfg: the configuration; must outlive the netstack
 * @output: called with every frame for the guest
 * @opaque: for @output
 * @error: set on failure, naming the option at fault when there is one
 *
 * Creates the Slirp, the guest forwards and the host forwards (so host
 * ports are bound here, during privileged start-up).
 *
 * Return: the netstack, or NULL
 */
HelperNetstack *netstack_new(const HelperConfig *cfg, NetstackOutputFunc output, void *opaque,
                             GError **error)
{
    g_autoptr(HelperNetstack) ns = g_new0(HelperNetstack, 1);

    ns->cfg = cfg;
    ns->output = output;
    ns->output_opaque = opaque;
    ns->timers = g_ptr_array_new_with_free_func(g_free);
    ns->forwards = g_array_new(FALSE, TRUE, sizeof(NetstackForward));
    ns->next_forward_id = 1;
    ns->prefilter = prefilter_new(cfg, sandbox_flow_allowed);

    if (cfg->tftp_dir && !g_file_test(cfg->tftp_dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_FAILED,
                    "Invalid --tftp value '%s': not a directory", cfg->tftp_dir);
        return NULL;
    }

    ns->inst = netstack_instance_new(ns, error);
    if (!ns->inst)
        return NULL;

    for (guint i = 0; i < cfg->hostfwds->len; i++) {
        g_autoptr(GError) local = NULL;
        const HostForward *fwd = &g_array_index(cfg->hostfwds, HostForward, i);

        if (netstack_add_forward(ns, fwd, &local) == 0) {
            g_autofree char *spec = forward_format_host(fwd);

            g_set_error(error, NETSTACK_ERROR, local->code, "Invalid --hostfwd value '%s': %s",
                        spec, local->message);
            return NULL;
        }
    }
    return g_steal_pointer(&ns);
}

/**
 * netstack_free() - destroy the network stack
 * @ns: the netstack, or NULL
 */
void netstack_free(HelperNetstack *ns)
{
    if (!ns)
        return;
    netstack_instance_free(ns->inst);
    g_ptr_array_unref(ns->timers);
    g_array_unref(ns->forwards);
    if (ns->prefilter) {
        if (ns->seen_traffic)
            prefilter_log_stats(ns->prefilter);
        prefilter_free(ns->prefilter);
    }
    g_free(ns);
}

/**
 * netstack_input() - give libslirp one frame from the guest
 * @ns: the netstack
 * @frame: a frame that passed frame_check(); prefilter.c decides whether
 *         libslirp sees it
 * @len: its length
 */
void netstack_input(HelperNetstack *ns, const guint8 *frame, size_t len)
{
    const guint8 *checked = prefilter_apply(ns->prefilter, frame, len);

    ns->seen_traffic = true;
    if (checked)
        slirp_input(ns->inst->slirp, checked, (int)len);
}

/**
 * netstack_prefilter_stats() - what the frame pre-filter passed and dropped
 * @ns: the netstack
 *
 * Return: the counters, owned by @ns
 */
const PrefilterStats *netstack_prefilter_stats(const HelperNetstack *ns)
{
    return prefilter_stats(ns->prefilter);
}

typedef struct {
    HelperNetstack *ns; /* NULL: no listener bookkeeping (netstack_find_listener()) */
    GArray *pollfds;
    bool accept_paused;
} NetstackPollCtx;

/**
 * netstack_forward_by_fd() - the TCP forward whose listener is @fd
 * @ns: the netstack
 * @fd: a descriptor libslirp polls
 *
 * Return: the rule, or NULL
 */
static NetstackForward *netstack_forward_by_fd(HelperNetstack *ns, int fd)
{
    for (guint i = 0; i < ns->forwards->len; i++) {
        NetstackForward *e = &g_array_index(ns->forwards, NetstackForward, i);

        if (e->listen_fd == fd)
            return e;
    }
    return NULL;
}

/* implements SlirpAddPollCb */
static int netstack_add_poll_cb(int fd, int events, void *opaque)
{
    NetstackPollCtx *ctx = opaque;
    GArray *pollfds = ctx->pollfds;
    NetstackForward *listener = ctx->ns ? netstack_forward_by_fd(ctx->ns, fd) : NULL;
    GPollFD p = { .fd = fd, .events = 0 };

    if (listener) {
        listener->poll_idx = -1;
        if (ctx->accept_paused)
            return -1; /* not polled: libslirp sees no events */
        listener->poll_idx = (int)pollfds->len;
    }

    if (events & SLIRP_POLL_IN)
        p.events |= G_IO_IN;
    if (events & SLIRP_POLL_OUT)
        p.events |= G_IO_OUT;
    if (events & SLIRP_POLL_PRI)
        p.events |= G_IO_PRI;
    if (events & SLIRP_POLL_ERR)
        p.events |= G_IO_ERR;
    if (events & SLIRP_POLL_HUP)
        p.events |= G_IO_HUP;
    g_array_append_val(pollfds, p);
    return (int)pollfds->len - 1;
}

/* implements SlirpGetREventsCb */
static int netstack_get_revents_cb(int idx, void *opaque)
{
    GArray *pollfds = opaque;
    gushort revents;
    int events = 0;

    if (idx < 0 || (guint)idx >= pollfds->len)
        return 0;
    revents = g_array_index(pollfds, GPollFD, idx).revents;
    if (revents & G_IO_IN)
        events |= SLIRP_POLL_IN;
    if (revents & G_IO_OUT)
        events |= SLIRP_POLL_OUT;
    if (revents & G_IO_PRI)
        events |= SLIRP_POLL_PRI;
    if (revents & G_IO_ERR)
        events |= SLIRP_POLL_ERR;
    if (revents & G_IO_HUP)
        events |= SLIRP_POLL_HUP;
    return events;
}

/**
 * netstack_add_pollfds() - append libslirp's sockets to the poll array
 * @ns: the netstack
 * @pollfds: the loop's GArray of GPollFD
 * @timeout_ms: in: how long the loop means to sleep (UINT32_MAX: forever);
 *              out: lowered to what libslirp's TCP timers need
 */
void netstack_add_pollfds(HelperNetstack *ns, GArray *pollfds, guint32 *timeout_ms)
{
    NetstackPollCtx ctx = { ns, pollfds, netstack_now_ms() < ns->accept_paused_until };

    ns->filled = ns->inst;
    slirp_pollfds_fill(ns->inst->slirp, timeout_ms, netstack_add_poll_cb, &ctx);
}

/**
 * netstack_check_accepts() - pause the listeners if descriptors ran out
 * @ns: the netstack
 * @pollfds: the poll results libslirp has just acted on
 *
 * A listener that was readable and whose accept() failed for want of a
 * descriptor is readable again at once: see the top of the file.
 */
static void netstack_check_accepts(HelperNetstack *ns, const GArray *pollfds)
{
    for (guint i = 0; i < ns->forwards->len; i++) {
        NetstackForward *e = &g_array_index(ns->forwards, NetstackForward, i);

        if (e->listen_fd < 0 || e->poll_idx < 0 || (guint)e->poll_idx >= pollfds->len ||
            !(g_array_index(pollfds, GPollFD, e->poll_idx).revents & G_IO_IN))
            continue;
        if (sandbox_descriptor_free(e->listen_fd)) {
            ns->accept_pause_logged = false;
            continue;
        }
        ns->accept_paused_until = netstack_now_ms() + NETSTACK_ACCEPT_PAUSE_MS;
        if (!ns->accept_pause_logged)
            log_warn("Out of descriptors: host connections to forwards wait in the backlog "
                     "until some are free");
        ns->accept_pause_logged = true;
        return;
    }
}

/**
 * netstack_dispatch() - let libslirp act on the poll results
 * @ns: the netstack
 * @pollfds: the array filled by netstack_add_pollfds() after poll
 * @poll_failed: poll itself returned an error
 */
void netstack_dispatch(HelperNetstack *ns, GArray *pollfds, bool poll_failed)
{
    /* after a state load swapped instances, the indices belong to the old one */
    if (ns->filled != ns->inst)
        return;
    slirp_pollfds_poll(ns->inst->slirp, poll_failed, netstack_get_revents_cb, pollfds);
    ns->filled = NULL;
    netstack_check_accepts(ns, pollfds);
}

/**
 * netstack_next_deadline_ms() - earliest armed timer
 * @ns: the netstack
 *
 * Return: absolute deadline in netstack_now_ms() time, or -1 if none is armed
 */
gint64 netstack_next_deadline_ms(const HelperNetstack *ns)
{
    gint64 deadline = ns->accept_paused_until > netstack_now_ms() ? ns->accept_paused_until : -1;

    for (guint i = 0; i < ns->timers->len; i++) {
        const NetstackTimer *timer = g_ptr_array_index(ns->timers, i);

        if (timer->expire_ms >= 0 && (deadline < 0 || timer->expire_ms < deadline))
            deadline = timer->expire_ms;
    }
    return deadline;
}

/**
 * netstack_run_timers() - fire every timer whose deadline has passed
 * @ns: the netstack
 */
void netstack_run_timers(HelperNetstack *ns)
{
    gint64 now = netstack_now_ms();
    bool fired;

    do {
        fired = false;
        for (guint i = 0; i < ns->timers->len; i++) {
            NetstackTimer *timer = g_ptr_array_index(ns->timers, i);

            if (timer->expire_ms >= 0 && timer->expire_ms <= now && timer->inst == ns->inst) {
                timer->expire_ms = -1;
                /* the handler may re-arm, add or free timers: restart the scan */
                slirp_handle_timer(ns->inst->slirp, timer->id, timer->cb_opaque);
                fired = true;
                break;
            }
        }
    } while (fired);
}

/**
 * netstack_is_waiting() - whether guest traffic is held until a state Load
 * @ns: the netstack
 *
 * Return: true while waiting (--dbus-incoming)
 */
bool netstack_is_waiting(const HelperNetstack *ns)
{
    return ns->waiting;
}

/**
 * netstack_set_waiting() - hold or release guest traffic
 * @ns: the netstack
 * @waiting: true to hold
 */
void netstack_set_waiting(HelperNetstack *ns, bool waiting)
{
    ns->waiting = waiting;
}

/**
 * netstack_seen_traffic() - whether any guest frame reached libslirp
 * @ns: the netstack
 *
 * Return: true after the first frame
 */
bool netstack_seen_traffic(const HelperNetstack *ns)
{
    return ns->seen_traffic;
}

/**
 * netstack_same_address() - whether two socket addresses name the same
 * IPv4 or IPv6 address and port
 * @a: one
 * @b: the other
 *
 * Return: true if equal
 */
static bool netstack_same_address(const struct sockaddr_storage *a,
                                  const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/**
 * netstack_find_listener() - find libslirp's listening socket of a TCP rule
 * and give it a real backlog
 * @ns: the netstack
 * @fwd: a TCP forward libslirp has just started listening for
 *
 * See the top of the file.  A socket that cannot be found (a libslirp that
 * works differently) only loses the larger backlog and the accept pause.
 *
 * Return: the descriptor, or -1
 */
static int netstack_find_listener(HelperNetstack *ns, const HostForward *fwd)
{
    g_autoptr(GArray) fds = g_array_new(FALSE, TRUE, sizeof(GPollFD));
    NetstackPollCtx ctx = { NULL, fds, false };
    guint32 timeout = UINT32_MAX;

    slirp_pollfds_fill(ns->inst->slirp, &timeout, netstack_add_poll_cb, &ctx);
    ns->filled = NULL; /* the indices just handed out are not the loop's */
    for (guint i = 0; i < fds->len; i++) {
        int fd = g_array_index(fds, GPollFD, i).fd;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int listening = 0;
        socklen_t optlen = sizeof(listening);

        if (!(g_array_index(fds, GPollFD, i).events & G_IO_IN) ||
            getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
            !netstack_same_address(&ss, &fwd->host) ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
            continue;
        if (listen(fd, NETSTACK_LISTEN_BACKLOG) != 0)
            log_warn("Cannot raise the backlog of the listener for a forward: %s",
                     g_strerror(errno));
        return fd;
    }
    log_debug("No listening socket found for a host forward");
    return -1;
}

/**
 * netstack_add_forward() - forward a host port into the guest
 * @ns: the netstack
 * @fwd: the forward
 * @error: PORT_IN_USE (also for a duplicate rule), BAD_ADDRESS, NOT_ALLOWED
 *         (also beyond NETSTACK_FORWARDS_MAX rules) or FAILED; the message
 *         says why but does not repeat the spec
 *
 * Return: the new rule's id (never 0), or 0 on failure
 */
guint netstack_add_forward(HelperNetstack *ns, const HostForward *fwd, GError **error)
{
    NetstackForward entry = { 0 };

    if (ns->forwards->len >= NETSTACK_FORWARDS_MAX) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED,
                    "the helper already has %d forward rules, its limit", NETSTACK_FORWARDS_MAX);
        return 0;
    }
    for (guint i = 0; i < ns->forwards->len; i++) {
        if (forward_host_same_listener(&g_array_index(ns->forwards, NetstackForward, i).fwd, fwd)) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_PORT_IN_USE,
                        "the host port is already forwarded by rule %u",
                        g_array_index(ns->forwards, NetstackForward, i).id);
            return 0;
        }
    }
    if (!netstack_check_guest_addr(ns, fwd, error) || !netstack_listen_forward(ns, fwd, error))
        return 0;

    entry.id = ns->next_forward_id++;
    entry.fwd = *fwd;
    entry.listen_fd = fwd->proto == FORWARD_TCP ? netstack_find_listener(ns, fwd) : -1;
    entry.poll_idx = -1;
    g_array_append_val(ns->forwards, entry);
    return entry.id;
}

/**
 * netstack_remove_forward() - stop forwarding a host port
 * @ns: the netstack
 * @id: the rule id from netstack_add_forward() or netstack_forwards()
 * @error: NETSTACK_ERROR_NO_SUCH_RULE if @id is unknown
 *
 * Return: true on success
 */
bool netstack_remove_forward(HelperNetstack *ns, guint id, GError **error)
{
    for (guint i = 0; i < ns->forwards->len; i++) {
        NetstackForward *entry = &g_array_index(ns->forwards, NetstackForward, i);

        if (entry->id != id)
            continue;
        slirp_remove_hostxfwd(ns->inst->slirp, (const struct sockaddr *)&entry->fwd.host,
                              entry->fwd.host_len,
                              entry->fwd.proto == FORWARD_UDP ? SLIRP_HOSTFWD_UDP : 0);
        g_array_remove_index(ns->forwards, i);
        return true;
    }
    g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NO_SUCH_RULE, "No forward rule with id %u",
                id);
    return false;
}

/**
 * netstack_forwards() - the host forward rules in creation order
 * @ns: the netstack
 *
 * Return: GArray of NetstackForward, owned by @ns
 */
const GArray *netstack_forwards(const HelperNetstack *ns)
{
    return ns->forwards;
}

typedef struct {
    GByteArray *out;
    size_t max_len;
    bool overflow;
} NetstackSaveCtx;

/* implements SlirpWriteCb for slirp_state_save */
static ssize_t netstack_save_write_cb(const void *buf, size_t len, void *opaque)
{
    NetstackSaveCtx *ctx = opaque;

    if (ctx->out->len + len > ctx->max_len) {
        ctx->overflow = true;
        return (ssize_t)len;
    }
    g_byte_array_append(ctx->out, buf, (guint)len);
    return (ssize_t)len;
}

/**
 * netstack_save_state() - libslirp's migration stream for the current stack
 * @ns: the netstack
 * @max_len: largest acceptable stream
 * @error: set if the stream would be larger than @max_len
 *
 * Return: the stream (without any envelope), or NULL
 */
GBytes *netstack_save_state(HelperNetstack *ns, size_t max_len, GError **error)
{
    NetstackSaveCtx ctx = { g_byte_array_new(), max_len, false };

    slirp_state_save(ns->inst->slirp, netstack_save_write_cb, &ctx);
    if (ctx.overflow) {
        g_byte_array_unref(ctx.out);
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                    "The network state is larger than %zu bytes", max_len);
        return NULL;
    }
    return g_byte_array_free_to_bytes(ctx.out);
}

typedef struct {
    const guint8 *data;
    size_t len;
    size_t off;
    bool overrun;
} NetstackLoadCtx;

/* implements SlirpReadCb for slirp_state_load; flags reads past the end */
static ssize_t netstack_load_read_cb(void *buf, size_t len, void *opaque)
{
    NetstackLoadCtx *ctx = opaque;
    size_t n = MIN(len, ctx->len - ctx->off);

    memcpy(buf, ctx->data + ctx->off, n);
    ctx->off += n;
    if (n < len) {
        ctx->overrun = true;
        memset((guint8 *)buf + n, 0, len - n);
    }
    return (ssize_t)len;
}

/**
 * netstack_load_state() - replace the stack by one restored from @data
 * @ns: the netstack
 * @version: the state version from the envelope
 * @data: libslirp's migration stream
 * @len: its length
 * @error: NETSTACK_ERROR_BAD_STATE saying what is wrong
 *
 * Nothing changes unless libslirp accepts the whole stream and reads exactly
 * @len bytes (checked on a probe instance first).  Host forwards, and
 * their listening sockets, stay as they are.
 *
 * Return: true on success
 */
bool netstack_load_state(HelperNetstack *ns, int version, const guint8 *data, size_t len,
                         GError **error)
{
    NetstackLoadCtx ctx = { data, len, 0, false };
    NetstackInstance *probe = netstack_instance_new(ns, error);
    int ret;

    if (!probe)
        return false;
    ret = slirp_state_load(probe->slirp, version, netstack_load_read_cb, &ctx);
    netstack_instance_free(probe);
    if (ret < 0 || ctx.overrun || ctx.off != len) {
        if (ret < 0)
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                        "libslirp rejected the state: %s", g_strerror(-ret));
        else if (ctx.overrun)
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                        "The state is truncated (%zu bytes)", len);
        else
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                        "The state has %zu unexpected trailing bytes", len - ctx.off);
        return false;
    }

    /* the probe took it whole: the running stack takes the same bytes */
    ctx = (NetstackLoadCtx){ data, len, 0, false };
    ret = slirp_state_load(ns->inst->slirp, version, netstack_load_read_cb, &ctx);
    if (ret < 0 || ctx.overrun || ctx.off != len) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_FAILED,
                    "libslirp failed to load into the running stack a state it accepted "
                    "before (%s)",
                    ret < 0 ? g_strerror(-ret) : "read a different length");
        return false;
    }
    return true;
}

/**
 * netstack_connection_info() - libslirp's human-readable connection table
 * @ns: the netstack
 *
 * Return: newly allocated text
 */
char *netstack_connection_info(HelperNetstack *ns)
{
    char *info = slirp_connection_info(ns->inst->slirp);
    char *copy = g_strdup(info ? info : "");

    g_free(info); /* libslirp allocates it with GLib */
    return copy;
}

/**
 * netstack_count_connections() - NAT'd connections, forward listeners excluded
 * @ns: the netstack
 * @tcp: receives the number of TCP connections
 * @udp: receives the number of UDP flows
 */
void netstack_count_connections(HelperNetstack *ns, guint *tcp, guint *udp)
{
    g_autofree char *info = netstack_connection_info(ns);
    g_auto(GStrv) lines = g_strsplit(info, "\n", -1);

    *tcp = *udp = 0;
    for (char **l = lines; *l; l++) {
        const char *s = *l;

        while (*s == ' ')
            s++;
        if (strstr(s, "HOST_FORWARD"))
            continue;
        if (g_str_has_prefix(s, "TCP["))
            (*tcp)++;
        else if (g_str_has_prefix(s, "UDP["))
            (*udp)++;
    }
}

static void netstack_lease_free(NetstackLease *lease)
{
    g_free(lease->address);
    g_free(lease->mac);
    g_free(lease);
}

/**
 * netstack_leases() - the DHCP leases libslirp has handed out
 * @ns: the netstack
 *
 * libslirp has no lease API, but its state stream ends with its 16 BOOTP
 * client slots (16-bit big-endian "allocated", then the MAC); the slot
 * index gives the address counted from --dhcp-start.
 *
 * Return: GPtrArray of NetstackLease, owned by the caller
 */
GPtrArray *netstack_leases(HelperNetstack *ns)
{
    enum { SLOTS = 16, SLOT_LEN = 8 };
    GPtrArray *leases = g_ptr_array_new_with_free_func((GDestroyNotify)netstack_lease_free);
    g_autoptr(GBytes) state = netstack_save_state(ns, 1 << 20, NULL);
    const guint8 *p;
    gsize len;

    /* the slot layout is that of state version 4 (every libslirp 4.x) */
    if (!state || !ns->cfg->ipv4 || slirp_state_version() != 4)
        return leases;
    p = g_bytes_get_data(state, &len);
    if (len < SLOTS * SLOT_LEN)
        return leases;
    p += len - SLOTS * SLOT_LEN;
    for (int i = 0; i < SLOTS; i++, p += SLOT_LEN) {
        NetstackLease *lease;
        struct in_addr addr;
        char buf[INET_ADDRSTRLEN];

        if (((p[0] << 8) | p[1]) == 0)
            continue;
        addr.s_addr = htonl(ntohl(ns->cfg->dhcp_start.s_addr) + (guint32)i);
        inet_ntop(AF_INET, &addr, buf, sizeof(buf));
        lease = g_new0(NetstackLease, 1);
        lease->address = g_strdup(buf);
        lease->mac =
            g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", p[2], p[3], p[4], p[5], p[6], p[7]);
        g_ptr_array_add(leases, lease);
    }
    return leases;
}
