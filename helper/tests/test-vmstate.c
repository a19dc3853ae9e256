/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-vmstate.c - the migration envelope: what vmstate_envelope_open()
 * accepts and rejects (empty, short, truncated, oversized, wrong version,
 * foreign records), and that seal/open round-trip
 */
#include <glib.h>
#include <string.h>

#include "vmstate.h"

static GByteArray *good_blob(void)
{
    GByteArray *b = g_byte_array_new();
    guint8 hdr[4] = { 0, 0, 0, 4 };
    guint8 payload[VMSTATE_V4_PAYLOAD_LEN] = { 0 };

    payload[1] = 0x12; /* ip_id */
    payload[2] = 0x34;
    payload[3 + 1] = 1; /* slot 0 allocated */
    memcpy(payload + 3 + 2, "\x52\x54\x00\x12\x34\x56", 6);
    g_byte_array_append(b, hdr, 4);
    g_byte_array_append(b, payload, sizeof(payload));
    return b;
}

static void expect_reject(const guint8 *data, size_t len, const char *fragment)
{
    g_autoptr(GError) error = NULL;
    const guint8 *payload = NULL;
    size_t payload_len = 0;

    g_assert_false(vmstate_envelope_open(data, len, 4, &payload, &payload_len, &error));
    g_assert_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE);
    g_test_message("%zu bytes -> %s", len, error->message);
    g_assert_nonnull(strstr(error->message, fragment));
}

static void test_accept(void)
{
    g_autoptr(GByteArray) b = good_blob();
    g_autoptr(GError) error = NULL;
    const guint8 *payload;
    size_t payload_len;

    g_assert_true(vmstate_envelope_open(b->data, b->len, 4, &payload, &payload_len, &error));
    g_assert_no_error(error);
    g_assert_true(payload == b->data + 4);
    g_assert_cmpuint(payload_len, ==, VMSTATE_V4_PAYLOAD_LEN);
}

static void test_reject(void)
{
    g_autoptr(GByteArray) b = good_blob();
    g_autofree guint8 *big = g_malloc0(VMSTATE_SIZE_MAX + 1);

    expect_reject(b->data, 0, "empty");
    expect_reject(b->data, 3, "too short");
    expect_reject(b->data, 4, "no payload");
    for (guint cut = 5; cut < b->len; cut++)
        expect_reject(b->data, cut, "bytes");
    big[3] = 4;
    expect_reject(big, VMSTATE_SIZE_MAX + 1, "limit");

    b->data[3] = 5;
    expect_reject(b->data, b->len, "version 5");
    b->data[3] = 3;
    expect_reject(b->data, b->len, "version 3");
    b->data[3] = 4;
    b->data[0] = 1;
    expect_reject(b->data, b->len, "version 16777220");
    b->data[0] = 0;

    b->data[4] = 42; /* a guest-forward socket record */
    expect_reject(b->data, b->len, "guest-forward");
    b->data[4] = 0;

    b->data[4 + 3 + 8 * 5 + 1] = 2; /* slot 5: allocated = 2 */
    expect_reject(b->data, b->len, "slot 5");
    b->data[4 + 3 + 8 * 5 + 1] = 0;

    g_byte_array_append(b, (const guint8 *)"x", 1);
    expect_reject(b->data, b->len, "132 bytes");
}

static void test_other_version_layout(void)
{
    /* for versions other than 4 only the envelope is checked here; libslirp
     * and the consume-everything check in netstack do the rest */
    guint8 blob[10] = { 0, 0, 0, 7, 1, 2, 3, 4, 5, 6 };
    const guint8 *payload;
    size_t payload_len;

    g_assert_true(vmstate_envelope_open(blob, sizeof(blob), 7, &payload, &payload_len, NULL));
    g_assert_cmpuint(payload_len, ==, 6);
}

static void test_seal(void)
{
    g_autoptr(GByteArray) b = good_blob();
    g_autoptr(GBytes) payload = g_bytes_new(b->data + 4, b->len - 4);
    g_autoptr(GBytes) sealed = vmstate_envelope_seal(4, payload, NULL);
    g_autofree guint8 *huge = g_malloc0(VMSTATE_SIZE_MAX);
    g_autoptr(GBytes) too_big = g_bytes_new_take(g_steal_pointer(&huge), VMSTATE_SIZE_MAX);
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data(sealed, &len);

    g_assert_cmpmem(data, len, b->data, b->len);
    g_assert_null(vmstate_envelope_seal(4, too_big, &error));
    g_assert_error(error, NETSTACK_ERROR, NETSTACK_ERROR_BAD_STATE);
}

static void test_load_policy(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(vmstate_load_allowed(false, false, &error));
    g_assert_no_error(error);
    g_assert_false(vmstate_load_allowed(true, false, &error));
    g_assert_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED);
    g_clear_error(&error);
    g_assert_false(vmstate_load_allowed(false, true, &error));
    g_assert_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED);
    g_assert_nonnull(strstr(error->message, "traffic"));
    g_clear_error(&error);
    g_assert_false(vmstate_load_allowed(true, true, &error));
    g_assert_error(error, NETSTACK_ERROR, NETSTACK_ERROR_NOT_ALLOWED);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmstate/envelope/accept", test_accept);
    g_test_add_func("/vmstate/envelope/reject", test_reject);
    g_test_add_func("/vmstate/envelope/other-version", test_other_version_layout);
    g_test_add_func("/vmstate/envelope/seal", test_seal);
    g_test_add_func("/vmstate/load-policy", test_load_policy);
    return g_test_run();
}
