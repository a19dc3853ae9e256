/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * forward.h - port-forward specifications: parse, format, compare
 */
#pragma once

#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef enum {
    FORWARD_TCP,
    FORWARD_UDP,
    FORWARD_PROTO_LAST,
} ForwardProto;

/*
 * A host forward: connections to @host on the host reach @guest in the
 * guest network.  @host is AF_INET or AF_INET6 with its port set.  @guest
 * has family AF_UNSPEC when the spec left it empty: the netstack then picks
 * the first DHCP address (or the IPv6 any-address when IPv4 is disabled).
 */
typedef struct {
    ForwardProto proto;
    struct sockaddr_storage host;
    socklen_t host_len;
    struct sockaddr_storage guest;
    socklen_t guest_len;
} HostForward;

/*
 * A guest forward: TCP connections from the guest to @addr:@port (inside the
 * virtual network) reach the Unix socket @unix_path on the host.  An @addr
 * of 0.0.0.0 lets libslirp pick x.x.2.4 of the network, as QEMU does.
 */
typedef struct {
    struct in_addr addr;
    guint16 port;
    char *unix_path;
} GuestForward;

const char *forward_proto_name(ForwardProto proto);
bool forward_parse_host(const char *spec, HostForward *fwd, GError **error);
char *forward_format_host(const HostForward *fwd);
bool forward_host_same_listener(const HostForward *a, const HostForward *b);
char *forward_addr_string(const struct sockaddr *sa);
guint16 forward_addr_port(const struct sockaddr *sa);

bool forward_parse_guest(const char *spec, GuestForward *fwd, GError **error);
char *forward_format_guest(const GuestForward *fwd);
void forward_guest_clear(GuestForward *fwd);
