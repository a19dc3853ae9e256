/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * seccomp.h - the system call allowlist (see seccomp.c)
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "options.h"

/* What the filter needs to know about this helper (sandbox.c fills it in). */
typedef struct {
    HelperSeccompMode mode;
    int fd_floor;      /* every descriptor below it was inherited or is a placeholder */
    int qemu_fd;       /* --fd: inherited, below the floor, but written; -1 if none */
    int probe_fd;      /* the only descriptor fcntl(F_DUPFD_CLOEXEC) may copy */
    bool unix_sockets; /* --guestfwd: libslirp connects to Unix sockets on demand */
    bool unlink;       /* --socket-path: transport.c removes it at exit */
} SeccompPolicy;

bool seccomp_apply(const SeccompPolicy *policy, GError **error);
guint seccomp_rule_count(void);
