/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-dbus.c - the helper binary on a private bus (GTestDBus starts a real
 * dbus-daemon): VMState1 Save on one helper and Load into another started
 * with --dbus-incoming, rejection of corrupt blobs without any change,
 * the Load policy, control add/list/remove with named errors, statistics,
 * and state exchange with Debian's Rust libslirp-helper when installed.
 *
 * The helper path comes from $SLIRP_HELPER.
 */
#include <arpa/inet.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *helper_path;
static GTestDBus *test_bus;
static GDBusConnection *conn;

static const guint8 guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

typedef struct {
    GSubprocess *proc;
    int qemu_fd; /* our end of the socketpair: we play QEMU */
    char *id;
    char *name; /* unique bus name */
} Helper;

static char *name_owner(const char *name)
{
    g_autoptr(GVariant) r = g_dbus_connection_call_sync(
        conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "GetNameOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE,
        2000, NULL, NULL);
    char *owner = NULL;

    if (r)
        g_variant_get(r, "(s)", &owner);
    return owner;
}

/* Start a helper (ours, or another binary with the same options). */
static Helper *helper_start_with(const char *binary, const char *id, const char *extra)
{
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autofree char *wanted = NULL;
    Helper *h = g_new0(Helper, 1);
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    h->qemu_fd = sv[0];
    h->id = g_strdup(id);
    g_subprocess_launcher_take_fd(launcher, sv[1], 3);
    g_ptr_array_add(argv, g_strdup(binary));
    g_ptr_array_add(argv, g_strdup("--fd=3"));
    g_ptr_array_add(argv,
                    g_strdup_printf("--dbus-address=%s", g_test_dbus_get_bus_address(test_bus)));
    g_ptr_array_add(argv, g_strdup_printf("--dbus-id=%s", id));
    if (extra) {
        g_auto(GStrv) words = g_strsplit(extra, " ", -1);

        for (char **w = words; *w; w++)
            g_ptr_array_add(argv, g_strdup(*w));
    }
    g_ptr_array_add(argv, NULL);
    h->proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);

    /* ready once its objects answer on the bus: find it among the queue */
    for (int i = 0; i < 500 && !h->name; i++) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
            conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            "ListQueuedOwners", g_variant_new("(s)", "org.qemu.VMState1"), G_VARIANT_TYPE("(as)"),
            G_DBUS_CALL_FLAGS_NONE, 2000, NULL, NULL);
        g_autofree const char **owners = NULL;

        if (r) {
            g_autoptr(GVariant) list = g_variant_get_child_value(r, 0);

            owners = g_variant_get_strv(list, NULL);
            for (int j = 0; owners[j] && !h->name; j++) {
                g_autoptr(GVariant) v = g_dbus_connection_call_sync(
                    conn, owners[j], "/org/qemu/VMState1", "org.freedesktop.DBus.Properties", "Get",
                    g_variant_new("(ss)", "org.qemu.VMState1", "Id"), G_VARIANT_TYPE("(v)"),
                    G_DBUS_CALL_FLAGS_NONE, 2000, NULL, NULL);
                g_autoptr(GVariant) inner = NULL;

                if (!v)
                    continue;
                g_variant_get(v, "(v)", &inner);
                if (g_strcmp0(g_variant_get_string(inner, NULL), id) == 0)
                    h->name = g_strdup(owners[j]);
            }
        }
        if (!h->name)
            g_usleep(10000);
    }
    g_assert_nonnull(h->name);
    (void)wanted;
    return h;
}

static Helper *helper_start(const char *id, const char *extra)
{
    return helper_start_with(helper_path, id, extra);
}

static void helper_stop(Helper *h)
{
    g_autoptr(GError) error = NULL;

    g_subprocess_send_signal(h->proc, SIGTERM);
    g_assert_true(g_subprocess_wait(h->proc, NULL, &error));
    g_assert_no_error(error);
    g_object_unref(h->proc);
    close(h->qemu_fd);
    g_free(h->id);
    g_free(h->name);
    g_free(h);
}

static GVariant *call(Helper *h, const char *path, const char *iface, const char *method,
                      GVariant *params, const char *reply_type, GError **error)
{
    return g_dbus_connection_call_sync(conn, h->name, path, iface, method, params,
                                       reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, error);
}

static GBytes *save(Helper *h)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r =
        call(h, "/org/qemu/VMState1", "org.qemu.VMState1", "Save", NULL, "(ay)", &error);
    g_autoptr(GVariant) ay = NULL;
    gsize len;
    const guint8 *data;

    g_assert_no_error(error);
    ay = g_variant_get_child_value(r, 0);
    data = g_variant_get_fixed_array(ay, &len, 1);
    return g_bytes_new(data, len);
}

static gboolean load(Helper *h, const guint8 *data, gsize len, GError **error)
{
    g_autoptr(GVariant) r =
        call(h, "/org/qemu/VMState1", "org.qemu.VMState1", "Load",
             g_variant_new("(@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, len, 1)),
             NULL, error);
    return r != NULL;
}

static GVariant *get_info(Helper *h)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = call(h, "/org/libvirt_slirp/Helper1", "org.libvirt_slirp.Helper1",
                                 "GetInfo", NULL, "(a{sv})", &error);

    g_assert_no_error(error);
    return g_variant_get_child_value(r, 0);
}

/* --- frames, as QEMU would send them --- */

static guint16 csum(const guint8 *p, size_t len)
{
    guint32 s = 0;

    for (size_t i = 0; i + 1 < len; i += 2)
        s += (guint32)(p[i] << 8 | p[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (guint16)~s;
}

static size_t dhcp_discover(guint8 *f)
{
    size_t bootp_len = 240 + 4;
    size_t udp_len = 8 + bootp_len;
    size_t ip_len = 20 + udp_len;
    guint8 *ip = f + 14, *udp = ip + 20, *b = udp + 8;
    guint16 c;

    memset(f, 0, 14 + ip_len);
    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x08;
    ip[0] = 0x45;
    ip[2] = (guint8)(ip_len >> 8);
    ip[3] = (guint8)ip_len;
    ip[8] = 64;
    ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    c = csum(ip, 20);
    ip[10] = (guint8)(c >> 8);
    ip[11] = (guint8)c;
    udp[1] = 68;
    udp[3] = 67;
    udp[4] = (guint8)(udp_len >> 8);
    udp[5] = (guint8)udp_len;
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4] = 0x12;
    b[10] = 0x80;
    memcpy(b + 28, guest_mac, 6);
    b[236] = 0x63;
    b[237] = 0x82;
    b[238] = 0x53;
    b[239] = 0x63;
    b[240] = 53;
    b[241] = 1;
    b[242] = 1;
    b[243] = 255;
    return 14 + ip_len;
}

static size_t arp_request(guint8 *f)
{
    static const guint8 hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };

    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x08;
    f[13] = 0x06;
    memcpy(f + 14, hdr, 8);
    memcpy(f + 22, guest_mac, 6);
    inet_pton(AF_INET, "10.0.2.15", f + 28);
    memset(f + 32, 0, 6);
    inet_pton(AF_INET, "10.0.2.2", f + 38);
    return 42;
}

/* Wait up to @ms for any frame from the helper; returns its length or 0. */
static gssize recv_frame(Helper *h, guint8 *buf, size_t size, int ms)
{
    GPollFD p = { .fd = h->qemu_fd, .events = G_IO_IN };

    if (g_poll(&p, 1, ms) <= 0)
        return 0;
    return recv(h->qemu_fd, buf, size, MSG_DONTWAIT);
}

static gboolean gets_arp_reply(Helper *h, int ms)
{
    guint8 f[2048];
    size_t n = arp_request(f);
    gint64 end = g_get_monotonic_time() + ms * 1000;

    g_assert_cmpint(send(h->qemu_fd, f, n, 0), ==, (gssize)n);
    while (g_get_monotonic_time() < end) {
        gssize r = recv_frame(h, f, sizeof(f), 50);

        if (r >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2)
            return TRUE;
    }
    return FALSE;
}

static void get_lease(Helper *h)
{
    guint8 f[2048];
    size_t n = dhcp_discover(f);

    g_assert_cmpint(send(h->qemu_fd, f, n, 0), ==, (gssize)n);
    for (int i = 0; i < 40; i++) {
        gssize r = recv_frame(h, f, sizeof(f), 50);

        if (r > 14 + 20 + 8 + 20 && f[12] == 0x08 && f[23] == 17 && f[14 + 20 + 3] == 68)
            return;
    }
    g_assert_not_reached();
}

static gboolean info_has_lease(GVariant *info, const char *addr, const char *mac)
{
    g_autoptr(GVariant) leases = g_variant_lookup_value(info, "leases", G_VARIANT_TYPE("a(ss)"));
    GVariantIter it;
    const char *a, *m;

    g_assert_nonnull(leases);
    g_variant_iter_init(&it, leases);
    while (g_variant_iter_next(&it, "(&s&s)", &a, &m)) {
        if (g_strcmp0(a, addr) == 0 && g_strcmp0(m, mac) == 0)
            return TRUE;
    }
    return FALSE;
}

static void assert_dbus_error(GError *error, const char *name)
{
    g_autofree char *remote = NULL;

    g_assert_nonnull(error);
    remote = g_dbus_error_get_remote_error(error);
    g_test_message("%s: %s", remote, error->message);
    g_assert_cmpstr(remote, ==, name);
}

static guint16 free_port(void);
static gboolean can_connect(guint16 port);

static void test_save_load(void)
{
    guint16 port = free_port();
    g_autofree char *b_args = g_strdup_printf("--dbus-incoming --hostfwd=tcp:127.0.0.1:%u-:22",
                                              port);
    Helper *a = helper_start("slirp-52:54:00:12:34:56", NULL);
    Helper *b = helper_start("slirp-incoming", b_args);
    g_autoptr(GBytes) blob = NULL;
    g_autoptr(GBytes) again = NULL;
    g_autoptr(GVariant) info_a = NULL;
    g_autoptr(GVariant) info_b = NULL;
    g_autoptr(GError) error = NULL;
    const guint8 *data;
    gsize len;
    gboolean waiting;

    get_lease(a);
    info_a = get_info(a);
    g_assert_true(info_has_lease(info_a, "10.0.2.15", "52:54:00:12:34:56"));
    blob = save(a);
    data = g_bytes_get_data(blob, &len);
    g_assert_cmpuint(len, ==, 135);
    g_assert_cmpmem(data, 4, "\0\0\0\4", 4);

    /* B holds guest traffic until Load */
    info_b = get_info(b);
    g_assert_true(g_variant_lookup(info_b, "waiting-for-state", "b", &waiting));
    g_assert_true(waiting);
    g_assert_false(gets_arp_reply(b, 300));

    g_assert_true(load(b, data, len, &error));
    g_assert_no_error(error);
    g_clear_pointer(&info_b, g_variant_unref);
    info_b = get_info(b);
    g_assert_true(g_variant_lookup(info_b, "waiting-for-state", "b", &waiting));
    g_assert_false(waiting);
    g_assert_true(info_has_lease(info_b, "10.0.2.15", "52:54:00:12:34:56"));
    g_assert_true(gets_arp_reply(b, 2000));

    /* the state round-trips byte for byte */
    again = save(b);
    g_assert_true(g_bytes_equal(blob, again));
    /* the host forward moved to the restored stack (this changes the state) */
    g_assert_true(can_connect(port));

    /* Load is once, and only before guest traffic */
    g_assert_false(load(b, data, len, &error));
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.NotAllowed");
    g_clear_error(&error);
    g_assert_false(load(a, data, len, &error));
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.NotAllowed");

    helper_stop(a);
    helper_stop(b);
}

static void test_load_without_incoming(void)
{
    /* stock libvirt 11.3 restores without --dbus-incoming; QEMU still calls
     * Load before the guest runs, and the restore fails if it is refused */
    Helper *a = helper_start("restore-source", NULL);
    Helper *b = helper_start("restore-target", NULL);
    g_autoptr(GBytes) blob = NULL;
    g_autoptr(GVariant) info = NULL;
    g_autoptr(GError) error = NULL;
    const guint8 *data;
    gsize len;

    get_lease(a);
    blob = save(a);
    data = g_bytes_get_data(blob, &len);
    g_assert_true(load(b, data, len, &error));
    g_assert_no_error(error);
    info = get_info(b);
    g_assert_true(info_has_lease(info, "10.0.2.15", "52:54:00:12:34:56"));
    g_assert_true(gets_arp_reply(b, 2000));
    /* once only */
    g_assert_false(load(b, data, len, &error));
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.NotAllowed");
    helper_stop(a);
    helper_stop(b);
}

static void test_incoming_without_load(void)
{
    /* stock libvirt after a daemon restart: --dbus-incoming, but QEMU has
     * no state for this helper and never calls Load; the guest runs */
    Helper *b = helper_start("incoming-no-load", "--dbus-incoming");
    g_autoptr(GVariant) info = NULL;
    g_autoptr(GBytes) blob = NULL;
    g_autoptr(GError) error = NULL;
    const guint8 *data;
    gsize len;
    gboolean waiting = TRUE;

    /* generous bound: the helper waits a few seconds after the first frame */
    g_assert_true(gets_arp_reply(b, 20000));
    info = get_info(b);
    g_assert_true(g_variant_lookup(info, "waiting-for-state", "b", &waiting));
    g_assert_false(waiting);
    /* and the guest has talked now: a late Load is refused */
    blob = save(b);
    data = g_bytes_get_data(blob, &len);
    g_assert_false(load(b, data, len, &error));
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.NotAllowed");
    helper_stop(b);
}

static void test_load_keeps_listeners(void)
{
    /* Load must not close and re-bind host forwards: in between, a local
     * process could take the port, and connections waiting to be accepted
     * are reset */
    guint16 port = free_port();
    g_autofree char *args = g_strdup_printf("--dbus-incoming --hostfwd=tcp:127.0.0.1:%u-:22", port);
    Helper *a = helper_start("keep-source", NULL);
    Helper *b = helper_start("keep-target", args);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int waiting = socket(AF_INET, SOCK_STREAM, 0);
    g_autoptr(GBytes) blob = NULL;
    g_autoptr(GError) error = NULL;
    GPollFD p = { .fd = waiting, .events = G_IO_IN };
    const guint8 *data;
    gsize len;

    get_lease(a);
    blob = save(a);
    data = g_bytes_get_data(blob, &len);
    /* queued in the listener's backlog: the helper holds traffic until Load */
    g_assert_cmpint(connect(waiting, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_true(load(b, data, len, &error));
    g_assert_no_error(error);
    /* a closed listener resets it at once; a kept one lets it wait for the
     * guest (which never answers here) */
    g_assert_cmpint(g_poll(&p, 1, 1000), ==, 0);
    close(waiting);
    helper_stop(a);
    helper_stop(b);
}

static void test_corrupt_blobs(void)
{
    Helper *a = helper_start("source", NULL);
    Helper *b = helper_start("target", "--dbus-incoming");
    g_autoptr(GBytes) blob = NULL;
    const guint8 *good;
    gsize len;

    get_lease(a);
    blob = save(a);
    good = g_bytes_get_data(blob, &len);

    struct {
        const char *what;
        gsize len;
        int patch_at;
        guint8 patch;
    } cases[] = {
        { "empty", 0, -1, 0 },
        { "3 bytes", 3, -1, 0 },
        { "header only", 4, -1, 0 },
        { "version 5", len, 3, 5 },
        { "version 3", len, 3, 3 },
        { "truncated by one", len - 1, -1, 0 },
        { "one extra byte", len + 1, -1, 0 },
        { "socket record", len, 4, 42 },
        { "bad DHCP flag", len, 4 + 3 + 1, 7 },
        { "oversized", 1024 * 1024 + 1, -1, 0 },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree guint8 *buf = g_malloc0(MAX(cases[i].len, len) + 1);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) info = NULL;
        gboolean waiting;

        g_test_message("case: %s", cases[i].what);
        memcpy(buf, good, MIN(len, cases[i].len));
        if (cases[i].patch_at >= 0)
            buf[cases[i].patch_at] = cases[i].patch;
        g_assert_false(load(b, buf, cases[i].len, &error));
        assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.BadState");
        /* nothing changed: still waiting, no lease */
        info = get_info(b);
        g_assert_true(g_variant_lookup(info, "waiting-for-state", "b", &waiting));
        g_assert_true(waiting);
        g_assert_false(info_has_lease(info, "10.0.2.15", "52:54:00:12:34:56"));
    }
    /* a truncation sweep over every length */
    for (gsize cut = 0; cut < len; cut++) {
        g_autoptr(GError) error = NULL;

        g_assert_false(load(b, good, cut, &error));
        g_assert_nonnull(error);
    }
    /* and the good blob still loads afterwards */
    {
        g_autoptr(GError) error = NULL;

        g_assert_true(load(b, good, len, &error));
        g_assert_no_error(error);
    }
    helper_stop(a);
    helper_stop(b);
}

static guint16 free_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof(sin);
    int s = socket(AF_INET, SOCK_STREAM, 0);

    g_assert_cmpint(bind(s, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(getsockname(s, (struct sockaddr *)&sin, &l), ==, 0);
    close(s);
    return ntohs(sin.sin_port);
}

static gboolean can_connect(guint16 port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int s = socket(AF_INET, SOCK_STREAM, 0);
    gboolean ok = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;

    close(s);
    return ok;
}

static GVariant *list_forwards(Helper *h)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = call(h, "/org/libvirt_slirp/Helper1", "org.libvirt_slirp.Helper1",
                                 "ListForwards", NULL, "(a(usssqsq))", &error);

    g_assert_no_error(error);
    return g_variant_get_child_value(r, 0);
}

static guint32 add_forward(Helper *h, const char *spec, GError **error)
{
    g_autoptr(GVariant) r = call(h, "/org/libvirt_slirp/Helper1", "org.libvirt_slirp.Helper1",
                                 "AddForward", g_variant_new("(s)", spec), "(u)", error);
    guint32 id = 0;

    if (r)
        g_variant_get(r, "(u)", &id);
    return id;
}

static gboolean remove_forward(Helper *h, guint32 id, GError **error)
{
    g_autoptr(GVariant) r = call(h, "/org/libvirt_slirp/Helper1", "org.libvirt_slirp.Helper1",
                                 "RemoveForward", g_variant_new("(u)", id), NULL, error);
    return r != NULL;
}

static void test_control(void)
{
    guint16 p1 = free_port(), p2 = free_port();
    g_autofree char *static_fwd = g_strdup_printf("--hostfwd=tcp:127.0.0.1:%u-:22", p1);
    Helper *h = helper_start("slirp-52:54:00:aa:bb:cc", static_fwd);
    g_autofree char *spec = g_strdup_printf("tcp:127.0.0.1:%u-10.0.2.15:80", p2);
    g_autofree char *dup = g_strdup_printf("tcp:127.0.0.1:%u-:8080", p2);
    g_autoptr(GVariant) list = NULL;
    g_autoptr(GError) error = NULL;
    guint32 id, id0;
    const char *s;

    /* the well-known control name and the compatibility name exist */
    g_autofree char *owner = name_owner("org.libvirt_slirp.Helper1.slirp-52_54_00_aa_bb_cc");
    g_assert_cmpstr(owner, ==, h->name);
    {
        g_autoptr(GVariant) r =
            call(h, "/org/freedesktop/Slirp1/Helper", "org.freedesktop.Slirp1.Helper", "GetInfo",
                 NULL, "(s)", &error);
        g_assert_no_error(error);
        g_variant_get(r, "(&s)", &s);
        g_assert_nonnull(strstr(s, "HOST_FORWARD"));
    }

    list = list_forwards(h);
    g_assert_cmpuint(g_variant_n_children(list), ==, 1);
    g_variant_get_child(list, 0, "(u&s&s&sq&sq)", &id0, &s, NULL, NULL, NULL, NULL, NULL);
    g_assert_true(can_connect(p1));

    g_assert_false(can_connect(p2));
    id = add_forward(h, spec, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(id, >, id0);
    g_assert_true(can_connect(p2));
    g_clear_pointer(&list, g_variant_unref);
    list = list_forwards(h);
    g_assert_cmpuint(g_variant_n_children(list), ==, 2);
    {
        guint32 lid;
        const char *lspec, *proto, *haddr, *gaddr;
        guint16 hport, gport;

        g_variant_get_child(list, 1, "(u&s&s&sq&sq)", &lid, &lspec, &proto, &haddr, &hport, &gaddr,
                            &gport);
        g_assert_cmpuint(lid, ==, id);
        g_assert_cmpstr(lspec, ==, spec);
        g_assert_cmpstr(proto, ==, "tcp");
        g_assert_cmpstr(haddr, ==, "127.0.0.1");
        g_assert_cmpuint(hport, ==, p2);
        g_assert_cmpstr(gaddr, ==, "10.0.2.15");
        g_assert_cmpuint(gport, ==, 80);
    }

    /* errors are named and say what is wrong */
    g_assert_cmpuint(add_forward(h, dup, &error), ==, 0);
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.PortInUse");
    g_assert_nonnull(strstr(error->message, "already forwarded"));
    g_clear_error(&error);
    g_assert_cmpuint(add_forward(h, "tcp:1.2.3:99-:22", &error), ==, 0);
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.InvalidSpec");
    g_assert_nonnull(strstr(error->message, "tcp:1.2.3:99-:22"));
    g_clear_error(&error);
    g_assert_cmpuint(add_forward(h, "tcp:192.0.2.77:4000-:22", &error), ==, 0);
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.BadAddress");
    g_clear_error(&error);
    g_assert_cmpuint(add_forward(h, "tcp:127.0.0.1:4001-10.9.9.9:22", &error), ==, 0);
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.BadAddress");
    g_clear_error(&error);
    {
        /* a port another process holds */
        struct sockaddr_in sin = { .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(sin);
        int busy = socket(AF_INET, SOCK_STREAM, 0);
        g_autofree char *busy_spec = NULL;

        g_assert_cmpint(bind(busy, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
        g_assert_cmpint(listen(busy, 1), ==, 0);
        g_assert_cmpint(getsockname(busy, (struct sockaddr *)&sin, &l), ==, 0);
        busy_spec = g_strdup_printf("tcp:127.0.0.1:%u-:22", ntohs(sin.sin_port));
        g_assert_cmpuint(add_forward(h, busy_spec, &error), ==, 0);
        assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.PortInUse");
        g_clear_error(&error);
        close(busy);
    }

    g_assert_true(remove_forward(h, id, &error));
    g_assert_no_error(error);
    g_assert_false(can_connect(p2));
    g_assert_false(remove_forward(h, id, &error));
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.NoSuchRule");
    g_clear_error(&error);
    /* a static rule can be removed too */
    g_assert_true(remove_forward(h, id0, &error));
    g_assert_false(can_connect(p1));
    g_clear_pointer(&list, g_variant_unref);
    list = list_forwards(h);
    g_assert_cmpuint(g_variant_n_children(list), ==, 0);

    helper_stop(h);
}

static void test_rule_cap(void)
{
    /* every rule holds a listening socket: their number is capped */
    Helper *h = helper_start("rule-cap", NULL);
    g_autoptr(GError) error = NULL;
    guint added = 0;
    g_autofree char *one_more = NULL;

    for (guint i = 0; i < 256; i++) {
        g_autofree char *spec = g_strdup_printf("udp:127.0.0.1:%u-:%u", free_port(), 1000 + i);

        if (add_forward(h, spec, &error) != 0)
            added++;
        g_clear_error(&error);
    }
    g_assert_cmpuint(added, >, 200); /* a few ports may have been taken meanwhile */
    for (guint i = added; i < 256; i++) {
        guint id = 0;

        /* free_port() only found the port free: another process (a test
         * running beside this one) may bind it first. Below the cap, the
         * only refusal may be for that reason. */
        for (guint tries = 0; !id && tries < 10; tries++) {
            g_autofree char *spec = g_strdup_printf("udp:127.0.0.1:%u-:%u",
                                                    free_port(), 2000 + i);

            if (!(id = add_forward(h, spec, &error)))
                assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.PortInUse");
            g_clear_error(&error);
        }
        g_assert_cmpuint(id, !=, 0);
    }
    one_more = g_strdup_printf("udp:127.0.0.1:%u-:9", free_port());
    g_assert_cmpuint(add_forward(h, one_more, &error), ==, 0);
    assert_dbus_error(error, "org.libvirt_slirp.Helper1.Error.NotAllowed");
    g_assert_nonnull(strstr(error->message, "256"));
    helper_stop(h);
}

static void test_stats(void)
{
    Helper *h = helper_start("stats", NULL);
    g_autoptr(GVariant) info = NULL;
    guint8 junk[20] = { 0 };
    guint64 runts = 0, ethertype = 0, frames_in = 0, frames_out = 0;

    g_assert_cmpint(send(h->qemu_fd, junk, 5, 0), ==, 5);
    junk[12] = 0x88;
    junk[13] = 0xf8;
    g_assert_cmpint(send(h->qemu_fd, junk, 20, 0), ==, 20);
    g_assert_true(gets_arp_reply(h, 2000));
    info = get_info(h);
    g_assert_true(g_variant_lookup(info, "dropped-from-guest-runt", "t", &runts));
    g_assert_true(g_variant_lookup(info, "dropped-from-guest-ethertype", "t", &ethertype));
    g_assert_true(g_variant_lookup(info, "frames-from-guest", "t", &frames_in));
    g_assert_true(g_variant_lookup(info, "frames-to-guest", "t", &frames_out));
    g_assert_cmpuint(runts, ==, 1);
    g_assert_cmpuint(ethertype, ==, 1);
    g_assert_cmpuint(frames_in, ==, 1);
    g_assert_cmpuint(frames_out, >=, 1);
    helper_stop(h);
}

static void test_save_while_qemu_stalled(void)
{
    /* QEMU stops reading (paused VM): Save must still answer promptly */
    Helper *h = helper_start("stalled", NULL);
    g_autoptr(GVariant) info = NULL;
    guint8 f[64];
    size_t n = arp_request(f);
    guint64 full = 0;
    gint64 t0;

    /* more replies than the helper's socket buffer holds (8 MiB here) */
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    /* (bounded: a helper that blocks stops reading) */
    for (int sent = 0; sent < 40000 && g_get_monotonic_time() < deadline;) {
        GPollFD p = { .fd = h->qemu_fd, .events = G_IO_OUT };

        if (send(h->qemu_fd, f, n, MSG_DONTWAIT) == (gssize)n)
            sent++;
        else
            g_poll(&p, 1, 100);
    }
    g_usleep(200000);
    t0 = g_get_monotonic_time();
    g_autoptr(GBytes) blob = save(h);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 1000000);
    info = get_info(h);
    g_assert_true(g_variant_lookup(info, "dropped-to-guest-full", "t", &full));
    g_assert_cmpuint(full, >, 0);
    helper_stop(h);
}

static void test_rust_interop(void)
{
    const char *rust = "/usr/bin/libslirp-helper";
    Helper *ours, *theirs, *back;
    g_autoptr(GBytes) from_ours = NULL;
    g_autoptr(GBytes) from_rust = NULL;
    g_autoptr(GBytes) again = NULL;
    g_autoptr(GError) error = NULL;
    const guint8 *data;
    gsize len;

    if (!g_file_test(rust, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("Debian's libslirp-helper is not installed");
        return;
    }
    /* ours -> Rust */
    ours = helper_start("ours", NULL);
    get_lease(ours);
    from_ours = save(ours);
    theirs = helper_start_with(rust, "theirs", "--dbus-incoming");
    data = g_bytes_get_data(from_ours, &len);
    g_assert_true(load(theirs, data, len, &error));
    g_assert_no_error(error);
    from_rust = save(theirs);
    g_assert_true(g_bytes_equal(from_ours, from_rust));

    /* Rust -> ours */
    back = helper_start("back", "--dbus-incoming");
    data = g_bytes_get_data(from_rust, &len);
    g_assert_true(load(back, data, len, &error));
    g_assert_no_error(error);
    again = save(back);
    g_assert_true(g_bytes_equal(again, from_rust));
    helper_stop(ours);
    helper_stop(back);
    g_subprocess_force_exit(theirs->proc);
    g_subprocess_wait(theirs->proc, NULL, NULL);
    g_object_unref(theirs->proc);
    close(theirs->qemu_fd);
    g_free(theirs->id);
    g_free(theirs->name);
    g_free(theirs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    helper_path = g_getenv("SLIRP_HELPER");
    if (!helper_path) {
        g_printerr("SLIRP_HELPER must name the helper binary\n");
        return 1;
    }
    test_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
    g_test_dbus_up(test_bus);
    conn =
        g_dbus_connection_new_for_address_sync(g_test_dbus_get_bus_address(test_bus),
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, NULL);
    g_assert_nonnull(conn);

    g_test_add_func("/dbus/vmstate/save-load", test_save_load);
    g_test_add_func("/dbus/vmstate/load-without-incoming", test_load_without_incoming);
    g_test_add_func("/dbus/vmstate/incoming-without-load", test_incoming_without_load);
    g_test_add_func("/dbus/vmstate/load-keeps-listeners", test_load_keeps_listeners);
    g_test_add_func("/dbus/vmstate/corrupt-blobs", test_corrupt_blobs);
    g_test_add_func("/dbus/vmstate/save-while-qemu-stalled", test_save_while_qemu_stalled);
    g_test_add_func("/dbus/vmstate/rust-interop", test_rust_interop);
    g_test_add_func("/dbus/control/forwards", test_control);
    g_test_add_func("/dbus/control/rule-cap", test_rule_cap);
    g_test_add_func("/dbus/control/stats", test_stats);
    ret = g_test_run();

    g_object_unref(conn);
    g_test_dbus_down(test_bus);
    g_object_unref(test_bus);
    return ret;
}
