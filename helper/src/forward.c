/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * forward.c - port-forward specifications: parse, format, compare
 *
 * Spec strings come from the command line and from D-Bus callers, so they are
 * untrusted: everything here is length-checked, does no I/O and never
 * resolves host names.  The grammar follows QEMU's -netdev user where it
 * fits, with IPv6 addresses in brackets:
 *
 *   --hostfwd=PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 *       PROTO is tcp or udp (empty means tcp); an empty HOSTADDR is 0.0.0.0;
 *       an empty GUESTADDR is the guest's first DHCP address.
 *       Examples: tcp::2222-:22   udp:127.0.0.1:5353-10.0.2.15:53
 *                 tcp:[::1]:8080-[fec0::15]:80
 *   --guestfwd=tcp:[GUESTADDR]:GUESTPORT-unix:PATH
 *       GUESTADDR is an IPv4 address in the virtual network (empty: x.x.2.4)
 *       and PATH an absolute path to a Unix stream socket on the host.
 */
#include "forward.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

static const char *const forward_proto_names[] = {
    [FORWARD_TCP] = "tcp",
    [FORWARD_UDP] = "udp",
};
G_STATIC_ASSERT(G_N_ELEMENTS(forward_proto_names) == FORWARD_PROTO_LAST);

/**
 * forward_proto_name() - protocol name as written in specs
 * @proto: the protocol
 *
 * Return: "tcp" or "udp"
 */
const char *forward_proto_name(ForwardProto proto)
{
    return forward_proto_names[proto];
}

/**
 * forward_parse_port() - parse a decimal port number 1..65535
 * @s: the text (digits only)
 * @len: length of @s
 * @port: set on success
 *
 * Return: true if @s is a valid port
 */
static bool forward_parse_port(const char *s, size_t len, guint16 *port)
{
    unsigned long v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (guint16)v;
    return true;
}

/**
 * forward_parse_endpoint() - parse "[ADDR]:PORT" with ADDR empty, IPv4 or [IPv6]
 * @s: the text, not NUL-terminated at @len
 * @len: length of @s
 * @sa: filled with the address and port; family AF_UNSPEC if ADDR is empty
 * @sa_len: set to the sockaddr length (0 for AF_UNSPEC)
 *
 * Return: NULL on success, else a static description of what is wrong
 */
static const char *forward_parse_endpoint(const char *s, size_t len, struct sockaddr_storage *sa,
                                          socklen_t *sa_len)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *port;
    size_t addr_len;
    guint16 portnum;

    memset(sa, 0, sizeof(*sa));
    if (len > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', len);

        if (!end)
            return "missing ']' after IPv6 address";
        addr_len = (size_t)(end - s - 1);
        if ((size_t)(end - s) + 1 >= len || end[1] != ':')
            return "expected ':PORT' after ']'";
        port = end + 2;
        if (addr_len == 0 || addr_len >= sizeof(addr))
            return "bad IPv6 address";
        memcpy(addr, s + 1, addr_len);
        addr[addr_len] = '\0';
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
        if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
            return "bad IPv6 address";
        sin6->sin6_family = AF_INET6;
        *sa_len = sizeof(*sin6);
    } else {
        const char *colon = memrchr(s, ':', len);

        if (!colon)
            return "expected ADDRESS:PORT";
        addr_len = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(s, ':', addr_len))
            return "IPv6 addresses must be written in brackets";
        if (addr_len >= sizeof(addr))
            return "bad IPv4 address";
        memcpy(addr, s, addr_len);
        addr[addr_len] = '\0';
        if (addr_len == 0) {
            sa->ss_family = AF_UNSPEC;
            *sa_len = 0;
        } else {
            struct sockaddr_in *sin = (struct sockaddr_in *)sa;
            if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
                return "bad IPv4 address";
            sin->sin_family = AF_INET;
            *sa_len = sizeof(*sin);
        }
    }

    if (!forward_parse_port(port, (size_t)(s + len - port), &portnum))
        return "port must be a number from 1 to 65535";
    if (sa->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(portnum);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons(portnum);
    /* AF_UNSPEC keeps the port in the sockaddr_in layout */
    return NULL;
}

/**
 * forward_parse_proto() - split "PROTO:" off the front of @spec
 * @spec: the whole spec
 * @proto: set to the protocol
 * @rest: set to the text after the colon
 *
 * Return: true if PROTO is tcp, udp or empty (tcp)
 */
static bool forward_parse_proto(const char *spec, ForwardProto *proto, const char **rest)
{
    const char *colon = strchr(spec, ':');

    if (!colon)
        return false;
    if (colon == spec || (colon - spec == 3 && strncmp(spec, "tcp", 3) == 0))
        *proto = FORWARD_TCP;
    else if (colon - spec == 3 && strncmp(spec, "udp", 3) == 0)
        *proto = FORWARD_UDP;
    else
        return false;
    *rest = colon + 1;
    return true;
}

/**
 * forward_parse_host() - parse a --hostfwd spec
 * @spec: PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 * @fwd: filled on success
 * @error: G_OPTION_ERROR_BAD_VALUE saying what is wrong (the caller adds the spec)
 *
 * Return: true on success
 */
bool forward_parse_host(const char *spec, HostForward *fwd, GError **error)
{
    const char *rest;
    const char *dash;
    const char *why;

    memset(fwd, 0, sizeof(*fwd));
    if (!forward_parse_proto(spec, &fwd->proto, &rest)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "protocol must be tcp or udp");
        return false;
    }
    dash = strchr(rest, '-');
    if (!dash) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "expected HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT");
        return false;
    }
    why = forward_parse_endpoint(rest, (size_t)(dash - rest), &fwd->host, &fwd->host_len);
    if (why) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "host side: %s", why);
        return false;
    }
    if (fwd->host.ss_family == AF_UNSPEC) {
        /* QEMU's meaning of an empty host address: every IPv4 address */
        fwd->host.ss_family = AF_INET;
        fwd->host_len = sizeof(struct sockaddr_in);
    }
    why = forward_parse_endpoint(dash + 1, strlen(dash + 1), &fwd->guest, &fwd->guest_len);
    if (why) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "guest side: %s", why);
        return false;
    }
    /* libslirp 4.7 does not translate between families: an IPv4-to-IPv6
     * forward aborts it on the first connection (soassign_guest_addr_if_needed()
     * has no such case) and an IPv6-to-IPv4 one accepts connections that
     * never reach the guest.  An empty guest address takes the host's family. */
    if (fwd->guest.ss_family != AF_UNSPEC && fwd->guest.ss_family != fwd->host.ss_family) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "an %s host address cannot forward to an %s guest address",
                    fwd->host.ss_family == AF_INET ? "IPv4" : "IPv6",
                    fwd->guest.ss_family == AF_INET ? "IPv4" : "IPv6");
        return false;
    }
    return true;
}

/**
 * forward_addr_string() - numeric text of an address, without port
 * @sa: AF_INET or AF_INET6 address; anything else gives ""
 *
 * Return: newly allocated string
 */
char *forward_addr_string(const struct sockaddr *sa)
{
    char buf[INET6_ADDRSTRLEN] = "";

    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof(buf));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, sizeof(buf));
    return g_strdup(buf);
}

/**
 * forward_addr_port() - port of an address in host byte order
 * @sa: AF_INET, AF_INET6 or AF_UNSPEC (sockaddr_in layout)
 *
 * Return: the port
 */
guint16 forward_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

/**
 * forward_format_endpoint() - append "ADDR:PORT" in spec form to @out
 * @out: string being built
 * @sa: the endpoint; AF_UNSPEC prints an empty address
 */
static void forward_format_endpoint(GString *out, const struct sockaddr *sa)
{
    g_autofree char *addr = forward_addr_string(sa);

    if (sa->sa_family == AF_INET6)
        g_string_append_printf(out, "[%s]:%u", addr, forward_addr_port(sa));
    else
        g_string_append_printf(out, "%s:%u", addr, forward_addr_port(sa));
}

/**
 * forward_format_host() - canonical spec text of a host forward
 * @fwd: the forward
 *
 * Return: newly allocated string that forward_parse_host() reads back
 */
char *forward_format_host(const HostForward *fwd)
{
    GString *out = g_string_new(forward_proto_name(fwd->proto));

    g_string_append_c(out, ':');
    forward_format_endpoint(out, (const struct sockaddr *)&fwd->host);
    g_string_append_c(out, '-');
    forward_format_endpoint(out, (const struct sockaddr *)&fwd->guest);
    return g_string_free(out, FALSE);
}

/**
 * forward_host_same_listener() - whether two forwards listen on the same host socket
 * @a: one forward
 * @b: another forward
 *
 * Return: true if protocol, host address and host port are equal
 */
bool forward_host_same_listener(const HostForward *a, const HostForward *b)
{
    return a->proto == b->proto && a->host_len == b->host_len &&
           memcmp(&a->host, &b->host, a->host_len) == 0;
}

/**
 * forward_parse_guest() - parse a --guestfwd spec
 * @spec: tcp:[GUESTADDR]:GUESTPORT-unix:PATH
 * @fwd: filled on success; release with forward_guest_clear()
 * @error: G_OPTION_ERROR_BAD_VALUE saying what is wrong (the caller adds the spec)
 *
 * Return: true on success
 */
bool forward_parse_guest(const char *spec, GuestForward *fwd, GError **error)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    ForwardProto proto;
    const char *rest;
    const char *target;
    const char *why;

    memset(fwd, 0, sizeof(*fwd));
    if (!forward_parse_proto(spec, &proto, &rest) || proto != FORWARD_TCP) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "protocol must be tcp");
        return false;
    }
    target = strstr(rest, "-unix:");
    if (!target) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "expected GUESTADDR:GUESTPORT-unix:PATH");
        return false;
    }
    why = forward_parse_endpoint(rest, (size_t)(target - rest), &sa, &sa_len);
    if (!why && sa.ss_family == AF_INET6)
        why = "only IPv4 guest addresses are supported";
    if (why) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "guest side: %s", why);
        return false;
    }
    target += strlen("-unix:");
    if (target[0] != '/' || strlen(target) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "the socket path must be absolute and "
                    "shorter than 108 bytes");
        return false;
    }
    fwd->addr = ((struct sockaddr_in *)&sa)->sin_addr;
    fwd->port = forward_addr_port((struct sockaddr *)&sa);
    fwd->unix_path = g_strdup(target);
    return true;
}

/**
 * forward_format_guest() - canonical spec text of a guest forward
 * @fwd: the forward
 *
 * Return: newly allocated string
 */
char *forward_format_guest(const GuestForward *fwd)
{
    char addr[INET_ADDRSTRLEN] = "";

    if (fwd->addr.s_addr != 0)
        inet_ntop(AF_INET, &fwd->addr, addr, sizeof(addr));
    return g_strdup_printf("tcp:%s:%u-unix:%s", addr, fwd->port, fwd->unix_path);
}

/**
 * forward_guest_clear() - release what a GuestForward owns
 * @fwd: the forward
 */
void forward_guest_clear(GuestForward *fwd)
{
    g_clear_pointer(&fwd->unix_path, g_free);
}
