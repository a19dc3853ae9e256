/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * control.c - org.libvirt_slirp.Helper1 (forwards, statistics) and the
 * org.freedesktop.Slirp1.Helper compatibility object
 *
 * Theory of operation: every request arrives as a D-Bus method call in the
 * main loop's thread, so it runs between two poll iterations and touches
 * libslirp safely.  Requests are untrusted text: forward specs go through
 * forward_parse_host() like --hostfwd values, and every failure becomes a
 * named D-Bus error (dbus_return_error()) whose message says what is wrong.
 * The interface definitions live in data/org.*.xml and are compiled in.
 *
 * Who may call: every peer of the per-VM bus can send us messages, and one
 * of them is QEMU, which runs the guest and must not open host ports or
 * remove libvirt's rules.  So before any method runs, the bus daemon is
 * asked for the caller's uid (GetConnectionUnixUser, which it knows from
 * the connection's credentials, not from anything the caller says), and
 * control_caller_allowed() admits only uid 0 (libvirt's system daemon) and
 * --dbus-control-uid.  The answer arrives in a later main loop iteration;
 * replies from the bus keep the order of the requests, so calls from one
 * client are still served in order.  Properties (Id, Version) stay
 * readable by all.  The number of forward rules is capped in netstack.c.
 */
#include "control.h"

#include <slirp/libslirp.h>

#include "dbus.h"
#include "dbus-interfaces.h"
#include "helper-config.h"
#include "log.h"
#include "sandbox.h"

#define CONTROL_OBJECT_PATH "/org/libvirt_slirp/Helper1"
#define CONTROL_COMPAT_PATH "/org/freedesktop/Slirp1/Helper"

struct HelperControl {
    GDBusConnection *conn;
    GCancellable *cancel; /* cancels uid look-ups still pending at control_free() */
    bool warned_refusal;  /* the first refused caller is logged as a warning */
    GDBusNodeInfo *node;
    GDBusNodeInfo *compat_node;
    guint registration;
    guint compat_registration;
    const HelperConfig *cfg;
    HelperNetstack *ns;
    HelperTransport *transport;
};

/**
 * control_bus_name() - the well-known name a helper owns for its id
 * @dbus_id: the --dbus-id value
 *
 * Return: "org.libvirt_slirp.Helper1." plus @dbus_id with characters a bus
 * name cannot hold replaced by '_'; newly allocated
 */
char *control_bus_name(const char *dbus_id)
{
    GString *name = g_string_new("org.libvirt_slirp.Helper1.");

    if (g_ascii_isdigit(dbus_id[0]))
        g_string_append_c(name, '_');
    for (const char *p = dbus_id; *p; p++)
        g_string_append_c(name, g_ascii_isalnum(*p) || *p == '_' || *p == '-' ? *p : '_');
    return g_string_free(name, FALSE);
}

/**
 * control_caller_allowed() - whether a caller may use the control interface
 * @uid: the caller's Unix uid, as the bus daemon reports it
 * @control_uid: --dbus-control-uid, or -1 if not given
 *
 * Return: true for uid 0 and for @control_uid
 */
bool control_caller_allowed(guint32 uid, gint64 control_uid)
{
    return uid == 0 || (control_uid >= 0 && (gint64)uid == control_uid);
}

static void control_list_forwards(HelperControl *ctl, GDBusMethodInvocation *inv)
{
    const GArray *fwds = netstack_forwards(ctl->ns);
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE("a(usssqsq)"));
    for (guint i = 0; i < fwds->len; i++) {
        const NetstackForward *e = &g_array_index(fwds, NetstackForward, i);
        g_autofree char *spec = forward_format_host(&e->fwd);
        g_autofree char *host = forward_addr_string((const struct sockaddr *)&e->fwd.host);
        g_autofree char *guest = forward_addr_string((const struct sockaddr *)&e->fwd.guest);

        g_variant_builder_add(&b, "(usssqsq)", e->id, spec, forward_proto_name(e->fwd.proto), host,
                              forward_addr_port((const struct sockaddr *)&e->fwd.host), guest,
                              forward_addr_port((const struct sockaddr *)&e->fwd.guest));
    }
    g_dbus_method_invocation_return_value(inv, g_variant_new("(a(usssqsq))", &b));
}

static void control_add_forward(HelperControl *ctl, GVariant *params, GDBusMethodInvocation *inv)
{
    g_autoptr(GError) error = NULL;
    const char *spec;
    HostForward fwd;
    guint id;

    g_variant_get(params, "(&s)", &spec);
    if (!forward_parse_host(spec, &fwd, &error)) {
        g_autoptr(GError) wrapped =
            g_error_new(NETSTACK_ERROR, NETSTACK_ERROR_INVALID_SPEC,
                        "Invalid forward spec '%s': %s", spec, error->message);
        dbus_return_error(inv, wrapped);
        return;
    }
    id = netstack_add_forward(ctl->ns, &fwd, &error);
    if (id == 0) {
        g_prefix_error(&error, "Cannot add forward '%s': ", spec);
        dbus_return_error(inv, error);
        return;
    }
    log_info("Added forward rule %u: %s", id, spec);
    g_dbus_method_invocation_return_value(inv, g_variant_new("(u)", id));
}

static void control_remove_forward(HelperControl *ctl, GVariant *params, GDBusMethodInvocation *inv)
{
    g_autoptr(GError) error = NULL;
    guint id;

    g_variant_get(params, "(u)", &id);
    if (!netstack_remove_forward(ctl->ns, id, &error)) {
        dbus_return_error(inv, error);
        return;
    }
    log_info("Removed forward rule %u", id);
    g_dbus_method_invocation_return_value(inv, NULL);
}

static void control_get_info(HelperControl *ctl, GDBusMethodInvocation *inv)
{
    const TransportStats *st = transport_stats(ctl->transport);
    g_autoptr(GPtrArray) leases = netstack_leases(ctl->ns);
    GVariantBuilder b, lb;
    guint tcp, udp;

    netstack_count_connections(ctl->ns, &tcp, &udp);
    g_variant_builder_init(&lb, G_VARIANT_TYPE("a(ss)"));
    for (guint i = 0; i < leases->len; i++) {
        const NetstackLease *l = leases->pdata[i];

        g_variant_builder_add(&lb, "(ss)", l->address, l->mac);
    }

    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
#define ADD(key, fmt, value) g_variant_builder_add(&b, "{sv}", key, g_variant_new(fmt, value))
    ADD("version", "s", HELPER_VERSION);
    ADD("libslirp-version", "s", slirp_version_string());
    ADD("transport", "s", transport_kind_name(transport_kind(ctl->transport)));
    ADD("mtu", "u", ctl->cfg->mtu);
    ADD("waiting-for-state", "b", netstack_is_waiting(ctl->ns));
    ADD("frames-from-guest", "t", st->rx_frames);
    ADD("bytes-from-guest", "t", st->rx_bytes);
    ADD("frames-to-guest", "t", st->tx_frames);
    ADD("bytes-to-guest", "t", st->tx_bytes);
    ADD("dropped-to-guest-full", "t", st->tx_dropped_full);
    ADD("dropped-to-guest-error", "t", st->tx_dropped_error);
    ADD("dropped-from-guest-runt", "t", st->rx_dropped[FRAME_RUNT]);
    ADD("dropped-from-guest-oversize", "t", st->rx_dropped[FRAME_OVERSIZE]);
    ADD("dropped-from-guest-ethertype", "t", st->rx_dropped[FRAME_ETHERTYPE]);
    ADD("tcp-connections", "u", tcp);
    ADD("udp-connections", "u", udp);
    ADD("forwards", "u", netstack_forwards(ctl->ns)->len);
    /* issue 5: the frame pre-filter and the sandbox (prefilter.c, sandbox.c) */
    {
        const PrefilterStats *pf = netstack_prefilter_stats(ctl->ns);

        ADD("prefilter-passed", "t", pf->passed);
        ADD("prefilter-urgent-stripped", "t", pf->urgent_stripped);
        for (int v = PREFILTER_PASS + 1; v < PREFILTER_VERDICT_LAST; v++) {
            g_autofree char *key = g_strdup_printf(
                "prefilter-dropped-%s", prefilter_verdict_name((PrefilterVerdict)v));

            ADD(key, "t", pf->dropped[v]);
        }
        ADD("confined", "b", sandbox_is_active());
    }
#undef ADD
    g_variant_builder_add(&b, "{sv}", "leases", g_variant_builder_end(&lb));
    g_dbus_method_invocation_return_value(inv, g_variant_new("(a{sv})", &b));
}

/**
 * control_dispatch() - run a method call whose caller was admitted
 * @ctl: the objects
 * @inv: the call; consumed
 */
static void control_dispatch(HelperControl *ctl, GDBusMethodInvocation *inv)
{
    const char *iface = g_dbus_method_invocation_get_interface_name(inv);
    const char *method = g_dbus_method_invocation_get_method_name(inv);
    GVariant *params = g_dbus_method_invocation_get_parameters(inv);

    if (g_strcmp0(iface, "org.freedesktop.Slirp1.Helper") == 0 ||
        g_strcmp0(method, "GetConnectionInfo") == 0) {
        g_autofree char *info = netstack_connection_info(ctl->ns);

        g_dbus_method_invocation_return_value(inv, g_variant_new("(s)", info));
    } else if (g_strcmp0(method, "ListForwards") == 0) {
        control_list_forwards(ctl, inv);
    } else if (g_strcmp0(method, "AddForward") == 0) {
        control_add_forward(ctl, params, inv);
    } else if (g_strcmp0(method, "RemoveForward") == 0) {
        control_remove_forward(ctl, params, inv);
    } else if (g_strcmp0(method, "GetInfo") == 0) {
        control_get_info(ctl, inv);
    } else {
        g_dbus_method_invocation_return_error(inv, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                              "No method %s", method);
    }
}

typedef struct {
    HelperControl *ctl;
    GDBusMethodInvocation *inv;
} ControlPending;

/**
 * control_on_caller_uid() - the bus daemon told us who called: admit or refuse
 * @source: the connection
 * @res: the GetConnectionUnixUser reply
 * @data: the ControlPending; freed here
 *
 * On cancellation (control_free() ran) @data's ctl is gone: only the call
 * is answered.
 */
static void control_on_caller_uid(GObject *source, GAsyncResult *res, gpointer data)
{
    g_autofree ControlPending *pending = data;
    GDBusMethodInvocation *inv = pending->inv;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    HelperControl *ctl;
    guint32 uid;

    if (!reply) {
        g_dbus_method_invocation_return_dbus_error(
            inv, "org.freedesktop.DBus.Error.AccessDenied",
            "Cannot tell who is calling, so the call is refused");
        return;
    }
    ctl = pending->ctl;
    g_variant_get(reply, "(u)", &uid);
    if (!control_caller_allowed(uid, ctl->cfg->dbus_control_uid)) {
        g_autofree char *msg = g_strdup_printf(
            "Caller %s (uid %u) may not use %s.%s: only uid 0 and --dbus-control-uid may",
            g_dbus_method_invocation_get_sender(inv), uid,
            g_dbus_method_invocation_get_interface_name(inv),
            g_dbus_method_invocation_get_method_name(inv));

        if (!ctl->warned_refusal)
            log_warn("%s", msg);
        else
            log_debug("%s", msg);
        ctl->warned_refusal = true;
        g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.AccessDenied",
                                                   msg);
        return;
    }
    control_dispatch(ctl, inv);
}

/* implements GDBusInterfaceMethodCallFunc: ask the bus who calls, then go on */
static void control_method_call(GDBusConnection *conn, const char *sender, const char *path,
                                const char *iface, const char *method, GVariant *params,
                                GDBusMethodInvocation *inv, gpointer data)
{
    HelperControl *ctl = data;
    ControlPending *pending;

    if (!sender) {
        g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.AccessDenied",
                                                   "A call without a sender is refused");
        return;
    }
    pending = g_new0(ControlPending, 1);
    pending->ctl = ctl;
    pending->inv = inv;
    g_dbus_connection_call(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionUnixUser",
                           g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"),
                           G_DBUS_CALL_FLAGS_NONE, -1, ctl->cancel, control_on_caller_uid, pending);
}

static GVariant *control_get_property(GDBusConnection *conn, const char *sender, const char *path,
                                      const char *iface, const char *property, GError **error,
                                      gpointer data)
{
    HelperControl *ctl = data;

    if (g_strcmp0(property, "Id") == 0)
        return g_variant_new_string(ctl->cfg->dbus_id);
    if (g_strcmp0(property, "Version") == 0)
        return g_variant_new_string(HELPER_VERSION);
    g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
    return NULL;
}

static const GDBusInterfaceVTable control_vtable = {
    .method_call = control_method_call,
    .get_property = control_get_property,
};

/**
 * control_export() - put the control and compatibility objects on the bus
 * @conn: the bus connection
 * @cfg: the configuration; must outlive the object
 * @ns: the netstack; must outlive the object
 * @transport: the QEMU socket, for statistics; must outlive the object
 * @error: set on failure
 *
 * Return: the exported objects, or NULL
 */
HelperControl *control_export(GDBusConnection *conn, const HelperConfig *cfg, HelperNetstack *ns,
                              HelperTransport *transport, GError **error)
{
    g_autoptr(HelperControl) ctl = g_new0(HelperControl, 1);

    ctl->conn = g_object_ref(conn);
    ctl->cancel = g_cancellable_new();
    ctl->cfg = cfg;
    ctl->ns = ns;
    ctl->transport = transport;
    ctl->node = g_dbus_node_info_new_for_xml(dbus_xml_control, error);
    if (!ctl->node)
        return NULL;
    ctl->compat_node = g_dbus_node_info_new_for_xml(dbus_xml_compat, error);
    if (!ctl->compat_node)
        return NULL;
    ctl->registration = g_dbus_connection_register_object(
        conn, CONTROL_OBJECT_PATH,
        g_dbus_node_info_lookup_interface(ctl->node, "org.libvirt_slirp.Helper1"), &control_vtable,
        ctl, NULL, error);
    if (!ctl->registration)
        return NULL;
    ctl->compat_registration = g_dbus_connection_register_object(
        conn, CONTROL_COMPAT_PATH,
        g_dbus_node_info_lookup_interface(ctl->compat_node, "org.freedesktop.Slirp1.Helper"),
        &control_vtable, ctl, NULL, error);
    if (!ctl->compat_registration)
        return NULL;
    return g_steal_pointer(&ctl);
}

/**
 * control_free() - unexport and free
 * @ctl: the objects, or NULL
 */
void control_free(HelperControl *ctl)
{
    if (!ctl)
        return;
    if (ctl->cancel) {
        g_cancellable_cancel(ctl->cancel);
        g_object_unref(ctl->cancel);
    }
    if (ctl->registration)
        g_dbus_connection_unregister_object(ctl->conn, ctl->registration);
    if (ctl->compat_registration)
        g_dbus_connection_unregister_object(ctl->conn, ctl->compat_registration);
    g_clear_pointer(&ctl->node, g_dbus_node_info_unref);
    g_clear_pointer(&ctl->compat_node, g_dbus_node_info_unref);
    g_clear_object(&ctl->conn);
    g_free(ctl);
}
