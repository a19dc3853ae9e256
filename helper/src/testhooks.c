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
 *                 shows that the empty root hides the file: ENOENT, or
 *                 Landlock does: EACCES)
 *   write-inherited  write to the inherited descriptor SLIRP_HELPER_TEST_FD
 *                 (libvirt's pid file) with write, pwrite64, ftruncate,
 *                 lseek, through dup2 onto stderr, through a copy made with
 *                 F_DUPFD_CLOEXEC and through a shared mapping
 *   fcntl-setown  fcntl(F_SETOWN) on a socket of our own
 *   fcntl-async   fcntl(F_SETFL, O_ASYNC) on a socket of our own
 *   mmap-exec     map anonymous memory executable
 *   mprotect-exec make a page of the heap executable
 *   unix-socket   create an AF_UNIX socket (EACCES unless --guestfwd)
 *   unlink        remove a file (allowed only with --socket-path)
 */
#include "testhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/**
 * testhooks_log() - log the outcome of one attempted call
 * @hook: the hook's name
 * @what: the call
 * @ret: its return value (negative: failed, errno says why)
 */
static void testhooks_log(const char *hook, const char *what, long ret)
{
    log_warn("Test hook %s: %s returned %ld (%s)", hook, what, ret,
             ret < 0 ? g_strerror(errno) : "success");
}

/**
 * testhooks_write_inherited() - every way the helper could write to an
 * inherited descriptor
 * @hook: the hook's name
 */
static void testhooks_write_inherited(const char *hook)
{
    const char *env = getenv("SLIRP_HELPER_TEST_FD");
    int fd = env ? atoi(env) : -1;
    long ret;
    void *map;

    testhooks_log(hook, "write", write(fd, "666\n", 4));
    testhooks_log(hook, "pwrite64", pwrite(fd, "666\n", 4, 0));
    testhooks_log(hook, "ftruncate", ftruncate(fd, 0));
    testhooks_log(hook, "lseek", lseek(fd, 0, SEEK_SET));
    ret = dup2(fd, 2);
    testhooks_log(hook, "dup2", ret);
    ret = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    testhooks_log(hook, "fcntl(F_DUPFD_CLOEXEC)", ret);
    if (ret >= 0)
        testhooks_log(hook, "write to the copy", pwrite((int)ret, "666\n", 4, 0));
    map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    testhooks_log(hook, "mmap(MAP_SHARED)", map == MAP_FAILED ? -1 : 0);
    if (map != MAP_FAILED)
        memcpy(map, "666\n", 4);
}

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
    } else if (strcmp(hook, "write-inherited") == 0) {
        testhooks_write_inherited(hook);
        return;
    } else if (strcmp(hook, "fcntl-setown") == 0 || strcmp(hook, "fcntl-async") == 0) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        ret = strcmp(hook, "fcntl-setown") == 0 ? fcntl(s, F_SETOWN, 1)
                                                : fcntl(s, F_SETFL, O_ASYNC | O_NONBLOCK);
    } else if (strcmp(hook, "mmap-exec") == 0) {
        ret = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
                      MAP_FAILED
                  ? -1
                  : 0;
    } else if (strcmp(hook, "mprotect-exec") == 0) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ret = mprotect(page, 4096, PROT_READ | PROT_EXEC);
    } else if (strcmp(hook, "unix-socket") == 0) {
        ret = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    } else if (strcmp(hook, "unlink") == 0) {
        ret = unlink("/no-such-file");
    } else {
        log_error("Unknown SLIRP_HELPER_TEST_HOOK '%s'", hook);
        return;
    }
    log_warn("Test hook %s returned %d (%s)", hook, ret, ret < 0 ? g_strerror(errno) : "success");
}
