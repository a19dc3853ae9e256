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
 * families libslirp uses (AF_UNIX only with --guestfwd), openat() only
 * read-only (libslirp reads /etc/resolv.conf and TFTP files; the root is
 * empty and read-only anyway), kill()/tgkill() only to ourselves (abort()),
 * fcntl() only with the commands used, mmap()/mprotect() never executable
 * and mmap() never shared, unlink() only with --socket-path.
 *
 * Descriptors: every call that writes through a descriptor, moves its
 * offset or copies it is allowed only on descriptors at or above the floor
 * sandbox_pin_inherited() set up (all the helper opened itself), stderr and
 * the --fd socket.  Inherited descriptors lie below the floor: libvirt's
 * pid file, which libvirt reads back as root to choose whom to signal,
 * cannot be written.  The policy (SeccompPolicy) comes from sandbox.c.
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
#include <sys/mman.h>
#include <sys/prctl.h>
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
    { "readv", "GDBus message reads" },
    { "close", "libslirp closes finished flows; GLib; sandbox_flow_allowed()" },
    { "fstat", "sockdiag.c: the inode of the QEMU socket" },
    { "newfstatat", "sockdiag.c fstat(); libslirp stat()s /etc/resolv.conf" },
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
    { "munmap", "glibc malloc" },
    { "mremap", "glibc realloc of large blocks" },
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
    { "set_robust_list", "glibc: a new thread's first call (see below)" },
    { "rseq", "glibc: a new thread registering its rseq area (see below)" },
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
 * seccomp_add_action() - one rule for a call, with any action
 * @ctx: the filter
 * @action: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO(...)
 * @name: the call
 * @n: number of conditions
 * @conds: the conditions (all must hold)
 * @error: set on failure
 *
 * Return: true on success; a call unknown on this architecture is skipped
 */
static bool seccomp_add_action(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                               const struct scmp_arg_cmp *conds, GError **error)
{
    int nr = seccomp_syscall_resolve_name(name);
    int rc;

    if (nr == __NR_SCMP_ERROR)
        return true;
    rc = seccomp_rule_add_array(ctx, action, nr, n, conds);
    if (rc < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-rc),
                    "Cannot confine the helper: seccomp rule for %s: %s", name, g_strerror(-rc));
        return false;
    }
    seccomp_rules++;
    return true;
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
    return seccomp_add_action(ctx, SCMP_ACT_ALLOW, name, n, conds, error);
}

/**
 * seccomp_add_own_fds() - allow a call that writes through (or moves the
 * offset of, or copies) its first argument only on the helper's own
 * descriptors
 * @ctx: the filter
 * @name: the call
 * @policy: the descriptor floor, the QEMU socket
 * @stderr_too: also allow descriptor 2 (log.c writes there until start-up
 *              completes, and for good on a terminal)
 * @error: set on failure
 *
 * libvirt's pid file is inherited open for writing, and libvirt signals, as
 * root, whatever pid it reads back from it.  Its descriptor must stay open
 * (closing any descriptor of the file drops the lock libvirt checks), so
 * it cannot be moved either; instead sandbox_pin_inherited() made every
 * number below policy->fd_floor inherited or a placeholder, so everything
 * the helper opens is at or above the floor.  Three rules, one comparison
 * each (libseccomp compares an argument once per rule): at or above the
 * floor, the QEMU socket, and stderr where asked.  Anything else falls to
 * the default action.
 *
 * Return: true on success
 */
static bool seccomp_add_own_fds(scmp_filter_ctx ctx, const char *name, const SeccompPolicy *policy,
                                bool stderr_too, GError **error)
{
    struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_GE, (guint32)policy->fd_floor);

    if (!seccomp_add(ctx, name, 1, &c, error))
        return false;
    if (policy->qemu_fd >= 0) {
        c = (struct scmp_arg_cmp)SCMP_A0_32(SCMP_CMP_EQ, (guint32)policy->qemu_fd);
        if (!seccomp_add(ctx, name, 1, &c, error))
            return false;
    }
    if (stderr_too) {
        c = (struct scmp_arg_cmp)SCMP_A0_32(SCMP_CMP_EQ, 2);
        if (!seccomp_add(ctx, name, 1, &c, error))
            return false;
    }
    return true;
}

/**
 * seccomp_add_descriptor_rules() - the calls that write through a
 * descriptor, and fcntl(), limited to what the helper's own code does
 * @ctx: the filter
 * @policy: the descriptor floor, the QEMU socket, the flow probe
 * @error: set on failure
 *
 * Return: true on success
 */
static bool seccomp_add_descriptor_rules(scmp_filter_ctx ctx, const SeccompPolicy *policy,
                                         GError **error)
{
    static const struct {
        const char *name;
        bool stderr_too;
        const char *why;
    } writers[] = {
        { "write", true, "log.c (stderr, --log-file); GLib's wakeup eventfd; libslirp TCP" },
        { "writev", true, "GLib logging; libslirp" },
        { "sendto", false, "transport.c; libslirp UDP/ICMP; sockdiag.c queries; syslog" },
        { "sendmsg", false, "GDBus; libslirp" },
        { "sendmmsg", false, "transport.c: queued frames to QEMU (datagram) in one call" },
        { "lseek", false, "libslirp TFTP: reading a file at a block offset" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(writers); i++) {
        if (!seccomp_add_own_fds(ctx, writers[i].name, policy, writers[i].stderr_too, error))
            return false;
    }
    /* log.c: dup2(/dev/null, 2) when leaving stderr for syslog.  The source
     * must be our own, or dup2(pid file, 2) would make it writable. */
    {
        struct scmp_arg_cmp c[2] = {
            SCMP_A0_32(SCMP_CMP_GE, (guint32)policy->fd_floor),
            SCMP_A1_32(SCMP_CMP_EQ, 2),
        };

        if (!seccomp_add(ctx, "dup2", 2, c, error) || !seccomp_add(ctx, "dup3", 2, c, error))
            return false;
    }
    /* fcntl(): only the commands used.  F_GETFL/F_SETFL: libslirp and GLib
     * set O_NONBLOCK on new sockets, never O_ASYNC (with F_SETOWN and
     * F_SETSIG it would signal any process of our uid, so it is masked out
     * and those commands are absent).  F_GETFD/F_SETFD: GLib and libslirp
     * set FD_CLOEXEC.  F_DUPFD_CLOEXEC: sandbox_flow_allowed() copies its
     * probe, and nothing else may be copied (a copy of the pid file would
     * land above the floor).  No locks: the pid file's lock is libvirt's. */
    {
        struct scmp_arg_cmp c[2] = { SCMP_A1_32(SCMP_CMP_EQ, F_GETFL) };

        if (!seccomp_add(ctx, "fcntl", 1, c, error))
            return false;
        c[0] = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_EQ, F_GETFD);
        if (!seccomp_add(ctx, "fcntl", 1, c, error))
            return false;
        c[0] = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_EQ, F_SETFD);
        if (!seccomp_add(ctx, "fcntl", 1, c, error))
            return false;
        c[0] = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_EQ, F_SETFL);
        c[1] = (struct scmp_arg_cmp)SCMP_A2_32(SCMP_CMP_MASKED_EQ, O_ASYNC, 0);
        if (!seccomp_add(ctx, "fcntl", 2, c, error))
            return false;
        c[0] = (struct scmp_arg_cmp)SCMP_A0_32(SCMP_CMP_EQ, (guint32)policy->probe_fd);
        c[1] = (struct scmp_arg_cmp)SCMP_A1_32(SCMP_CMP_EQ, F_DUPFD_CLOEXEC);
        if (!seccomp_add(ctx, "fcntl", 2, c, error))
            return false;
    }
    return true;
}

/**
 * seccomp_add_memory_rules() - mmap() and mprotect() without PROT_EXEC
 * @ctx: the filter
 * @error: set on failure
 *
 * Everything executable is mapped by then: the program, its libraries and,
 * with --dbus-address, the D-Bus module (dlopen()ed before stage 1).  So no
 * new code can appear: no PROT_EXEC, and mmap() only private, so that no
 * file (the inherited pid file included) can be written through memory.
 *
 * Return: true on success
 */
static bool seccomp_add_memory_rules(scmp_filter_ctx ctx, GError **error)
{
    /* glibc malloc: large blocks and thread arenas (anonymous, private) */
    struct scmp_arg_cmp c[2] = {
        SCMP_A2_32(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
        SCMP_A3_32(SCMP_CMP_MASKED_EQ, MAP_SHARED | MAP_PRIVATE, MAP_PRIVATE),
    };

    if (!seccomp_add(ctx, "mmap", 2, c, error))
        return false;
    /* glibc malloc: growing a thread arena */
    return seccomp_add(ctx, "mprotect", 1, c, error);
}

/**
 * seccomp_add_conditional() - the calls allowed only in a harmless form
 * @ctx: the filter
 * @policy: what this helper's options need
 * @error: set on failure
 *
 * Return: true on success
 */
static bool seccomp_add_conditional(scmp_filter_ctx ctx, const SeccompPolicy *policy,
                                    GError **error)
{
    static const int families[] = { AF_INET, AF_INET6 };
    pid_t self = getpid();
    const unsigned write_flags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;

    if (!seccomp_add_descriptor_rules(ctx, policy, error) ||
        !seccomp_add_memory_rules(ctx, error))
        return false;
    /* libslirp: NAT'd TCP/UDP/ICMP flows (AF_INET, AF_INET6).  No netlink
     * or raw packet sockets: sockdiag.c opened its netlink socket before. */
    for (size_t i = 0; i < G_N_ELEMENTS(families); i++) {
        struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, (guint32)families[i]);

        if (!seccomp_add(ctx, "socket", 1, &c, error))
            return false;
    }
    /* AF_UNIX only for --guestfwd (libslirp connects by path per guest
     * connection).  Otherwise a new Unix socket fails with EACCES rather
     * than killing: glibc's syslog() tries to reconnect after syslogd
     * restarts, and losing those messages is the price (log.c opened the
     * socket before the filter). */
    {
        struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX);

        if (policy->unix_sockets ? !seccomp_add(ctx, "socket", 1, &c, error)
                                 : !seccomp_add_action(ctx, SCMP_ACT_ERRNO(EACCES), "socket", 1,
                                                       &c, error))
            return false;
    }
    /* transport.c: removing --socket-path at exit (its directory is the one
     * writable place); unlinkat on libcs that implement unlink() with it */
    if (policy->unlink &&
        (!seccomp_add(ctx, "unlink", 0, NULL, error) || !seccomp_add(ctx, "unlinkat", 0, NULL, error)))
        return false;
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
    /* A thread GLib created just before the filter may run its first
     * instructions only after it, under load: glibc's thread start
     * (set_robust_list, rseq, above) and GLib naming the thread.  Seen
     * killed for rseq in test-sandbox on a loaded machine. */
    {
        struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, PR_SET_NAME);

        if (!seccomp_add(ctx, "prctl", 1, &c, error))
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
 * @policy: the mode (kill, log or off) and what this helper needs
 * @error: set on failure
 *
 * Return: true on success (also for HELPER_SECCOMP_OFF, which loads nothing)
 */
bool seccomp_apply(const SeccompPolicy *policy, GError **error)
{
    HelperSeccompMode mode = policy->mode;
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
    if (!seccomp_add_conditional(ctx, policy, error)) {
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

bool seccomp_apply(const SeccompPolicy *policy, GError **error)
{
    if (policy->mode != HELPER_SECCOMP_OFF)
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
