/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmstate.c - org.qemu.VMState1: migration of the network state
 *
 * Theory of operation.  The blob that crosses the bus is the format of
 * Debian's Rust libslirp-helper, so state moves between the two helpers in
 * either direction: a 4-byte big-endian state version (slirp_state_version())
 * followed by libslirp's own state stream, at most 1 MiB in all (QEMU's
 * limit).
 *
 * A Load is untrusted input and libslirp 4.7 does not protect itself: it
 * reads an empty or truncated stream as success and applies records while
 * reading.  So vmstate_envelope_open() checks the envelope first (I/O-free,
 * unit-tested): size, version, and, for version 4, the exact layout this
 * helper can produce and restore (no guest-forward socket records, which
 * would need callback-based guest forwards this helper does not create;
 * 131 bytes; BOOTP "allocated" flags 0 or 1).  Then netstack_load_state()
 * loads into a fresh probe instance and, only if libslirp succeeded and
 * consumed exactly the payload, into the running stack, whose host-forward
 * listeners stay open.  A rejected Load changes nothing and replies with a
 * D-Bus error saying why.
 *
 * Policy (vmstate_load_allowed()): one Load is accepted, with or without
 * --dbus-incoming, as long as no guest frame has reached the stack: stock
 * libvirt 11.3 restores a saved VM without --dbus-incoming, yet QEMU still
 * calls Load before the guest runs; and after the guest has talked, a Load
 * would throw away its live connections and leases (whoever sends it: QEMU
 * too is only a peer on the bus).  With --dbus-incoming guest traffic is
 * held until then (netstack_set_waiting(); loop.c lets it go on with fresh
 * state if no Load comes, see docs/helper-interface.md).
 */
#include "vmstate.h"

#include <slirp/libslirp.h>
#include <string.h>

#include "dbus.h"
#include "dbus-interfaces.h"
#include "log.h"

#define VMSTATE_OBJECT_PATH "/org/qemu/VMState1"

struct HelperVmstate {
    GDBusConnection *conn;
    GDBusNodeInfo *node;
    guint registration;
    char *id;
    bool loaded;
    HelperNetstack *ns;
};

/**
 * vmstate_envelope_open() - check a migration blob and find its payload
 * @blob: the bytes received by Load
 * @len: their number
 * @version: the state version this helper's libslirp writes and reads
 * @payload: set to the libslirp stream inside @blob
 * @payload_len: set to its length
 * @error: NETSTACK_ERROR_BAD_STATE saying what is wrong
 *
 * Return: true if the blob may be given to libslirp
 */
bool vmstate_envelope_open(const guint8 *blob, size_t len, guint32 version, const guint8 **payload,
                           size_t *payload_len, GError **error)
{
    guint32 got;

    if (len == 0) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE, "The state is empty");
        return false;
    }
    if (len > VMSTATE_SIZE_MAX) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                    "The state is %zu bytes, more than the limit of %d", len, VMSTATE_SIZE_MAX);
        return false;
    }
    if (len < VMSTATE_HEADER_LEN) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                    "The state is %zu bytes, too short for its version header", len);
        return false;
    }
    got = ((guint32)blob[0] << 24) | ((guint32)blob[1] << 16) | ((guint32)blob[2] << 8) | blob[3];
    if (got != version) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                    "The state has version %u; this helper reads version %u", got, version);
        return false;
    }
    *payload = blob + VMSTATE_HEADER_LEN;
    *payload_len = len - VMSTATE_HEADER_LEN;

    if (version == 4) {
        const guint8 *p = *payload;

        if (*payload_len == 0) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                        "The state has no payload after its version header");
            return false;
        }
        if (p[0] != 0) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                        "The state holds guest-forward connections (record type %u), "
                        "which this helper cannot restore",
                        p[0]);
            return false;
        }
        if (*payload_len != VMSTATE_V4_PAYLOAD_LEN) {
            g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                        "The state payload is %zu bytes; version 4 without connections "
                        "is %d bytes",
                        *payload_len, VMSTATE_V4_PAYLOAD_LEN);
            return false;
        }
        for (int i = 0; i < 16; i++) {
            const guint8 *slot = p + 3 + i * 8;

            if (slot[0] != 0 || slot[1] > 1) {
                g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                            "The state's DHCP slot %d has an invalid flag", i);
                return false;
            }
        }
    }
    return true;
}

/**
 * vmstate_envelope_seal() - wrap libslirp's stream for Save
 * @version: the state version
 * @payload: libslirp's stream
 * @error: NETSTACK_ERROR_BAD_STATE if the result would exceed the limit
 *
 * Return: the blob, or NULL
 */
GBytes *vmstate_envelope_seal(guint32 version, GBytes *payload, GError **error)
{
    gsize len = g_bytes_get_size(payload);
    GByteArray *out;
    guint8 hdr[VMSTATE_HEADER_LEN] = {
        (guint8)(version >> 24),
        (guint8)(version >> 16),
        (guint8)(version >> 8),
        (guint8)version,
    };

    if (len + VMSTATE_HEADER_LEN > VMSTATE_SIZE_MAX) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE,
                    "The state would be %zu bytes, more than the limit of %d",
                    len + VMSTATE_HEADER_LEN, VMSTATE_SIZE_MAX);
        return NULL;
    }
    out = g_byte_array_sized_new((guint)(len + VMSTATE_HEADER_LEN));
    g_byte_array_append(out, hdr, sizeof(hdr));
    g_byte_array_append(out, g_bytes_get_data(payload, NULL), (guint)len);
    return g_byte_array_free_to_bytes(out);
}

/**
 * vmstate_load_allowed() - whether a Load may replace the state now
 * @loaded: a Load has succeeded already
 * @seen_traffic: a guest frame has reached the network stack
 * @error: NETSTACK_ERROR_NOT_ALLOWED saying why not
 *
 * Return: true if the Load may proceed to the validation of its blob
 */
bool vmstate_load_allowed(bool loaded, bool seen_traffic, GError **error)
{
    if (loaded) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED,
                    "The state was already loaded once");
        return false;
    }
    if (seen_traffic) {
        g_set_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED,
                    "The guest has already exchanged traffic; state is only loaded before that");
        return false;
    }
    return true;
}

/**
 * vmstate_save() - handle Save()
 * @vm: the exported object
 * @inv: the call
 */
static void vmstate_save(HelperVmstate *vm, GDBusMethodInvocation *inv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) payload =
        netstack_save_state(vm->ns, VMSTATE_SIZE_MAX - VMSTATE_HEADER_LEN, &error);
    g_autoptr(GBytes) blob = NULL;
    gsize len;
    const void *data;

    if (payload)
        blob = vmstate_envelope_seal((guint32)slirp_state_version(), payload, &error);
    if (!blob) {
        log_warn("Save failed: %s", error->message);
        dbus_return_error(inv, error);
        return;
    }
    data = g_bytes_get_data(blob, &len);
    log_info("Saved %zu bytes of network state", (size_t)len);
    g_dbus_method_invocation_return_value(
        inv, g_variant_new("(@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, len, 1)));
}

/**
 * vmstate_load() - handle Load(ay)
 * @vm: the exported object
 * @params: the call's arguments
 * @inv: the call
 */
static void vmstate_load(HelperVmstate *vm, GVariant *params, GDBusMethodInvocation *inv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) arg = g_variant_get_child_value(params, 0);
    const guint8 *payload;
    size_t payload_len;
    gsize len = 0;
    const guint8 *blob = g_variant_get_fixed_array(arg, &len, 1);

    if (vmstate_load_allowed(vm->loaded, netstack_seen_traffic(vm->ns), &error) &&
        vmstate_envelope_open(blob, len, (guint32)slirp_state_version(), &payload, &payload_len,
                              &error) &&
        netstack_load_state(vm->ns, slirp_state_version(), payload, payload_len, &error)) {
        vm->loaded = true;
        netstack_set_waiting(vm->ns, false);
        log_info("Loaded %zu bytes of network state; guest traffic enabled", (size_t)len);
        g_dbus_method_invocation_return_value(inv, NULL);
        return;
    }
    log_warn("Rejected a Load of %zu bytes: %s", (size_t)len, error->message);
    dbus_return_error(inv, error);
}

static void vmstate_method_call(GDBusConnection *conn, const char *sender, const char *path,
                                const char *iface, const char *method, GVariant *params,
                                GDBusMethodInvocation *inv, gpointer data)
{
    HelperVmstate *vm = data;

    if (g_strcmp0(method, "Save") == 0)
        vmstate_save(vm, inv);
    else if (g_strcmp0(method, "Load") == 0)
        vmstate_load(vm, params, inv);
    else
        g_dbus_method_invocation_return_error(inv, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                              "No method %s", method);
}

static GVariant *vmstate_get_property(GDBusConnection *conn, const char *sender, const char *path,
                                      const char *iface, const char *property, GError **error,
                                      gpointer data)
{
    HelperVmstate *vm = data;

    if (g_strcmp0(property, "Id") == 0)
        return g_variant_new_string(vm->id);
    g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
    return NULL;
}

static const GDBusInterfaceVTable vmstate_vtable = {
    .method_call = vmstate_method_call,
    .get_property = vmstate_get_property,
};

/**
 * vmstate_export() - put org.qemu.VMState1 on the bus at /org/qemu/VMState1
 * @conn: the bus connection
 * @cfg: the configuration (dbus_id); must outlive the object
 * @ns: the netstack to save and restore
 * @error: set on failure
 *
 * The caller requests the org.qemu.VMState1 name afterwards.
 *
 * Return: the exported object, or NULL
 */
HelperVmstate *vmstate_export(GDBusConnection *conn, const HelperConfig *cfg, HelperNetstack *ns,
                              GError **error)
{
    g_autoptr(HelperVmstate) vm = g_new0(HelperVmstate, 1);

    vm->conn = g_object_ref(conn);
    vm->id = g_strdup(cfg->dbus_id);
    vm->ns = ns;
    vm->node = g_dbus_node_info_new_for_xml(dbus_xml_vmstate, error);
    if (!vm->node)
        return NULL;
    vm->registration = g_dbus_connection_register_object(
        conn, VMSTATE_OBJECT_PATH, g_dbus_node_info_lookup_interface(vm->node, "org.qemu.VMState1"),
        &vmstate_vtable, vm, NULL, error);
    if (!vm->registration)
        return NULL;
    return g_steal_pointer(&vm);
}

/**
 * vmstate_free() - unexport and free
 * @vm: the object, or NULL
 */
void vmstate_free(HelperVmstate *vm)
{
    if (!vm)
        return;
    if (vm->registration)
        g_dbus_connection_unregister_object(vm->conn, vm->registration);
    g_clear_pointer(&vm->node, g_dbus_node_info_unref);
    g_clear_object(&vm->conn);
    g_free(vm->id);
    g_free(vm);
}
