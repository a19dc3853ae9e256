/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * options.h - the command line as a validated HelperConfig
 */
#pragma once

#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>

#include "forward.h"

#define OPTIONS_MTU_MIN 68
#define OPTIONS_MTU_MAX 65520
#define OPTIONS_DBUS_ID_MAX 255
#define OPTIONS_NAME_MAX 255
#define OPTIONS_BOOTFILE_MAX 127
#define OPTIONS_MAX_FDS_MIN 64
#define OPTIONS_MAX_FDS_MAX 1048576
#define OPTIONS_MAX_FDS_DEFAULT 1024

typedef enum {
    HELPER_FEATURE_IPV4,
    HELPER_FEATURE_IPV6,
    HELPER_FEATURE_TFTP,
    HELPER_FEATURE_DBUS_ADDRESS,
    HELPER_FEATURE_MIGRATE,
    HELPER_FEATURE_RESTRICT,
    HELPER_FEATURE_HOSTFWD,
    HELPER_FEATURE_GUESTFWD,
    HELPER_FEATURE_STREAM,
    HELPER_FEATURE_SOCKET_PATH,
    HELPER_FEATURE_DBUS_CONTROL,
    HELPER_FEATURE_MTU,
    HELPER_FEATURE_CONFINE,
    HELPER_FEATURE_LAST,
} HelperFeature;

/* --seccomp: what a system call outside the allowlist does (seccomp.c) */
typedef enum {
    HELPER_SECCOMP_KILL, /* the process dies of SIGSYS (default) */
    HELPER_SECCOMP_LOG,  /* the call fails with ENOSYS and is named in the log */
    HELPER_SECCOMP_OFF,  /* no filter at all (debugging only) */
    HELPER_SECCOMP_LAST,
} HelperSeccompMode;

/* How much of the sandbox a helper ends up with (sandbox.c), weakest first:
 * --require-confinement refuses to run below the level it names. */
typedef enum {
    HELPER_CONFINEMENT_NONE,       /* --sandbox=off */
    HELPER_CONFINEMENT_MINIMAL,    /* limits, no capabilities, no-new-privileges, seccomp */
    HELPER_CONFINEMENT_FILESYSTEM, /* and the host file system hidden by Landlock */
    HELPER_CONFINEMENT_FULL,       /* namespaces, an empty root, never uid 0 */
    HELPER_CONFINEMENT_LAST,
} HelperConfinement;

typedef struct {
    /* actions that print and exit */
    bool print_capabilities;
    bool show_help;
    bool show_version;

    /* where frames come from */
    int fd;            /* -1 if not given */
    char *socket_path; /* NULL if not given */

    /* IPv4 */
    bool ipv4;
    struct in_addr net;
    struct in_addr mask;
    guint prefix;
    struct in_addr host;
    struct in_addr dhcp_start;
    struct in_addr dns;

    /* IPv6 */
    bool ipv6;
    struct in6_addr net6;
    guint prefix6;
    struct in6_addr host6;
    struct in6_addr dns6;

    /* services */
    bool restricted;
    bool disable_dhcp;
    bool disable_dns;
    bool disable_host_loopback;
    char **dns_search; /* NULL-terminated, NULL if none */
    char *domainname;
    char *hostname;
    char *tftp_dir;
    char *tftp_bootfile;
    char *tftp_server_name;
    guint mtu;

    /* forwards */
    GArray *hostfwds;  /* of HostForward */
    GArray *guestfwds; /* of GuestForward */

    /* D-Bus */
    char *dbus_address;
    char *dbus_id;
    bool dbus_incoming;
    gint64 dbus_control_uid; /* --dbus-control-uid, -1: none (only uid 0 controls) */

    /* confinement (sandbox.c, seccomp.c, prefilter.c) */
    bool sandbox;              /* --sandbox=on|off, default on */
    HelperSeccompMode seccomp; /* --seccomp=kill|log|off */
    char *runas;               /* --runas=USER[:GROUP], NULL: nobody */
    guint max_fds;             /* --max-fds: RLIMIT_NOFILE once confined */
    bool drop_fragments;       /* --drop-fragments: IPv4 fragments never reach libslirp */
    HelperConfinement require_confinement; /* --require-confinement, default none */

    /* diagnostics */
    char *log_file;
    bool debug;
} HelperConfig;

void options_init(HelperConfig *cfg);
void options_clear(HelperConfig *cfg);
bool options_parse(HelperConfig *cfg, int argc, char **argv, GError **error);
const char *options_feature_name(HelperFeature feature);
char *options_capabilities_json(void);
const char *options_seccomp_mode_name(HelperSeccompMode mode);
const char *options_confinement_name(HelperConfinement level);
const char *options_usage(void);
bool options_in6_in_prefix(const struct in6_addr *addr, const struct in6_addr *net,
                           guint prefix_len);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HelperConfig, options_clear)
