/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-forward.c - port-forward spec parsing and canonical formatting
 */
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "forward.h"

typedef struct {
    const char *spec;
    const char *canonical;
    ForwardProto proto;
    int host_family;
    int guest_family;
} HostCase;

static const HostCase host_good[] = {
    { "tcp::2222-:22", "tcp:0.0.0.0:2222-:22", FORWARD_TCP, AF_INET, AF_UNSPEC },
    { "::8080-:80", "tcp:0.0.0.0:8080-:80", FORWARD_TCP, AF_INET, AF_UNSPEC },
    { "udp:127.0.0.1:5353-10.0.2.15:53", "udp:127.0.0.1:5353-10.0.2.15:53", FORWARD_UDP, AF_INET,
      AF_INET },
    { "tcp:[::1]:8080-[fec0::15]:80", "tcp:[::1]:8080-[fec0::15]:80", FORWARD_TCP, AF_INET6,
      AF_INET6 },
    { "tcp:[::]:65535-:1", "tcp:[::]:65535-:1", FORWARD_TCP, AF_INET6, AF_UNSPEC },
};

static void test_host_good(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(host_good); i++) {
        const HostCase *c = &host_good[i];
        g_autoptr(GError) error = NULL;
        HostForward fwd, again;

        g_test_message("spec: %s", c->spec);
        g_assert_true(forward_parse_host(c->spec, &fwd, &error));
        g_assert_no_error(error);
        g_assert_cmpint(fwd.proto, ==, c->proto);
        g_assert_cmpint(fwd.host.ss_family, ==, c->host_family);
        g_assert_cmpint(fwd.guest.ss_family, ==, c->guest_family);
        g_autofree char *text = forward_format_host(&fwd);
        g_assert_cmpstr(text, ==, c->canonical);
        /* the canonical form reads back to the same forward */
        g_assert_true(forward_parse_host(text, &again, NULL));
        g_assert_true(forward_host_same_listener(&fwd, &again));
        g_assert_cmpuint(forward_addr_port((struct sockaddr *)&again.guest), ==,
                         forward_addr_port((struct sockaddr *)&fwd.guest));
    }
}

static const struct {
    const char *spec;
    const char *reason;
} host_bad[] = {
    { "", "protocol" },
    { "tcp", "protocol" },
    { "icmp::1-:2", "protocol" },
    { "tcp::2222", "expected" },
    { "tcp::-:22", "port" },
    { "tcp::0-:22", "port" },
    { "tcp::65536-:22", "port" },
    { "tcp::22x-:22", "port" },
    { "tcp::+22-:22", "port" },
    { "tcp::2222-:", "port" },
    { "tcp:1.2.3:2222-:22", "IPv4" },
    { "tcp:1.2.3.4.5:2222-:22", "IPv4" },
    { "tcp:[::1:2222-:22", "]" },
    { "tcp:[::1]2222-:22", "PORT" },
    { "tcp:[zz]:2222-:22", "IPv6" },
    { "tcp:[]:2222-:22", "IPv6" },
    { "tcp:::1:2222-:22", "brackets" },
    { "tcp:2222-:22", "ADDRESS:PORT" },
    { "tcp::2222-[fec0::15]:22", "IPv4 host address cannot forward to an IPv6" },
    { "udp:127.0.0.1:2222-[fec0::15]:22", "IPv4 host address cannot forward to an IPv6" },
    { "tcp:[::1]:2222-10.0.2.15:22", "IPv6 host address cannot forward to an IPv4" },
    { "tcp::2222-10.0.2.15", "ADDRESS:PORT" },
    { "tcp::2222-[fec0::15]", "PORT" },
};

static void test_host_bad(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(host_bad); i++) {
        g_autoptr(GError) error = NULL;
        HostForward fwd;

        g_test_message("spec: '%s'", host_bad[i].spec);
        g_assert_false(forward_parse_host(host_bad[i].spec, &fwd, &error));
        g_test_message("  -> %s", error->message);
        g_assert_nonnull(strstr(error->message, host_bad[i].reason));
    }
}

static void test_same_listener(void)
{
    HostForward a, b, c, d;

    g_assert_true(forward_parse_host("tcp:127.0.0.1:2222-:22", &a, NULL));
    g_assert_true(forward_parse_host("tcp:127.0.0.1:2222-10.0.2.16:23", &b, NULL));
    g_assert_true(forward_parse_host("udp:127.0.0.1:2222-:22", &c, NULL));
    g_assert_true(forward_parse_host("tcp:127.0.0.2:2222-:22", &d, NULL));
    g_assert_true(forward_host_same_listener(&a, &b));
    g_assert_false(forward_host_same_listener(&a, &c));
    g_assert_false(forward_host_same_listener(&a, &d));
}

static void test_guest(void)
{
    GuestForward fwd;
    g_autoptr(GError) error = NULL;

    g_assert_true(forward_parse_guest("tcp:10.0.2.100:80-unix:/run/web.sock", &fwd, &error));
    g_assert_cmpuint(fwd.port, ==, 80);
    g_assert_cmpuint(ntohl(fwd.addr.s_addr), ==, 0x0a000264);
    g_assert_cmpstr(fwd.unix_path, ==, "/run/web.sock");
    g_autofree char *text = forward_format_guest(&fwd);
    g_assert_cmpstr(text, ==, "tcp:10.0.2.100:80-unix:/run/web.sock");
    forward_guest_clear(&fwd);

    g_assert_true(forward_parse_guest("tcp::4444-unix:/tmp/a", &fwd, NULL));
    g_assert_cmpuint(fwd.addr.s_addr, ==, 0);
    forward_guest_clear(&fwd);

    static const char *const bad[] = {
        "udp:10.0.2.100:80-unix:/x", "tcp:10.0.2.100:80-/x",     "tcp:10.0.2.100:80-unix:x",
        "tcp:[fec0::5]:80-unix:/x",  "tcp:10.0.2.100:0-unix:/x", "tcp:10.0.2.100-unix:/x",
        "tcp:10.0.2.100:80-unix:",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;

        g_test_message("spec: %s", bad[i]);
        g_assert_false(forward_parse_guest(bad[i], &fwd, &e));
        g_assert_nonnull(e);
    }
    g_autofree char *fill = g_strnfill(200, 'p');
    g_autofree char *longpath = g_strconcat("tcp::80-unix:/", fill, NULL);
    g_assert_false(forward_parse_guest(longpath, &fwd, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/forward/host-good", test_host_good);
    g_test_add_func("/forward/host-bad", test_host_bad);
    g_test_add_func("/forward/same-listener", test_same_listener);
    g_test_add_func("/forward/guest", test_guest);
    return g_test_run();
}
