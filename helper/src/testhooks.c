/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * testhooks.c - make the confined helper try what the sandbox forbids
 *
 * Only the test binary tests/slirp-helper-testhooks contains this file (it
 * is built from main.c with HELPER_TEST_HOOKS); the installed helper never
 * does.  Right after sandbox_enter(), SLIRP_HELPER_TEST_HOOK names one
 * forbidden action, which test-sandbox.py expects to end in SIGSYS (or, with
 * --seccomp=log, in the call's name in the log):
 *
 *   execve        run /bin/sh
 *   open-passwd   open /etc/passwd for writing
 *   netlink       create a new netlink socket
 *   read-passwd   open /etc/passwd for reading (allowed by the filter, so it
 *                 shows that the empty root hides the file: ENOENT)
 */
#include "testhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/**
 * testhooks_run() - perform the action named by SLIRP_HELPER_TEST_HOOK
 *
 * Logs the outcome when the action returns at all.
 */
void testhooks_run(void)
{
    const char *hook = getenv("SLIRP_HELPER_TEST_HOOK");
    int ret = 0;

    if (!hook)
        return;
    if (strcmp(hook, "execve") == 0) {
        char *const argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"true", NULL };

        ret = execve("/bin/sh", argv, NULL);
    } else if (strcmp(hook, "open-passwd") == 0) {
        ret = open("/etc/passwd", O_RDWR | O_CLOEXEC);
    } else if (strcmp(hook, "read-passwd") == 0) {
        ret = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    } else if (strcmp(hook, "netlink") == 0) {
        ret = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    } else {
        log_error("Unknown SLIRP_HELPER_TEST_HOOK '%s'", hook);
        return;
    }
    log_warn("Test hook %s returned %d (%s)", hook, ret, ret < 0 ? g_strerror(errno) : "success");
}
