/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-options.c - command-line tables: accepted lines with the resulting
 * configuration, rejected lines with the option their message must name,
 * the --print-capabilities document, and IPv6 prefix membership at bit
 * granularity (prefix lengths that are not multiples of 8)
 */
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "options.h"

static bool parse_line(const char *line, HelperConfig *cfg, GError **error)
{
    g_auto(GStrv) argv = NULL;
    g_autofree char *full = g_strconcat("slirp-helper ", line, NULL);
    int argc;

    g_assert_true(g_shell_parse_argv(full, &argc, &argv, NULL));
    options_init(cfg);
    return options_parse(cfg, argc, argv, error);
}

static char *in4(struct in_addr a)
{
    char buf[INET_ADDRSTRLEN];

    return g_strdup(inet_ntop(AF_INET, &a, buf, sizeof(buf)));
}

static char *in6(const struct in6_addr *a)
{
    char buf[INET6_ADDRSTRLEN];

    return g_strdup(inet_ntop(AF_INET6, a, buf, sizeof(buf)));
}

typedef struct {
    const char *line;
    const char *net, *host, *dns, *dhcp_start;
    guint prefix;
    const char *net6, *host6, *dns6;
    guint prefix6;
} GoodCase;

static const GoodCase good_cases[] = {
    { "--fd=3", "10.0.2.0", "10.0.2.2", "10.0.2.3", "10.0.2.15", 24, "fec0::", "fec0::2", "fec0::3",
      64 },
    /* libvirt passes the <ip> address, not always the network address */
    { "--fd=3 --net=10.0.2.15/24", "10.0.2.0", "10.0.2.2", "10.0.2.3", "10.0.2.15", 24,
      "fec0::", "fec0::2", "fec0::3", 64 },
    { "--fd=7 --net=192.168.100.0/16 --net6=fd00:1::/48", "192.168.0.0", "192.168.0.2",
      "192.168.0.3", "192.168.0.15", 16, "fd00:1::", "fd00:1::2", "fd00:1::3", 48 },
    /* the original proposal's spellings */
    { "--fd=3 --net=172.16.0.0 --mask=255.255.255.0 --prefix-ipv6=fd00:: --prefix-length-ipv6=56",
      "172.16.0.0", "172.16.0.2", "172.16.0.3", "172.16.0.15", 24, "fd00::", "fd00::2", "fd00::3",
      56 },
    { "--fd 3 --net 10.1.0.0/24 --host 10.1.0.1 --dns 10.1.0.53 --dhcp-start 10.1.0.100",
      "10.1.0.0", "10.1.0.1", "10.1.0.53", "10.1.0.100", 24, "fec0::", "fec0::2", "fec0::3", 64 },
    { "--socket-path=/tmp/x.sock --host6=fec0::1 --dns6=fec0::35", "10.0.2.0", "10.0.2.2",
      "10.0.2.3", "10.0.2.15", 24, "fec0::", "fec0::1", "fec0::35", 64 },
    /* Rust helper aliases */
    { "--fd=3 --host-ipv6=fec0::9 --dns-ipv6=fec0::8 --dhcp-dns=10.0.2.4", "10.0.2.0", "10.0.2.2",
      "10.0.2.4", "10.0.2.15", 24, "fec0::", "fec0::9", "fec0::8", 64 },
};

static void test_good(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(good_cases); i++) {
        const GoodCase *c = &good_cases[i];
        g_auto(HelperConfig) cfg = { 0 };
        g_autoptr(GError) error = NULL;

        g_test_message("line: %s", c->line);
        g_assert_true(parse_line(c->line, &cfg, &error));
        g_assert_no_error(error);
        g_autofree char *net = in4(cfg.net), *host = in4(cfg.host), *dns = in4(cfg.dns),
                        *start = in4(cfg.dhcp_start), *net6 = in6(&cfg.net6),
                        *host6 = in6(&cfg.host6), *dns6 = in6(&cfg.dns6);
        g_assert_cmpstr(net, ==, c->net);
        g_assert_cmpuint(cfg.prefix, ==, c->prefix);
        g_assert_cmpstr(host, ==, c->host);
        g_assert_cmpstr(dns, ==, c->dns);
        g_assert_cmpstr(start, ==, c->dhcp_start);
        g_assert_cmpstr(net6, ==, c->net6);
        g_assert_cmpuint(cfg.prefix6, ==, c->prefix6);
        g_assert_cmpstr(host6, ==, c->host6);
        g_assert_cmpstr(dns6, ==, c->dns6);
        g_assert_true(cfg.ipv4);
        g_assert_true(cfg.ipv6);
    }
}

static void test_good_misc(void)
{
    g_auto(HelperConfig) cfg = { 0 };
    g_autoptr(GError) error = NULL;

    g_assert_true(parse_line("--fd=5 --mtu=65520 --restrict --disable-ipv6 --dns-search=a.example "
                             "--dns-search=b.example --domainname=example --hostname=vm1 "
                             "--tftp=/srv/tftp --tftp-bootfile=pxelinux.0 --disable-dhcp "
                             "--disable-dns --disable-host-loopback --hostfwd=tcp::2222-:22 "
                             "--hostfwd=udp:[::1]:5353-:53 "
                             "--guestfwd=tcp:10.0.2.100:80-unix:/run/web.sock "
                             "--dbus-address=unix:path=/tmp/bus --dbus-id=slirp-52:54:00:00:00:01 "
                             "--dbus-incoming --dbus-control-uid=1000 --log-file=/tmp/h.log "
                             "--debug --exit-with-parent",
                             &cfg, &error));
    g_assert_no_error(error);
    g_assert_cmpint(cfg.fd, ==, 5);
    g_assert_cmpuint(cfg.mtu, ==, 65520);
    g_assert_true(cfg.restricted && !cfg.ipv6 && cfg.ipv4);
    g_assert_true(cfg.disable_dhcp && cfg.disable_dns && cfg.disable_host_loopback);
    g_assert_cmpuint(g_strv_length(cfg.dns_search), ==, 2);
    g_assert_cmpstr(cfg.dns_search[1], ==, "b.example");
    g_assert_cmpstr(cfg.tftp_dir, ==, "/srv/tftp");
    g_assert_cmpstr(cfg.tftp_bootfile, ==, "pxelinux.0");
    g_assert_cmpuint(cfg.hostfwds->len, ==, 2);
    g_assert_cmpuint(cfg.guestfwds->len, ==, 1);
    g_assert_cmpstr(cfg.dbus_id, ==, "slirp-52:54:00:00:00:01");
    g_assert_true(cfg.dbus_incoming);
    g_assert_cmpint(cfg.dbus_control_uid, ==, 1000);
    g_assert_true(cfg.debug);
}

static void test_print_only(void)
{
    g_auto(HelperConfig) cfg = { 0 };
    g_autoptr(GError) error = NULL;

    /* libvirt probes with only this option: no --fd needed */
    g_assert_true(parse_line("--print-capabilities", &cfg, &error));
    g_assert_true(cfg.print_capabilities);
}

typedef struct {
    const char *line;
    const char *must_mention[2];
} BadCase;

static const BadCase bad_cases[] = {
    { "", { "--fd", "--socket-path" } },
    { "--fd=abc", { "--fd", "'abc'" } },
    { "--fd=-1", { "--fd", "'-1'" } },
    { "--fd=0", { "--fd", "'0'" } },
    { "--fd=99999999999", { "--fd", "99999999999" } },
    { "--fd=3 --socket-path=/tmp/s", { "--fd", "--socket-path" } },
    { "--fd=3 --fd=4", { "--fd", "more than once" } },
    { "--fd=3 --bogus", { "'--bogus'", NULL } },
    { "--fd=3 -x", { "-x", NULL } },
    { "--fd=3 stray", { "'stray'", NULL } },
    { "--fd", { "--fd", "value" } },
    { "--fd=3 --disable-ipv4=yes", { "--disable-ipv4=yes", NULL } },
    { "--fd=3 --net=10.0.2.0/33", { "--net", "10.0.2.0/33" } },
    { "--fd=3 --net=10.0.2.0/0", { "--net", "10.0.2.0/0" } },
    { "--fd=3 --net=10.0.2.0/31", { "--net", "10.0.2.0/31" } },
    { "--fd=3 --net=10.0.2.0/2x", { "--net", "10.0.2.0/2x" } },
    { "--fd=3 --net=10.0.2/24", { "--net", "10.0.2/24" } },
    { "--fd=3 --net=fec0::/64", { "--net", "fec0::/64" } },
    { "--fd=3 --net=10.0.2.0/24 --mask=255.255.255.0", { "--net", "--mask" } },
    { "--fd=3 --net=10.0.2.0 --mask=255.0.255.0", { "--mask", "255.0.255.0" } },
    { "--fd=3 --mask=255.255.255.0", { "--mask", "--net" } },
    { "--fd=3 --net6=10.0.2.0/24", { "--net6", "10.0.2.0/24" } },
    { "--fd=3 --net6=fec0::/127", { "--net6", "fec0::/127" } },
    { "--fd=3 --net6=fec0::/64 --prefix-ipv6=fd00::", { "--net6", "--prefix-ipv6" } },
    { "--fd=3 --prefix-length-ipv6=200", { "--prefix-length-ipv6", "200" } },
    { "--fd=3 --host=10.0.3.2", { "--host", "10.0.3.2" } },
    { "--fd=3 --host=10.0.2.255", { "--host", "10.0.2.255" } },
    { "--fd=3 --host=10.0.2.3", { "--host", "--dns" } },
    { "--fd=3 --dhcp-start=10.0.2.2", { "--dhcp-start", "10.0.2.2" } },
    { "--fd=3 --dns=nonsense", { "--dns", "nonsense" } },
    { "--fd=3 --host6=fd00::2", { "--host6", "fd00::2" } },
    { "--fd=3 --dns6=10.0.2.3", { "--dns6", "10.0.2.3" } },
    { "--fd=3 --disable-ipv4 --disable-ipv6", { "--disable-ipv4", "--disable-ipv6" } },
    { "--fd=3 --disable-ipv4 --net=10.0.2.0/24", { "--disable-ipv4", "--net" } },
    { "--fd=3 --disable-ipv6 --net6=fec0::/64", { "--disable-ipv6", "--net6" } },
    { "--fd=3 --mtu=65521", { "--mtu", "65521" } },
    { "--fd=3 --mtu=67", { "--mtu", "67" } },
    { "--fd=3 --mtu=1500x", { "--mtu", "1500x" } },
    { "--fd=3 --hostfwd=sctp::1-:2", { "--hostfwd", "sctp::1-:2" } },
    { "--fd=3 --hostfwd=tcp::0-:22", { "--hostfwd", "tcp::0-:22" } },
    { "--fd=3 --hostfwd=tcp::2222", { "--hostfwd", "tcp::2222" } },
    { "--fd=3 --hostfwd=tcp:::1:2222-:22", { "--hostfwd", "brackets" } },
    { "--fd=3 --hostfwd=tcp::2222-:22 --hostfwd=tcp::2222-:23", { "--hostfwd", "tcp::2222-:23" } },
    { "--fd=3 --disable-ipv4 --hostfwd=tcp::2222-10.0.2.15:22", { "--hostfwd", "IPv4" } },
    { "--fd=3 --guestfwd=udp:10.0.2.100:53-unix:/x",
      { "--guestfwd", "udp:10.0.2.100:53-unix:/x" } },
    { "--fd=3 --guestfwd=tcp:10.0.2.100:80-unix:relative", { "--guestfwd", "absolute" } },
    { "--fd=3 --guestfwd=tcp:10.9.2.100:80-unix:/x", { "--guestfwd", "10.9.2.100" } },
    { "--fd=3 --dbus-address=unix:path=/x", { "--dbus-address", "--dbus-id" } },
    { "--fd=3 --dbus-id=x", { "--dbus-id", "--dbus-address" } },
    { "--fd=3 --dbus-incoming", { "--dbus-incoming", "--dbus-address" } },
    { "--fd=3 --dbus-control-uid=1000", { "--dbus-control-uid", "--dbus-address" } },
    { "--fd=3 --dbus-address=unix:path=/x --dbus-id=x --dbus-control-uid=root",
      { "--dbus-control-uid", "'root'" } },
    { "--fd=3 --dbus-address=unix:path=/x --dbus-id=x --dbus-control-uid=4294967295",
      { "--dbus-control-uid", "4294967295" } },
    { "--fd=3 --hostname=", { "--hostname", "empty" } },
    { "--fd=3 --hostname='a b'", { "--hostname", "'a b'" } },
    { "--fd=3 --tftp-bootfile="
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      { "--tftp-bootfile", "127" } },
};

static void test_bad(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        const BadCase *c = &bad_cases[i];
        g_auto(HelperConfig) cfg = { 0 };
        g_autoptr(GError) error = NULL;

        g_test_message("line: %s", c->line);
        g_assert_false(parse_line(c->line, &cfg, &error));
        g_assert_nonnull(error);
        g_test_message("  -> %s", error->message);
        g_assert_null(strchr(error->message, '\n'));
        for (int j = 0; j < 2; j++) {
            if (c->must_mention[j])
                g_assert_nonnull(strstr(error->message, c->must_mention[j]));
        }
    }
}

static void test_overlong(void)
{
    g_auto(HelperConfig) cfg = { 0 };
    g_autoptr(GError) error = NULL;
    g_autofree char *big = g_strnfill(65536, 'a');
    g_autofree char *arg = g_strconcat("--hostname=", big, NULL);
    char *argv[] = { "slirp-helper", "--fd=3", arg, NULL };

    options_init(&cfg);
    g_assert_false(options_parse(&cfg, 3, argv, &error));
    g_assert_nonnull(strstr(error->message, "--hostname"));
}

static void test_capabilities(void)
{
    g_autofree char *json = options_capabilities_json();
    static const char *const expected[] = { "ipv4",     "ipv6",    "tftp", "dbus-address",
                                            "migrate",  "restrict", "hostfwd", "mtu",
                                            "confine" };

    g_assert_true(g_str_has_prefix(json, "{\"type\": \"slirp-helper\", \"features\": ["));
    g_assert_true(g_str_has_suffix(json, "]}\n"));
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        g_autofree char *quoted = g_strdup_printf("\"%s\"", expected[i]);

        g_assert_nonnull(strstr(json, quoted));
    }
    /* meaningless under libvirt's daemonize: must never be advertised */
    g_assert_null(strstr(json, "exit-with-parent"));
    g_assert_null(strstr(json, "\"dhcp\""));
    for (int i = 0; i < HELPER_FEATURE_LAST; i++)
        g_assert_nonnull(strstr(json, options_feature_name(i)));
}

typedef struct {
    const char *addr;
    const char *net;
    guint prefix_len;
    bool inside;
} In6Case;

/* prefix lengths that are not multiples of 8 decide on a bit inside a byte */
static const In6Case in6_cases[] = {
    { "fd00:0:0:f::5", "fd00::", 60, true },
    { "fd00:0:0:10::5", "fd00::", 60, false }, /* bit 60 differs, bytes 0-6 equal */
    { "fd00:0:0:8::1", "fd00::", 60, true },
    { "fd00:0:0:8::1", "fd00::", 61, false }, /* bit 61 differs */
    { "fd00:0:0:7::1", "fd00::", 61, true },
    { "fd00::1", "fd00::", 127, true }, /* only the last bit is the host's */
    { "fd00::2", "fd00::", 127, false },
    { "fd00::3", "fd00::2", 127, true },
    { "fd00::1", "fd00::", 128, false },
    { "fd00::1", "fd00::1", 128, true },
    { "::1", "fd00::", 0, true },
    { "ffff::", "fd00::", 0, true },
    { "fd00::1", "fd00::1", 200, true }, /* beyond 128 counts as 128 */
    { "fd00::2", "fd00::1", 200, false },
    { "fec0::15", "fec0::", 64, true },
    { "fec0:0:0:1::15", "fec0::", 64, false },
    { "fd80::", "fd00::", 8, true },
    { "fd80::", "fd00::", 9, false },
    { "fd00:0:1::", "fd00::", 47, true },
    { "fd00:0:1::", "fd00::", 48, false },
};

static void test_in6_prefix(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(in6_cases); i++) {
        const In6Case *c = &in6_cases[i];
        struct in6_addr addr, net;

        g_assert_cmpint(inet_pton(AF_INET6, c->addr, &addr), ==, 1);
        g_assert_cmpint(inet_pton(AF_INET6, c->net, &net), ==, 1);
        if (options_in6_in_prefix(&addr, &net, c->prefix_len) != c->inside) {
            g_test_message("%s in %s/%u: expected %s", c->addr, c->net, c->prefix_len,
                           c->inside ? "inside" : "outside");
            g_test_fail();
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/options/good", test_good);
    g_test_add_func("/options/good-misc", test_good_misc);
    g_test_add_func("/options/print-only", test_print_only);
    g_test_add_func("/options/bad", test_bad);
    g_test_add_func("/options/overlong", test_overlong);
    g_test_add_func("/options/capabilities", test_capabilities);
    g_test_add_func("/options/in6-prefix", test_in6_prefix);
    return g_test_run();
}
