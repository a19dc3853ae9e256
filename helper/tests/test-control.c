/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-control.c - who may use the control interface (control.c)
 */
#include <glib.h>

#include "control.h"

static void test_caller_allowed(void)
{
    /* root (libvirt's system daemon) always */
    g_assert_true(control_caller_allowed(0, -1));
    g_assert_true(control_caller_allowed(0, 1000));
    /* anyone else only when named */
    g_assert_false(control_caller_allowed(64055, -1));
    g_assert_false(control_caller_allowed(1000, 1001));
    g_assert_true(control_caller_allowed(1000, 1000));
    g_assert_false(control_caller_allowed(G_MAXUINT32, -1));
    g_assert_true(control_caller_allowed(G_MAXUINT32 - 1, G_MAXUINT32 - 1));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/control/caller-allowed", test_caller_allowed);
    return g_test_run();
}
