/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * options.c - command line -> HelperConfig; validation; --print-capabilities
 *
 * Theory of operation: getopt_long() collects raw values into an OptionsRaw
 * table indexed by option, refusing unknown options, missing values and
 * repeats of options that may appear once.  options_resolve() then turns the
 * raw strings into a HelperConfig: the network options depend on each other
 * (--host defaults to the second address of --net, --mask completes a --net
 * without prefix), so they are resolved together, after parsing, in a fixed
 * order.  Every failure is one GError whose message names the option and the
 * value; main() prints it as one line and exits 1.  Nothing here touches a
 * file descriptor or the file system: checking that --fd is a socket is
 * transport.c's job.
 *
 * Defaults match QEMU's -netdev user: 10.0.2.0/24 with the host at .2, DNS
 * at .3 and the first DHCP lease at .15; IPv6 prefix fec0::/64 with the
 * host at ::2 and DNS at ::3.
 */
#include "options.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper-config.h"

static const char *const options_feature_names[] = {
    [HELPER_FEATURE_IPV4] = "ipv4",
    [HELPER_FEATURE_IPV6] = "ipv6",
    [HELPER_FEATURE_TFTP] = "tftp",
    [HELPER_FEATURE_DBUS_ADDRESS] = "dbus-address",
    [HELPER_FEATURE_MIGRATE] = "migrate",
    [HELPER_FEATURE_RESTRICT] = "restrict",
    [HELPER_FEATURE_HOSTFWD] = "hostfwd",
    [HELPER_FEATURE_GUESTFWD] = "guestfwd",
    [HELPER_FEATURE_STREAM] = "stream",
    [HELPER_FEATURE_SOCKET_PATH] = "socket-path",
    [HELPER_FEATURE_DBUS_CONTROL] = "dbus-control",
    [HELPER_FEATURE_MTU] = "mtu",
    [HELPER_FEATURE_CONFINE] = "confine",
};
G_STATIC_ASSERT(G_N_ELEMENTS(options_feature_names) == HELPER_FEATURE_LAST);

typedef enum {
    OPT_PRINT_CAPABILITIES,
    OPT_HELP,
    OPT_VERSION,
    OPT_DEBUG,
    OPT_FD,
    OPT_SOCKET_PATH,
    OPT_NET,
    OPT_MASK,
    OPT_NET6,
    OPT_PREFIX_IPV6,
    OPT_PREFIX_LENGTH_IPV6,
    OPT_DISABLE_IPV4,
    OPT_DISABLE_IPV6,
    OPT_RESTRICT,
    OPT_HOST,
    OPT_HOST6,
    OPT_DHCP_START,
    OPT_DNS,
    OPT_DNS6,
    OPT_DNS_SEARCH,
    OPT_DOMAINNAME,
    OPT_HOSTNAME,
    OPT_TFTP,
    OPT_TFTP_BOOTFILE,
    OPT_TFTP_SERVER_NAME,
    OPT_MTU,
    OPT_DISABLE_DHCP,
    OPT_DISABLE_DNS,
    OPT_DISABLE_HOST_LOOPBACK,
    OPT_HOSTFWD,
    OPT_GUESTFWD,
    OPT_DBUS_ADDRESS,
    OPT_DBUS_ID,
    OPT_DBUS_INCOMING,
    OPT_DBUS_CONTROL_UID,
    OPT_LOG_FILE,
    OPT_EXIT_WITH_PARENT,
    OPT_SANDBOX,
    OPT_SECCOMP,
    OPT_RUNAS,
    OPT_MAX_FDS,
    OPT_DROP_FRAGMENTS,
    OPT_REQUIRE_CONFINEMENT,
    OPT_LAST,
} OptionId;

/* The canonical spelling of each option, used in error messages. */
static const char *const options_names[] = {
    [OPT_PRINT_CAPABILITIES] = "--print-capabilities",
    [OPT_HELP] = "--help",
    [OPT_VERSION] = "--version",
    [OPT_DEBUG] = "--debug",
    [OPT_FD] = "--fd",
    [OPT_SOCKET_PATH] = "--socket-path",
    [OPT_NET] = "--net",
    [OPT_MASK] = "--mask",
    [OPT_NET6] = "--net6",
    [OPT_PREFIX_IPV6] = "--prefix-ipv6",
    [OPT_PREFIX_LENGTH_IPV6] = "--prefix-length-ipv6",
    [OPT_DISABLE_IPV4] = "--disable-ipv4",
    [OPT_DISABLE_IPV6] = "--disable-ipv6",
    [OPT_RESTRICT] = "--restrict",
    [OPT_HOST] = "--host",
    [OPT_HOST6] = "--host6",
    [OPT_DHCP_START] = "--dhcp-start",
    [OPT_DNS] = "--dns",
    [OPT_DNS6] = "--dns6",
    [OPT_DNS_SEARCH] = "--dns-search",
    [OPT_DOMAINNAME] = "--domainname",
    [OPT_HOSTNAME] = "--hostname",
    [OPT_TFTP] = "--tftp",
    [OPT_TFTP_BOOTFILE] = "--tftp-bootfile",
    [OPT_TFTP_SERVER_NAME] = "--tftp-server-name",
    [OPT_MTU] = "--mtu",
    [OPT_DISABLE_DHCP] = "--disable-dhcp",
    [OPT_DISABLE_DNS] = "--disable-dns",
    [OPT_DISABLE_HOST_LOOPBACK] = "--disable-host-loopback",
    [OPT_HOSTFWD] = "--hostfwd",
    [OPT_GUESTFWD] = "--guestfwd",
    [OPT_DBUS_ADDRESS] = "--dbus-address",
    [OPT_DBUS_ID] = "--dbus-id",
    [OPT_DBUS_INCOMING] = "--dbus-incoming",
    [OPT_DBUS_CONTROL_UID] = "--dbus-control-uid",
    [OPT_LOG_FILE] = "--log-file",
    [OPT_EXIT_WITH_PARENT] = "--exit-with-parent",
    [OPT_SANDBOX] = "--sandbox",
    [OPT_SECCOMP] = "--seccomp",
    [OPT_RUNAS] = "--runas",
    [OPT_MAX_FDS] = "--max-fds",
    [OPT_DROP_FRAGMENTS] = "--drop-fragments",
    [OPT_REQUIRE_CONFINEMENT] = "--require-confinement",
};
G_STATIC_ASSERT(G_N_ELEMENTS(options_names) == OPT_LAST);

/*
 * getopt_long table.  Aliases keep the spellings of Debian's Rust
 * libslirp-helper working, so scripts written for it run unchanged.
 */
static const struct option options_long[] = {
    { "print-capabilities", no_argument, NULL, OPT_PRINT_CAPABILITIES },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { "debug", no_argument, NULL, OPT_DEBUG },
    { "fd", required_argument, NULL, OPT_FD },
    { "socket-path", required_argument, NULL, OPT_SOCKET_PATH },
    { "net", required_argument, NULL, OPT_NET },
    { "mask", required_argument, NULL, OPT_MASK },
    { "net6", required_argument, NULL, OPT_NET6 },
    { "prefix-ipv6", required_argument, NULL, OPT_PREFIX_IPV6 },
    { "prefix-length-ipv6", required_argument, NULL, OPT_PREFIX_LENGTH_IPV6 },
    { "disable-ipv4", no_argument, NULL, OPT_DISABLE_IPV4 },
    { "disable-ipv6", no_argument, NULL, OPT_DISABLE_IPV6 },
    { "restrict", no_argument, NULL, OPT_RESTRICT },
    { "host", required_argument, NULL, OPT_HOST },
    { "host6", required_argument, NULL, OPT_HOST6 },
    { "host-ipv6", required_argument, NULL, OPT_HOST6 },
    { "dhcp-start", required_argument, NULL, OPT_DHCP_START },
    { "dns", required_argument, NULL, OPT_DNS },
    { "dhcp-dns", required_argument, NULL, OPT_DNS },
    { "dns6", required_argument, NULL, OPT_DNS6 },
    { "dns-ipv6", required_argument, NULL, OPT_DNS6 },
    { "dns-search", required_argument, NULL, OPT_DNS_SEARCH },
    { "domainname", required_argument, NULL, OPT_DOMAINNAME },
    { "hostname", required_argument, NULL, OPT_HOSTNAME },
    { "tftp", required_argument, NULL, OPT_TFTP },
    { "tftp-bootfile", required_argument, NULL, OPT_TFTP_BOOTFILE },
    { "dhcp-bootfile", required_argument, NULL, OPT_TFTP_BOOTFILE },
    { "tftp-server-name", required_argument, NULL, OPT_TFTP_SERVER_NAME },
    { "tftp-name", required_argument, NULL, OPT_TFTP_SERVER_NAME },
    { "mtu", required_argument, NULL, OPT_MTU },
    { "disable-dhcp", no_argument, NULL, OPT_DISABLE_DHCP },
    { "disable-dns", no_argument, NULL, OPT_DISABLE_DNS },
    { "disable-host-loopback", no_argument, NULL, OPT_DISABLE_HOST_LOOPBACK },
    { "hostfwd", required_argument, NULL, OPT_HOSTFWD },
    { "guestfwd", required_argument, NULL, OPT_GUESTFWD },
    { "dbus-address", required_argument, NULL, OPT_DBUS_ADDRESS },
    { "dbus-id", required_argument, NULL, OPT_DBUS_ID },
    { "dbus-incoming", no_argument, NULL, OPT_DBUS_INCOMING },
    { "dbus-control-uid", required_argument, NULL, OPT_DBUS_CONTROL_UID },
    { "log-file", required_argument, NULL, OPT_LOG_FILE },
    { "exit-with-parent", no_argument, NULL, OPT_EXIT_WITH_PARENT },
    { "sandbox", required_argument, NULL, OPT_SANDBOX },
    { "seccomp", required_argument, NULL, OPT_SECCOMP },
    { "runas", required_argument, NULL, OPT_RUNAS },
    { "max-fds", required_argument, NULL, OPT_MAX_FDS },
    { "drop-fragments", no_argument, NULL, OPT_DROP_FRAGMENTS },
    { "require-confinement", required_argument, NULL, OPT_REQUIRE_CONFINEMENT },
    { NULL, 0, NULL, 0 },
};

/* Raw values as given: the last value of each option, plus repeat lists. */
typedef struct {
    const char *value[OPT_LAST];
    bool seen[OPT_LAST];
    GPtrArray *repeated[OPT_LAST];
} OptionsRaw;

static bool options_repeatable(OptionId id)
{
    return id == OPT_HOSTFWD || id == OPT_GUESTFWD || id == OPT_DNS_SEARCH;
}

static const char *const options_seccomp_names[] = {
    [HELPER_SECCOMP_KILL] = "kill",
    [HELPER_SECCOMP_LOG] = "log",
    [HELPER_SECCOMP_OFF] = "off",
};
G_STATIC_ASSERT(G_N_ELEMENTS(options_seccomp_names) == HELPER_SECCOMP_LAST);

static const char *const options_confinement_names[] = {
    [HELPER_CONFINEMENT_NONE] = "none",
    [HELPER_CONFINEMENT_MINIMAL] = "minimal",
    [HELPER_CONFINEMENT_FILESYSTEM] = "filesystem",
    [HELPER_CONFINEMENT_FULL] = "full",
};
G_STATIC_ASSERT(G_N_ELEMENTS(options_confinement_names) == HELPER_CONFINEMENT_LAST);

/**
 * options_confinement_name() - the --require-confinement spelling of a level
 * @level: the level
 *
 * Return: a static string
 */
const char *options_confinement_name(HelperConfinement level)
{
    return options_confinement_names[level];
}

/**
 * options_seccomp_mode_name() - the --seccomp spelling of a mode
 * @mode: the mode
 *
 * Return: a static string
 */
const char *options_seccomp_mode_name(HelperSeccompMode mode)
{
    return options_seccomp_names[mode];
}

/**
 * options_feature_name() - the capabilities name of a feature
 * @feature: the feature
 *
 * Return: a static string
 */
const char *options_feature_name(HelperFeature feature)
{
    return options_feature_names[feature];
}

/**
 * options_capabilities_json() - the --print-capabilities document
 *
 * Deliberately builds the text by hand: printing capabilities must not start
 * any GLib machinery (libvirt runs it on every domain start).
 *
 * Return: newly allocated JSON text with a final newline
 */
char *options_capabilities_json(void)
{
    GString *out = g_string_sized_new(256);

    g_string_append(out, "{\"type\": \"slirp-helper\", \"features\": [");
    for (int i = 0; i < HELPER_FEATURE_LAST; i++)
        g_string_append_printf(out, "%s\"%s\"", i ? ", " : "", options_feature_names[i]);
    g_string_append(out, "]}\n");
    return g_string_free(out, FALSE);
}

/**
 * options_usage() - the --help text
 *
 * Return: a static string
 */
const char *options_usage(void)
{
    return "Usage: slirp-helper (--fd=N | --socket-path=PATH) [OPTION...]\n"
           "       slirp-helper --print-capabilities | --help | --version\n"
           "\n"
           "User-mode networking (libslirp) for one QEMU NIC.\n"
           "\n"
           "  --fd=N                    inherited AF_UNIX socket to QEMU (datagram or stream)\n"
           "  --socket-path=PATH        listen on PATH and serve one QEMU -netdev stream\n"
           "  --net=ADDR/PREFIX         IPv4 network (default 10.0.2.0/24); or --net=ADDR --mask=MASK\n"
           "  --net6=ADDR/PREFIX        IPv6 prefix (default fec0::/64); or --prefix-ipv6=ADDR\n"
           "                            --prefix-length-ipv6=N\n"
           "  --disable-ipv4, --disable-ipv6\n"
           "  --host=ADDR, --host6=ADDR  the host's address in the guest network (.2, ::2)\n"
           "  --dhcp-start=ADDR         first DHCP lease (.15)\n"
           "  --dns=ADDR, --dns6=ADDR   DNS proxy address (.3, ::3)\n"
           "  --dns-search=DOMAIN       DHCP search domain (repeatable)\n"
           "  --domainname=NAME, --hostname=NAME\n"
           "  --tftp=DIR, --tftp-bootfile=FILE, --tftp-server-name=NAME\n"
           "  --mtu=N                   68..65520 (default 1500)\n"
           "  --restrict                isolate the guest: only forwards reach it or leave it\n"
           "  --disable-dhcp, --disable-dns, --disable-host-loopback\n"
           "  --hostfwd=PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT  (repeatable)\n"
           "  --guestfwd=tcp:[GUESTADDR]:GUESTPORT-unix:PATH             (repeatable)\n"
           "  --dbus-address=ADDR --dbus-id=ID [--dbus-incoming]\n"
           "  --dbus-control-uid=UID    this user may use the control interface, as root may\n"
           "  --sandbox=on|off          confine the helper once started (default on; off only\n"
           "                            for debugging)\n"
           "  --seccomp=kill|log|off    a system call outside the allowlist kills the helper\n"
           "                            (default), or fails and is logged by name\n"
           "  --runas=USER[:GROUP]      run as this user when started as root (default nobody)\n"
           "  --max-fds=N               descriptor limit once confined, 64..1048576 (default 1024);\n"
           "                            new guest flows are refused near it\n"
           "  --drop-fragments          drop IPv4 fragments from the guest\n"
           "  --require-confinement=full|filesystem|minimal\n"
           "                            exit rather than run less confined (default: warn)\n"
           "  --log-file=PATH           log here once running (default: syslog)\n"
           "  --debug                   log debug messages\n";
}

/**
 * options_init() - fill @cfg with defaults before parsing
 * @cfg: configuration to initialise
 */
void options_init(HelperConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->fd = -1;
    cfg->ipv4 = true;
    cfg->ipv6 = true;
    cfg->mtu = 1500;
    cfg->sandbox = true;
    cfg->seccomp = HELPER_SECCOMP_KILL;
    cfg->max_fds = OPTIONS_MAX_FDS_DEFAULT;
    cfg->dbus_control_uid = -1;
    cfg->hostfwds = g_array_new(FALSE, TRUE, sizeof(HostForward));
    cfg->guestfwds = g_array_new(FALSE, TRUE, sizeof(GuestForward));
    g_array_set_clear_func(cfg->guestfwds, (GDestroyNotify)forward_guest_clear);
}

/**
 * options_clear() - release everything @cfg owns
 * @cfg: configuration; may be cleared twice
 */
void options_clear(HelperConfig *cfg)
{
    g_clear_pointer(&cfg->socket_path, g_free);
    g_clear_pointer(&cfg->dns_search, g_strfreev);
    g_clear_pointer(&cfg->domainname, g_free);
    g_clear_pointer(&cfg->hostname, g_free);
    g_clear_pointer(&cfg->tftp_dir, g_free);
    g_clear_pointer(&cfg->tftp_bootfile, g_free);
    g_clear_pointer(&cfg->tftp_server_name, g_free);
    g_clear_pointer(&cfg->hostfwds, g_array_unref);
    g_clear_pointer(&cfg->guestfwds, g_array_unref);
    g_clear_pointer(&cfg->dbus_address, g_free);
    g_clear_pointer(&cfg->dbus_id, g_free);
    g_clear_pointer(&cfg->log_file, g_free);
    g_clear_pointer(&cfg->runas, g_free);
}

static void options_raw_clear(OptionsRaw *raw)
{
    for (int i = 0; i < OPT_LAST; i++)
        g_clear_pointer(&raw->repeated[i], g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(OptionsRaw, options_raw_clear)

static bool G_GNUC_PRINTF(4, 5)
options_bad(GError **error, OptionId id, const char *value, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "Invalid %s value '%s': %s", options_names[id], value, why);
    return false;
}

static bool options_conflict(GError **error, OptionId a, OptionId b)
{
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                "Options '%s' and '%s' cannot be used together", options_names[a],
                options_names[b]);
    return false;
}

/**
 * options_parse_uint() - strict decimal parse
 * @s: text, digits only
 * @max: largest accepted value
 * @out: set on success
 *
 * Return: true if @s is a decimal number no larger than @max
 */
static bool options_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s || strlen(s) > 10)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool options_parse_in4(const char *s, struct in_addr *out)
{
    return inet_pton(AF_INET, s, out) == 1;
}

static bool options_parse_in6(const char *s, struct in6_addr *out)
{
    return inet_pton(AF_INET6, s, out) == 1;
}

static guint32 options_prefix_mask(guint prefix)
{
    return prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
}

/**
 * options_split_prefix() - split "ADDR/PREFIX"
 * @value: the text
 * @addr: set to a new string with the address part
 * @prefix: set to the prefix text, or NULL if there is no '/'
 */
static void options_split_prefix(const char *value, char **addr, const char **prefix)
{
    const char *slash = strchr(value, '/');

    *addr = slash ? g_strndup(value, (size_t)(slash - value)) : g_strdup(value);
    *prefix = slash ? slash + 1 : NULL;
}

/**
 * options_check_in_net4() - validate an IPv4 address option against the network
 * @cfg: configuration with net and mask resolved
 * @id: the option, for the message
 * @value: the option's text
 * @addr: the parsed address
 * @error: set if @addr is outside the network or is its network or broadcast address
 *
 * Return: true if @addr is a usable host address of the network
 */
static bool options_check_in_net4(const HelperConfig *cfg, OptionId id, const char *value,
                                  struct in_addr addr, GError **error)
{
    guint32 a = addr.s_addr;

    if ((a & cfg->mask.s_addr) != cfg->net.s_addr)
        return options_bad(error, id, value, "not inside the guest network");
    if (a == cfg->net.s_addr || a == (cfg->net.s_addr | ~cfg->mask.s_addr))
        return options_bad(error, id, value,
                           "the network and broadcast addresses cannot be used");
    return true;
}

/**
 * options_in6_in_prefix() - whether an IPv6 address lies inside a prefix
 * @addr: the address
 * @net: the prefix's address (its bits after @prefix_len are ignored)
 * @prefix_len: the prefix length, 0 to 128; larger values count as 128
 *
 * Compares exactly the first @prefix_len bits, also when @prefix_len is not
 * a multiple of 8 (fd00:0:0:10:: is outside fd00::/60).  The one test of
 * IPv6 membership in the guest prefix: --host6 and --dns6 here, forward
 * guest addresses in netstack.c.  No I/O.
 *
 * Return: true if the first @prefix_len bits of @addr and @net are equal
 */
bool options_in6_in_prefix(const struct in6_addr *addr, const struct in6_addr *net,
                           guint prefix_len)
{
    guint bits = MIN(prefix_len, 128);
    guint whole = bits / 8;
    guint8 mask = (guint8)(0xff00 >> (bits % 8));

    if (memcmp(addr->s6_addr, net->s6_addr, whole) != 0)
        return false;
    return whole == 16 || ((addr->s6_addr[whole] ^ net->s6_addr[whole]) & mask) == 0;
}

/**
 * options_resolve_ipv4() - turn the raw IPv4 options into cfg fields
 * @cfg: configuration being built
 * @raw: the raw values
 * @error: set on failure
 *
 * Return: true on success
 */
static bool options_resolve_ipv4(HelperConfig *cfg, const OptionsRaw *raw, GError **error)
{
    static const OptionId ipv4_opts[] = { OPT_NET, OPT_MASK, OPT_HOST, OPT_DHCP_START, OPT_DNS };
    const char *net = raw->value[OPT_NET];
    const char *mask = raw->value[OPT_MASK];
    struct in_addr addr;
    unsigned long prefix = 24;

    if (!cfg->ipv4) {
        for (size_t i = 0; i < G_N_ELEMENTS(ipv4_opts); i++) {
            if (raw->seen[ipv4_opts[i]])
                return options_conflict(error, OPT_DISABLE_IPV4, ipv4_opts[i]);
        }
        return true;
    }

    if (mask && !net) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "Option '--mask' needs '--net'");
        return false;
    }

    if (net) {
        g_autofree char *addr_text = NULL;
        const char *prefix_text;

        options_split_prefix(net, &addr_text, &prefix_text);
        if (!options_parse_in4(addr_text, &addr))
            return options_bad(error, OPT_NET, net, "expected an IPv4 ADDRESS/PREFIX");
        if (prefix_text) {
            if (mask)
                return options_conflict(error, OPT_NET, OPT_MASK);
            if (!options_parse_uint(prefix_text, 32, &prefix) || prefix < 1 || prefix > 30)
                return options_bad(error, OPT_NET, net, "the prefix must be 1 to 30");
        } else if (mask) {
            struct in_addr m;
            guint32 host_order;

            if (!options_parse_in4(mask, &m))
                return options_bad(error, OPT_MASK, mask, "expected a dotted IPv4 netmask");
            host_order = ntohl(m.s_addr);
            if (host_order & (~host_order >> 1))
                return options_bad(error, OPT_MASK, mask, "the mask bits must be contiguous");
            prefix = (unsigned long)__builtin_popcount(host_order);
            if (prefix < 1 || prefix > 30)
                return options_bad(error, OPT_MASK, mask, "the prefix must be 1 to 30");
        }
    } else {
        inet_pton(AF_INET, "10.0.2.0", &addr);
    }

    cfg->prefix = (guint)prefix;
    cfg->mask.s_addr = options_prefix_mask(cfg->prefix);
    cfg->net.s_addr = addr.s_addr & cfg->mask.s_addr;

    struct {
        OptionId id;
        struct in_addr *field;
        guint32 offset;
    } addrs[] = {
        { OPT_HOST, &cfg->host, 2 },
        { OPT_DNS, &cfg->dns, 3 },
        { OPT_DHCP_START, &cfg->dhcp_start, 15 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(addrs); i++) {
        const char *value = raw->value[addrs[i].id];
        g_autofree char *shown = NULL;

        if (value) {
            if (!options_parse_in4(value, addrs[i].field))
                return options_bad(error, addrs[i].id, value, "expected an IPv4 address");
        } else {
            char buf[INET_ADDRSTRLEN];

            addrs[i].field->s_addr = htonl(ntohl(cfg->net.s_addr) + addrs[i].offset);
            inet_ntop(AF_INET, addrs[i].field, buf, sizeof(buf));
            shown = g_strdup_printf("%s (default for --net=%s)", buf, net ? net : "10.0.2.0/24");
            value = shown;
        }
        if (!options_check_in_net4(cfg, addrs[i].id, value, *addrs[i].field, error))
            return false;
    }
    if (cfg->host.s_addr == cfg->dns.s_addr)
        return options_conflict(error, OPT_HOST, OPT_DNS);
    if (cfg->dhcp_start.s_addr == cfg->host.s_addr)
        return options_bad(error, OPT_DHCP_START, raw->value[OPT_DHCP_START] ?
                           raw->value[OPT_DHCP_START] : "default", "equals the host address");
    if (cfg->dhcp_start.s_addr == cfg->dns.s_addr)
        return options_bad(error, OPT_DHCP_START, raw->value[OPT_DHCP_START] ?
                           raw->value[OPT_DHCP_START] : "default", "equals the DNS address");
    return true;
}

/**
 * options_resolve_ipv6() - turn the raw IPv6 options into cfg fields
 * @cfg: configuration being built
 * @raw: the raw values
 * @error: set on failure
 *
 * Return: true on success
 */
static bool options_resolve_ipv6(HelperConfig *cfg, const OptionsRaw *raw, GError **error)
{
    static const OptionId ipv6_opts[] = { OPT_NET6, OPT_PREFIX_IPV6, OPT_PREFIX_LENGTH_IPV6,
                                          OPT_HOST6, OPT_DNS6 };
    const char *net6 = raw->value[OPT_NET6];
    const char *prefix_addr = raw->value[OPT_PREFIX_IPV6];
    const char *prefix_len = raw->value[OPT_PREFIX_LENGTH_IPV6];
    struct in6_addr addr;
    unsigned long prefix = 64;

    if (!cfg->ipv6) {
        for (size_t i = 0; i < G_N_ELEMENTS(ipv6_opts); i++) {
            if (raw->seen[ipv6_opts[i]])
                return options_conflict(error, OPT_DISABLE_IPV6, ipv6_opts[i]);
        }
        return true;
    }

    if (net6 && prefix_addr)
        return options_conflict(error, OPT_NET6, OPT_PREFIX_IPV6);
    if (net6 && prefix_len)
        return options_conflict(error, OPT_NET6, OPT_PREFIX_LENGTH_IPV6);

    if (net6) {
        g_autofree char *addr_text = NULL;
        const char *prefix_text;

        options_split_prefix(net6, &addr_text, &prefix_text);
        if (!options_parse_in6(addr_text, &addr))
            return options_bad(error, OPT_NET6, net6, "expected an IPv6 ADDRESS/PREFIX");
        if (prefix_text &&
            (!options_parse_uint(prefix_text, 128, &prefix) || prefix < 1 || prefix > 126))
            return options_bad(error, OPT_NET6, net6, "the prefix must be 1 to 126");
    } else if (prefix_addr) {
        if (!options_parse_in6(prefix_addr, &addr))
            return options_bad(error, OPT_PREFIX_IPV6, prefix_addr, "expected an IPv6 address");
    } else {
        inet_pton(AF_INET6, "fec0::", &addr);
    }
    if (prefix_len &&
        (!options_parse_uint(prefix_len, 128, &prefix) || prefix < 1 || prefix > 126))
        return options_bad(error, OPT_PREFIX_LENGTH_IPV6, prefix_len, "must be 1 to 126");

    cfg->prefix6 = (guint)prefix;
    for (guint bit = cfg->prefix6; bit < 128; bit++)
        addr.s6_addr[bit / 8] &= (guint8) ~(0x80 >> (bit % 8));
    cfg->net6 = addr;

    struct {
        OptionId id;
        struct in6_addr *field;
        guint8 last;
    } addrs[] = {
        { OPT_HOST6, &cfg->host6, 2 },
        { OPT_DNS6, &cfg->dns6, 3 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(addrs); i++) {
        const char *value = raw->value[addrs[i].id];

        if (value) {
            if (!options_parse_in6(value, addrs[i].field))
                return options_bad(error, addrs[i].id, value, "expected an IPv6 address");
            if (!options_in6_in_prefix(addrs[i].field, &cfg->net6, cfg->prefix6))
                return options_bad(error, addrs[i].id, value, "not inside the IPv6 prefix");
        } else {
            *addrs[i].field = cfg->net6;
            addrs[i].field->s6_addr[15] |= addrs[i].last;
        }
    }
    if (memcmp(&cfg->host6, &cfg->dns6, sizeof(cfg->host6)) == 0)
        return options_conflict(error, OPT_HOST6, OPT_DNS6);
    return true;
}

/**
 * options_check_name() - validate a name-like string option
 * @id: the option
 * @value: its text
 * @max: longest accepted length in bytes
 * @error: set on failure
 *
 * Return: true if @value is non-empty, at most @max bytes and printable ASCII
 */
static bool options_check_name(OptionId id, const char *value, size_t max, GError **error)
{
    size_t len = strlen(value);

    if (len == 0)
        return options_bad(error, id, value, "must not be empty");
    if (len > max)
        return options_bad(error, id, value, "longer than %zu bytes", max);
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return options_bad(error, id, value, "only printable ASCII without spaces is allowed");
    }
    return true;
}

/**
 * options_resolve_confinement() - the sandbox options
 * @cfg: configuration being built
 * @raw: the raw values
 * @error: set on failure
 *
 * Only the syntax is checked here; sandbox.c looks the --runas names up.
 *
 * Return: true on success
 */
static bool options_resolve_confinement(HelperConfig *cfg, const OptionsRaw *raw, GError **error)
{
    const char *v;
    unsigned long n;

    if ((v = raw->value[OPT_SANDBOX])) {
        if (strcmp(v, "on") == 0)
            cfg->sandbox = true;
        else if (strcmp(v, "off") == 0)
            cfg->sandbox = false;
        else
            return options_bad(error, OPT_SANDBOX, v, "expected 'on' or 'off'");
    }
    if ((v = raw->value[OPT_SECCOMP])) {
        int i;

        for (i = 0; i < HELPER_SECCOMP_LAST; i++) {
            if (strcmp(v, options_seccomp_names[i]) == 0)
                break;
        }
        if (i == HELPER_SECCOMP_LAST)
            return options_bad(error, OPT_SECCOMP, v, "expected 'kill', 'log' or 'off'");
        cfg->seccomp = (HelperSeccompMode)i;
    }
    if ((v = raw->value[OPT_RUNAS])) {
        const char *colon = strchr(v, ':');

        if (v[0] == '\0' || v[0] == ':' || (colon && colon[1] == '\0') ||
            (colon && strchr(colon + 1, ':')))
            return options_bad(error, OPT_RUNAS, v, "expected USER or USER:GROUP");
        if (!options_check_name(OPT_RUNAS, v, OPTIONS_NAME_MAX, error))
            return false;
        cfg->runas = g_strdup(v);
    }
    if ((v = raw->value[OPT_MAX_FDS])) {
        if (!options_parse_uint(v, OPTIONS_MAX_FDS_MAX, &n) || n < OPTIONS_MAX_FDS_MIN)
            return options_bad(error, OPT_MAX_FDS, v, "must be %d to %d", OPTIONS_MAX_FDS_MIN,
                               OPTIONS_MAX_FDS_MAX);
        cfg->max_fds = (guint)n;
    }
    cfg->drop_fragments = raw->seen[OPT_DROP_FRAGMENTS];
    if ((v = raw->value[OPT_REQUIRE_CONFINEMENT])) {
        int i;

        for (i = HELPER_CONFINEMENT_MINIMAL; i < HELPER_CONFINEMENT_LAST; i++) {
            if (strcmp(v, options_confinement_names[i]) == 0)
                break;
        }
        if (i == HELPER_CONFINEMENT_LAST)
            return options_bad(error, OPT_REQUIRE_CONFINEMENT, v,
                               "expected 'full', 'filesystem' or 'minimal'");
        cfg->require_confinement = (HelperConfinement)i;
        if (cfg->seccomp == HELPER_SECCOMP_OFF)
            return options_conflict(error, OPT_SECCOMP, OPT_REQUIRE_CONFINEMENT);
    }
    if (!cfg->sandbox) {
        static const OptionId needs_sandbox[] = { OPT_SECCOMP, OPT_RUNAS,
                                                  OPT_REQUIRE_CONFINEMENT };

        for (size_t i = 0; i < G_N_ELEMENTS(needs_sandbox); i++) {
            if (raw->seen[needs_sandbox[i]])
                return options_conflict(error, OPT_SANDBOX, needs_sandbox[i]);
        }
        cfg->seccomp = HELPER_SECCOMP_OFF;
    }
    return true;
}

/**
 * options_absolute_path() - @path relative to the current directory made
 * absolute, in place
 * @path: an owned path; replaced if relative
 *
 * The sandbox pivots into a new root whose current directory is "/", so a
 * relative path would later name something else.
 */
static void options_absolute_path(char **path)
{
    if (*path && !g_path_is_absolute(*path)) {
        char *abs = g_canonicalize_filename(*path, NULL);

        g_free(*path);
        *path = abs;
    }
}

/**
 * options_resolve_paths() - make the paths the confined helper uses absolute
 * @cfg: configuration being built
 * @raw: the raw values, for the message
 * @error: set when --socket-path becomes too long
 *
 * Return: true on success
 */
static bool options_resolve_paths(HelperConfig *cfg, const OptionsRaw *raw, GError **error)
{
    options_absolute_path(&cfg->socket_path);
    if (cfg->socket_path && strlen(cfg->socket_path) >= 108)
        return options_bad(error, OPT_SOCKET_PATH, raw->value[OPT_SOCKET_PATH],
                           "'%s' is longer than 107 bytes", cfg->socket_path);
    options_absolute_path(&cfg->tftp_dir);
    for (guint i = 0; i < cfg->guestfwds->len; i++)
        options_absolute_path(&g_array_index(cfg->guestfwds, GuestForward, i).unix_path);
    return true;
}

/**
 * options_resolve() - build @cfg from the raw values
 * @cfg: configuration with defaults
 * @raw: the raw values
 * @error: set on failure
 *
 * Return: true on success
 */
static bool options_resolve(HelperConfig *cfg, const OptionsRaw *raw, GError **error)
{
    const char *v;
    unsigned long n;

    cfg->print_capabilities = raw->seen[OPT_PRINT_CAPABILITIES];
    cfg->show_help = raw->seen[OPT_HELP];
    cfg->show_version = raw->seen[OPT_VERSION];
    cfg->debug = raw->seen[OPT_DEBUG];
    if (cfg->print_capabilities || cfg->show_help || cfg->show_version)
        return true;

    if ((v = raw->value[OPT_FD])) {
        if (!options_parse_uint(v, INT_MAX, &n))
            return options_bad(error, OPT_FD, v, "expected a file descriptor number");
        if (n <= 2)
            return options_bad(error, OPT_FD, v, "standard input, output and error cannot be used");
        cfg->fd = (int)n;
    }
    if ((v = raw->value[OPT_SOCKET_PATH])) {
        if (v[0] == '\0' || strlen(v) >= 108)
            return options_bad(error, OPT_SOCKET_PATH, v, "must be 1 to 107 bytes long");
        cfg->socket_path = g_strdup(v);
    }
    if (cfg->fd >= 0 && cfg->socket_path)
        return options_conflict(error, OPT_FD, OPT_SOCKET_PATH);
    if (cfg->fd < 0 && !cfg->socket_path) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "One of '--fd' or '--socket-path' is required");
        return false;
    }

    cfg->ipv4 = !raw->seen[OPT_DISABLE_IPV4];
    cfg->ipv6 = !raw->seen[OPT_DISABLE_IPV6];
    if (!cfg->ipv4 && !cfg->ipv6)
        return options_conflict(error, OPT_DISABLE_IPV4, OPT_DISABLE_IPV6);
    if (!options_resolve_ipv4(cfg, raw, error) || !options_resolve_ipv6(cfg, raw, error))
        return false;

    cfg->restricted = raw->seen[OPT_RESTRICT];
    cfg->disable_dhcp = raw->seen[OPT_DISABLE_DHCP];
    cfg->disable_dns = raw->seen[OPT_DISABLE_DNS];
    cfg->disable_host_loopback = raw->seen[OPT_DISABLE_HOST_LOOPBACK];

    if ((v = raw->value[OPT_MTU])) {
        if (!options_parse_uint(v, OPTIONS_MTU_MAX, &n) || n < OPTIONS_MTU_MIN)
            return options_bad(error, OPT_MTU, v, "must be %d to %d", OPTIONS_MTU_MIN,
                               OPTIONS_MTU_MAX);
        cfg->mtu = (guint)n;
    }

    struct {
        OptionId id;
        char **field;
        size_t max;
    } names[] = {
        { OPT_DOMAINNAME, &cfg->domainname, OPTIONS_NAME_MAX },
        { OPT_HOSTNAME, &cfg->hostname, OPTIONS_NAME_MAX },
        { OPT_TFTP_SERVER_NAME, &cfg->tftp_server_name, OPTIONS_NAME_MAX },
        { OPT_TFTP_BOOTFILE, &cfg->tftp_bootfile, OPTIONS_BOOTFILE_MAX },
        { OPT_DBUS_ID, &cfg->dbus_id, OPTIONS_DBUS_ID_MAX },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if ((v = raw->value[names[i].id])) {
            if (!options_check_name(names[i].id, v, names[i].max, error))
                return false;
            *names[i].field = g_strdup(v);
        }
    }

    if ((v = raw->value[OPT_TFTP])) {
        if (v[0] == '\0')
            return options_bad(error, OPT_TFTP, v, "must name a directory");
        cfg->tftp_dir = g_strdup(v);
    }

    if (raw->repeated[OPT_DNS_SEARCH]) {
        GPtrArray *list = raw->repeated[OPT_DNS_SEARCH];

        for (guint i = 0; i < list->len; i++) {
            if (!options_check_name(OPT_DNS_SEARCH, list->pdata[i], OPTIONS_NAME_MAX, error))
                return false;
        }
        cfg->dns_search = g_new0(char *, list->len + 1);
        for (guint i = 0; i < list->len; i++)
            cfg->dns_search[i] = g_strdup(list->pdata[i]);
    }

    if (raw->repeated[OPT_HOSTFWD]) {
        GPtrArray *list = raw->repeated[OPT_HOSTFWD];

        for (guint i = 0; i < list->len; i++) {
            HostForward fwd;
            g_autoptr(GError) local = NULL;

            if (!forward_parse_host(list->pdata[i], &fwd, &local))
                return options_bad(error, OPT_HOSTFWD, list->pdata[i], "%s",
                                   local->message);
            if (fwd.guest.ss_family == AF_INET && !cfg->ipv4)
                return options_bad(error, OPT_HOSTFWD, list->pdata[i],
                                   "IPv4 guest address with --disable-ipv4");
            if (fwd.guest.ss_family == AF_INET6 && !cfg->ipv6)
                return options_bad(error, OPT_HOSTFWD, list->pdata[i],
                                   "IPv6 guest address with --disable-ipv6");
            for (guint j = 0; j < cfg->hostfwds->len; j++) {
                if (forward_host_same_listener(&g_array_index(cfg->hostfwds, HostForward, j), &fwd))
                    return options_bad(error, OPT_HOSTFWD, list->pdata[i],
                                       "the same host address and port is forwarded twice");
            }
            g_array_append_val(cfg->hostfwds, fwd);
        }
    }

    if (raw->repeated[OPT_GUESTFWD]) {
        GPtrArray *list = raw->repeated[OPT_GUESTFWD];

        if (!cfg->ipv4)
            return options_conflict(error, OPT_DISABLE_IPV4, OPT_GUESTFWD);
        for (guint i = 0; i < list->len; i++) {
            GuestForward fwd;
            g_autoptr(GError) local = NULL;

            if (!forward_parse_guest(list->pdata[i], &fwd, &local))
                return options_bad(error, OPT_GUESTFWD, list->pdata[i], "%s",
                                   local->message);
            g_array_append_val(cfg->guestfwds, fwd);
            if (fwd.addr.s_addr != 0 &&
                !options_check_in_net4(cfg, OPT_GUESTFWD, list->pdata[i], fwd.addr, error))
                return false;
        }
    }

    if ((v = raw->value[OPT_DBUS_ADDRESS])) {
        if (v[0] == '\0')
            return options_bad(error, OPT_DBUS_ADDRESS, v, "must not be empty");
        cfg->dbus_address = g_strdup(v);
    }
    if (cfg->dbus_address && !cfg->dbus_id) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "Option '--dbus-address' needs '--dbus-id'");
        return false;
    }
    if (cfg->dbus_id && !cfg->dbus_address) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "Option '--dbus-id' needs '--dbus-address'");
        return false;
    }
    cfg->dbus_incoming = raw->seen[OPT_DBUS_INCOMING];
    if (cfg->dbus_incoming && !cfg->dbus_address) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "Option '--dbus-incoming' needs '--dbus-address'");
        return false;
    }
    if ((v = raw->value[OPT_DBUS_CONTROL_UID])) {
        unsigned long uid;

        if (!options_parse_uint(v, G_MAXUINT32 - 1, &uid))
            return options_bad(error, OPT_DBUS_CONTROL_UID, v, "must be a numeric user id");
        if (!cfg->dbus_address) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                        "Option '--dbus-control-uid' needs '--dbus-address'");
            return false;
        }
        cfg->dbus_control_uid = (gint64)uid;
    }

    if (!options_resolve_confinement(cfg, raw, error) || !options_resolve_paths(cfg, raw, error))
        return false;

    if ((v = raw->value[OPT_LOG_FILE])) {
        if (v[0] == '\0')
            return options_bad(error, OPT_LOG_FILE, v, "must not be empty");
        cfg->log_file = g_strdup(v);
    }
    return true;
}

/**
 * options_parse() - parse the command line into @cfg
 * @cfg: initialised with options_init(); filled on success
 * @argc: argument count
 * @argv: arguments; not modified except for getopt's permutation
 * @error: set with a one-line message naming the option and value
 *
 * Return: true on success
 */
bool options_parse(HelperConfig *cfg, int argc, char **argv, GError **error)
{
    g_auto(OptionsRaw) raw = { 0 };
    int c;

    opterr = 0;
    optind = 0; /* GNU getopt: full re-initialisation, so tests can parse again */
    while ((c = getopt_long(argc, argv, ":h", options_long, NULL)) != -1) {
        OptionId id;

        if (c == 'h') {
            c = OPT_HELP;
        } else if (c == '?') {
            const char *arg = argv[optind - 1];

            if (strncmp(arg, "--", 2) != 0 && optopt && optopt != '?')
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                            "Unknown option '-%c'", optopt);
            else if (strchr(arg, '=') && strncmp(arg, "--", 2) == 0)
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                            "Unknown option or unexpected value in '%s'", arg);
            else
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                            "Unknown option '%s'", arg);
            return false;
        } else if (c == ':') {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "Option '%s' needs a value", argv[optind - 1]);
            return false;
        }
        id = (OptionId)c;
        if (raw.seen[id] && !options_repeatable(id)) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                        "Option '%s' given more than once", options_names[id]);
            return false;
        }
        raw.seen[id] = true;
        raw.value[id] = optarg;
        if (options_repeatable(id)) {
            if (!raw.repeated[id])
                raw.repeated[id] = g_ptr_array_new();
            g_ptr_array_add(raw.repeated[id], optarg);
        }
    }
    if (optind < argc) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "Unexpected argument '%s'", argv[optind]);
        return false;
    }
    return options_resolve(cfg, &raw, error);
}
