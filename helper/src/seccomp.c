/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * seccomp.c - the system call allowlist, installed for every thread
 *
 * Theory of operation.  The last stage of the sandbox (sandbox.c, step 9)
 * loads a libseccomp filter whose default action kills the whole process
 * (SCMP_ACT_KILL_PROCESS), with SCMP_FLTATR_CTL_TSYNC so that GDBus' worker
 * thread, already running by then, gets the same filter.  Only the native
 * architecture is allowed: 32-bit and x32 entry points are killed too.
 *
 * The table below lists every allowed call with the code that needs it.  It
 * was found empirically: `strace -f -c` of the helper under the QEMU system
 * tests (a real guest: DHCP, DNS, TCP/UDP/ICMP NAT, host and guest forwards,
 * TFTP, D-Bus Save/Load and control calls, SIGTERM) and test-sandbox.py (a
 * SYN flood, --socket-path, the pid-file lock), then every call the
 * confined helper never made was questioned.  A few calls kept are never
 * made on x86-64 but are how glibc implements the same function elsewhere
 * (ppoll, open, dup3, unlinkat); a call unknown on the build architecture is
 * skipped.  test-sandbox.py, test-dbus and the QEMU tests run with this
 * filter in kill mode, so a missing entry fails them.  Arguments are checked where a
 * call is needed only in a harmless form: socket() only for the address
 * families libslirp uses, openat() only read-only (libslirp reads
 * /etc/resolv.conf and TFTP files; the root is empty and read-only anyway),
 * kill()/tgkill() only to ourselves (abort()).
 *
 * --seccomp=log replaces the default action by SCMP_ACT_TRAP: the kernel
 * sends SIGSYS instead of killing, and seccomp_sigsys() writes the call's
 * name to the --log-file and to stderr with write(2) only, then makes the
 * call return -ENOSYS.  Names are resolved before the filter is loaded,
 * because libseccomp's resolver allocates and must not run in a signal
 * handler.
 */
#include "seccomp.h"

#include <glib.h>

#include "helper-config.h"
#include "log.h"

#if HELPER_ENABLE_SECCOMP
#include <errno.h>
#include <fcntl.h>
#include <linux/net.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#define SECCOMP_MAX_NR 512

typedef struct {
    const char *name;
    const char *why;
} SeccompAllow;

/*
 * Calls allowed with any arguments.  Each "why" names the code that needs
 * the call.
 */
static const SeccompAllow seccomp_allow[] = {
    /* the poll loop (loop.c) */
    { "poll", "loop.c: g_poll() over all descriptors" },
    { "ppoll", "loop.c: g_poll() on libcs that implement poll() with ppoll" },
    { "read", "loop.c: the signalfd; GLib's wakeup eventfd; libslirp TCP sockets" },
    { "write", "log.c; GLib's wakeup eventfd; libslirp TCP sockets" },
    { "readv", "GDBus message reads" },
    { "writev", "GLib logging; libslirp" },
    { "close", "libslirp closes finished flows; GLib; sandbox_flow_allowed()" },
    { "fcntl", "libslirp sets O_NONBLOCK on new sockets; sandbox_flow_allowed() dups" },
    { "fstat", "sockdiag.c: the inode of the QEMU socket" },
    { "newfstatat", "sockdiag.c fstat(); libslirp stat()s /etc/resolv.conf" },
    { "lseek", "libslirp TFTP: reading a file at a block offset" },
    { "pread64", "libslirp TFTP on libcs that read blocks with pread" },
    { "clock_gettime", "timers (vDSO fallback)" },
    { "gettimeofday", "libslirp's curtime (vDSO fallback)" },
    { "clock_nanosleep", "GLib back-off in contended locks" },
    { "nanosleep", "GLib back-off in contended locks" },
    { "restart_syscall", "the kernel restarting an interrupted poll" },

    /* the QEMU socket and libslirp's host sockets (transport.c, netstack.c) */
    { "recvfrom", "transport.c and libslirp: datagrams and TCP data" },
    { "recvmsg", "transport.c; GDBus; sockdiag.c" },
    { "recvmmsg", "transport.c: frames from QEMU in batches" },
    { "sendmmsg", "transport.c: queued frames to QEMU (datagram) in one call" },
    { "sendto", "transport.c; libslirp UDP/ICMP; sockdiag.c queries; syslog" },
    { "sendmsg", "GDBus; libslirp" },
    { "connect", "libslirp: NAT'd TCP, guest forwards (unix); syslog reconnect" },
    { "bind", "libslirp: host forwards added or restored after Load" },
    { "listen", "libslirp: host forwards added or restored after Load" },
    { "accept", "libslirp: connections on host forwards" },
    { "accept4", "transport.c: --socket-path; libslirp on newer libcs" },
    { "shutdown", "libslirp: half-closing NAT'd TCP flows" },
    { "setsockopt", "libslirp: SO_REUSEADDR, SO_OOBINLINE, TCP_NODELAY, buffer sizes" },
    { "getsockopt", "libslirp: SO_ERROR of connecting sockets; transport.c SO_TYPE" },
    { "getsockname", "libslirp: host forward and NAT addresses" },
    { "getpeername", "libslirp: connection info" },

    /* memory and threads (glibc malloc, GLib, GDBus' worker thread) */
    { "brk", "glibc malloc" },
    { "mmap", "glibc malloc (large blocks, thread arenas)" },
    { "munmap", "glibc malloc" },
    { "mremap", "glibc realloc of large blocks" },
    { "mprotect", "glibc malloc: growing a thread arena" },
    { "madvise", "glibc malloc: returning memory" },
    { "futex", "GLib mutexes and conditions shared with GDBus' worker" },
    { "sched_yield", "glibc/GLib spin locks" },
    { "rt_sigprocmask", "glibc: blocking signals around critical sections" },
    { "rt_sigreturn", "returning from the SIGSYS handler of --seccomp=log" },
    { "getpid", "log.c message prefix; GLib" },
    { "gettid", "GLib; abort()" },
    { "getppid", "GLib: g_rand_new() seeding fallback" },
    { "getuid", "GLib" },
    { "geteuid", "GLib" },
    { "getgid", "GLib" },
    { "getegid", "GLib" },
    { "getrandom", "GLib's random numbers (GDBus serials, hash seeds)" },
    { "eventfd2", "GLib: a wakeup descriptor for a new GMainContext" },
    { "unlink", "transport.c: removing --socket-path at exit (its directory is writable)" },
    { "unlinkat", "the same, on libcs that implement unlink() with unlinkat" },
    { "exit", "a thread ending" },
    { "exit_group", "the helper ending" },
};

static const char *seccomp_names[SECCOMP_MAX_NR];
static int seccomp_log_fd = -1;
static guint seccomp_rules;

/**
 * seccomp_write_str() - write(2) a string, async-signal-safe
 * @fd: destination
 * @s: the string
 */
static void seccomp_write_str(int fd, const char *s)
{
    ssize_t n = write(fd, s, strlen(s));

    (void)n;
}

/**
 * seccomp_sigsys() - SIGSYS handler of --seccomp=log
 * @sig: SIGSYS
 * @info: si_syscall holds the call number
 * @ctx: the interrupted context; its return register is set to -ENOSYS
 *
 * Uses only write(2) and precomputed strings.
 */
static void seccomp_sigsys(int sig, siginfo_t *info, void *ctx)
{
    int nr = info->si_syscall;
    const char *name =
        nr >= 0 && nr < SECCOMP_MAX_NR && seccomp_names[nr] ? seccomp_names[nr] : "unknown";
    char num[16];
    int i = (int)sizeof(num) - 1;
    unsigned v = (unsigned)nr;
    int saved = errno;
    int fds[2] = { 2, seccomp_log_fd };

    num[i] = '\0';
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);

    for (int f = 0; f < 2; f++) {
        if (fds[f] < 0 || (f == 1 && fds[1] == fds[0]))
            continue;
        seccomp_write_str(fds[f], "slirp-helper: warning: seccomp: blocked system call ");
        seccomp_write_str(fds[f], name);
        seccomp_write_str(fds[f], " (");
        seccomp_write_str(fds[f], num + i);
        seccomp_write_str(fds[f], ")\n");
    }
#if defined(__x86_64__)
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
    ((ucontext_t *)ctx)->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#endif
    errno = saved;
}

/**
 * seccomp_add() - allow one call, optionally with argument conditions
 * @ctx: the filter
 * @name: the call
 * @n: number of conditions
 * @conds: the conditions (all must hold)
 * @error: set on failure
 *
 * Return: true on success; a call unknown on this architecture is skipped
 */
static bool seccomp_add(scmp_filter_ctx ctx, const char *name, unsigned n,
                        const struct scmp_arg_cmp *conds, GError **error)
{
    int nr = seccomp_syscall_resolve_name(name);
    int rc;

    if (nr == __NR_SCMP_ERROR)
        return true;
    rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, conds);
    if (rc < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-rc),
                    "Cannot confine the helper: seccomp rule for %s: %s", name, g_strerror(-rc));
        return false;
    }
    seccomp_rules++;
    return true;
}

/**
 * seccomp_add_conditional() - the calls allowed only in a harmless form
 * @ctx: the filter
 * @error: set on failure
 *
 * Return: true on success
 */
static bool seccomp_add_conditional(scmp_filter_ctx ctx, GError **error)
{
    static const int families[] = { AF_INET, AF_INET6, AF_UNIX };
    pid_t self = getpid();
    const unsigned write_flags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;

    /* libslirp: NAT'd TCP/UDP/ICMP flows (AF_INET, AF_INET6), guest forwards
     * (AF_UNIX); glibc syslog() reconnecting (AF_UNIX).  No netlink or raw
     * packet sockets: sockdiag.c opened its netlink socket before. */
    for (size_t i = 0; i < G_N_ELEMENTS(families); i++) {
        struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, (guint32)families[i]);

        if (!seccomp_add(ctx, "socket", 1, &c, error))
            return false;
    }
    /* libslirp: fopen("/etc/resolv.conf", "r"), TFTP files; read-only only */
    {
        struct scmp_arg_cmp c = SCMP_A2_32(SCMP_CMP_MASKED_EQ, write_flags, 0);

        if (!seccomp_add(ctx, "openat", 1, &c, error))
            return false;
        c = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_MASKED_EQ, write_flags, 0);
        if (!seccomp_add(ctx, "open", 1, &c, error))
            return false;
    }
    /* libslirp: ioctl(FIONREAD) before reading urgent data and in soread */
    {
        struct scmp_arg_cmp c = SCMP_A1_32(SCMP_CMP_EQ, FIONREAD);

        if (!seccomp_add(ctx, "ioctl", 1, &c, error))
            return false;
        c = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_EQ, FIONBIO);
        if (!seccomp_add(ctx, "ioctl", 1, &c, error))
            return false;
        /* log.c: isatty(2) when leaving stderr */
        c = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_EQ, TCGETS);
        if (!seccomp_add(ctx, "ioctl", 1, &c, error))
            return false;
    }
    /* log.c: dup2(/dev/null, 2) when leaving stderr for syslog */
    {
        struct scmp_arg_cmp c = SCMP_A1_32(SCMP_CMP_EQ, 2);

        if (!seccomp_add(ctx, "dup2", 1, &c, error) || !seccomp_add(ctx, "dup3", 1, &c, error))
            return false;
    }
    /* abort() and g_error(): raise(SIGABRT) on ourselves only */
    {
        struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, (guint32)self);

        if (!seccomp_add(ctx, "tgkill", 1, &c, error) || !seccomp_add(ctx, "kill", 1, &c, error))
            return false;
    }
    /* No new threads or processes (RLIMIT_NPROC is 0 too), but failing
     * softly: GDBus' worker asks GLib for a pool thread while the connection
     * closes at exit, and GLib copes with EAGAIN.  ENOSYS for clone3 makes
     * glibc fall back to clone. */
    {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);

        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAGAIN), SCMP_SYS(clone), 0);
        if (rc < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-rc),
                        "Cannot confine the helper: seccomp rule for clone: %s", g_strerror(-rc));
            return false;
        }
        seccomp_rules += 2;
    }
    /* rt_sigaction: glibc's abort() resets SIGABRT to the default */
    {
        struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, SIGABRT);

        if (!seccomp_add(ctx, "rt_sigaction", 1, &c, error))
            return false;
    }
    return true;
}

/**
 * seccomp_apply() - load the allowlist for every thread
 * @mode: kill (default), log, or off
 * @error: set on failure
 *
 * Return: true on success (also for HELPER_SECCOMP_OFF, which loads nothing)
 */
bool seccomp_apply(HelperSeccompMode mode, GError **error)
{
    scmp_filter_ctx ctx;
    int rc;

    switch (mode) {
    case HELPER_SECCOMP_OFF:
        log_warn("Running without a seccomp filter (--seccomp=off): for debugging only");
        return true;
    case HELPER_SECCOMP_KILL:
    case HELPER_SECCOMP_LOG:
    case HELPER_SECCOMP_LAST:
        break;
    }

    if (mode == HELPER_SECCOMP_LOG) {
        struct sigaction sa = { 0 };

        for (int nr = 0; nr < SECCOMP_MAX_NR; nr++)
            seccomp_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        seccomp_log_fd = log_file_fd();
        if (seccomp_log_fd < 0 && !isatty(2))
            log_warn("--seccomp=log names blocked calls in the --log-file or on a terminal; "
                     "this helper has neither, so they will go unseen");
        sa.sa_sigaction = seccomp_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSYS, &sa, NULL) < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "Cannot confine the helper: SIGSYS handler: %s", g_strerror(errno));
            return false;
        }
    }

    ctx = seccomp_init(mode == HELPER_SECCOMP_LOG ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "Cannot confine the helper: seccomp_init failed");
        return false;
    }
    seccomp_rules = 0;
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-rc),
                    "Cannot confine the helper: seccomp thread synchronisation: %s",
                    g_strerror(-rc));
        seccomp_release(ctx);
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(seccomp_allow); i++) {
        if (!seccomp_add(ctx, seccomp_allow[i].name, 0, NULL, error)) {
            seccomp_release(ctx);
            return false;
        }
    }
    if (mode == HELPER_SECCOMP_LOG &&
        !seccomp_add(ctx, "rt_sigaction", 0, NULL, error)) { /* glibc may re-install */
        seccomp_release(ctx);
        return false;
    }
    if (!seccomp_add_conditional(ctx, error)) {
        seccomp_release(ctx);
        return false;
    }
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-rc),
                    "Cannot confine the helper: loading the seccomp filter: %s", g_strerror(-rc));
        return false;
    }
    return true;
}

#else /* !HELPER_ENABLE_SECCOMP */

bool seccomp_apply(HelperSeccompMode mode, GError **error)
{
    if (mode != HELPER_SECCOMP_OFF)
        log_warn("Built without libseccomp: no system call filter");
    return true;
}

static guint seccomp_rules;
#endif

/**
 * seccomp_rule_count() - how many rules the last seccomp_apply() loaded
 *
 * Return: the count (0 before, or without a filter)
 */
guint seccomp_rule_count(void)
{
    return seccomp_rules;
}
