/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox.c - staged privilege reduction, documented in one place
 *
 * Theory of operation.  The helper feeds guest-controlled bytes to libslirp,
 * a C TCP/IP stack with a long CVE history.  Everything that needs privilege
 * or a new descriptor from the host happens first (main.c steps 3-6: the
 * QEMU socket, libslirp, host-forward listeners, the log target); then the
 * helper takes away its own ability to do anything else, in three calls made
 * from main() in this order:
 *
 * Stage 0, sandbox_pin_inherited(), runs right after the options, before
 * the helper opens anything.  Every descriptor number up to the highest one
 * inherited (libvirt's locked pid file, the --fd socket, stdio) that is not
 * open gets a placeholder (an eventfd), so every descriptor the helper opens
 * from now on is numbered at or above that "floor".  The seccomp filter
 * (step 11) lets the helper write only there, to stderr and to the --fd
 * socket: never to the pid file, whose pid libvirt signals as root.
 *
 * Stage 1, sandbox_isolate(), runs while the process has one thread (before
 * GDBus starts its worker; namespaces, credentials, capabilities and
 * Landlock set now are inherited by every later thread, which would not be
 * true afterwards):
 *
 *   1. Who are we.  "Privileged" means effective CAP_SYS_ADMIN, CAP_SETUID,
 *      CAP_SETGID and CAP_SETPCAP (root started by hand or by a service
 *      manager, or libvirt's DAC driver giving the VM's user exactly these
 *      as ambient capabilities).  Privileged: the --runas user (default
 *      nobody) is looked up now, while /etc/passwd is still visible.  An
 *      ordinary user (libvirt's DAC driver without those capabilities): a
 *      new user namespace provides the capabilities for steps 2-4, mapping
 *      our own uid and gid to themselves, so the D-Bus peer still sees our
 *      real uid.  Root without those capabilities (libvirt with
 *      security_driver="none" clears them) can do neither: it may not map
 *      uid 0 in a user namespace (that needs CAP_SETFCAP), and from an
 *      unmapped one GDBus cannot send its credentials (EINVAL).  Nobody can
 *      pivot_root where "/" is not a mount point (a chroot, some
 *      containers), and a host may forbid user namespaces.  In those cases
 *      steps 2-4 are skipped and Landlock (step 8) hides the file system
 *      instead, where the kernel has it.
 *   2. unshare() new mount, IPC and UTS namespaces (plus the user namespace
 *      of 1).  The network namespace stays the host's: reaching the host's
 *      network on the guest's behalf is the helper's job.  All mounts
 *      become private so nothing propagates back to the host.
 *   3. The few host files the helper still needs are cloned as detached
 *      bind mounts (open_tree) while the host tree is visible:
 *      /etc/resolv.conf (libslirp re-reads it for DNS forwarding whenever its
 *      one-second cache expires, by path, so a copy taken once would go
 *      stale and a missing file breaks DNS), the --tftp directory, the
 *      directories holding --guestfwd sockets (libslirp connects to them by
 *      path on every guest connection), a unix:path= --dbus-address socket
 *      (GDBus connects right after this stage),
 *      /dev/urandom (GLib seeds libslirp's random numbers from it, also for
 *      the second instance a migration Load creates) and, writable, the
 *      directory of --socket-path (the socket is removed at exit).  The
 *      D-Bus module needs no clone: main.c loaded it before stage 1.
 *   4. A new root: an empty tmpfs (a few inodes, nosuid, nodev, noexec)
 *      mounted over /tmp in the private namespace, with a mount point at the
 *      same path for each clone of 3, each read-only.  Then pivot_root(2)
 *      into it, the old root is detached, and the new root is made
 *      read-only.  /proc, /dev, /sys and /home are simply not there.
 *   5. RLIMIT_NOFILE --max-fds, while CAP_SYS_RESOURCE (if we had it) can
 *      still raise the hard limit.  Each guest flow costs one host socket
 *      (and 36-87 KiB of RSS); the limit bounds what a guest SYN or UDP
 *      flood can take, and sandbox_flow_allowed() refuses new flows
 *      SANDBOX_FD_RESERVE descriptors before it, so D-Bus, host-forward
 *      accepts and TFTP keep working during a flood.
 *   6. Privileged only: setgroups(0), and the real and saved uid and gid
 *      become --runas; the effective ones stay, because the D-Bus daemon
 *      authenticates the effective uid libvirt started us with.  Switching
 *      the effective ids in stage 2 then needs no capability at all.
 *   7. Capabilities: the bounding, inheritable, ambient, effective and
 *      permitted sets are all cleared, in the only thread there is, so
 *      GDBus' worker and GLib's pool thread, created later, start with none.
 *      Then PR_SET_NO_NEW_PRIVS (Landlock needs it without CAP_SYS_ADMIN).
 *   8. Landlock, if the kernel has it (whatever ABI it offers): every file
 *      system access right it knows is handled, and only the paths of 3 are
 *      allowed (read-only, the --socket-path directory for removal).  With
 *      the empty root this adds little; without namespaces it is what hides
 *      the host's files.  From ABI 6 it also scopes abstract Unix sockets
 *      (unless the D-Bus address is one) and signals to the helper itself.
 *   The result is a confinement level: full (namespaces and the empty
 *   root, never uid 0), filesystem (Landlock instead) or minimal (neither).
 *   Below --require-confinement the helper exits, naming what is missing.
 *
 * Stage 2, sandbox_enter(), runs after the D-Bus connection is
 * authenticated (the bus checks our uid, so it must still be the one libvirt
 * started us with):
 *
 *   9. With --dbus-address, GLib's task thread is started now and kept
 *      (dbus_keep_pool_thread() in the D-Bus module: GDBus needs it to
 *      flush at exit and no thread can be created later).  Resource limits:
 *      RLIMIT_CORE 0 (no core dump of guest memory), RLIMIT_NPROC 0 (no
 *      new processes or threads).
 *  10. Privileged only: the effective gid and uid become --runas too.
 *      glibc applies this to every thread; they hold no capability.
 *      nobody is the default because every system has it and it owns
 *      nothing: as nobody the helper can open no file that is not
 *      world-accessible even if it escaped the empty root.  A dedicated
 *      user (--runas) is better where the administrator can create one,
 *      since nobody is shared.  PR_SET_DUMPABLE 0 (no ptrace by other
 *      processes of the same uid, /proc/PID files owned by root).
 *  11. The seccomp allowlist (seccomp.c), installed for all threads, with
 *      the floor of stage 0.  Then the level is logged, on stderr while
 *      libvirt still reads it: "Confinement: LEVEL (...)".
 *
 * Descriptors the helper did not open are never closed: libvirt's locked
 * pid file stays held (libvirt kills the helper only if the lock is held).
 *
 * --sandbox=off skips all of it, for debugging only.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "autofd.h"
#include "dbusmodule.h"
#include "log.h"
#include "seccomp.h"

#define SANDBOX_STAGING "/tmp"
#define SANDBOX_RESOLV_CONF "/etc/resolv.conf"
#define SANDBOX_URANDOM "/dev/urandom"
#define SANDBOX_MAX_BINDS 64
/* stage 0 looks this far for inherited descriptors when /proc is missing */
#define SANDBOX_INHERITED_SCAN_MAX 65536

/* Landlock's user-space ABI (linux/landlock.h), spelled out here because
 * the build host's headers may predate the rights and scopes used */
#define SANDBOX_LL_CREATE_RULESET_VERSION (1u << 0)
#define SANDBOX_LL_RULE_PATH_BENEATH 1
#define SANDBOX_LL_FS_EXECUTE (1ull << 0)
#define SANDBOX_LL_FS_WRITE_FILE (1ull << 1)
#define SANDBOX_LL_FS_READ_FILE (1ull << 2)
#define SANDBOX_LL_FS_READ_DIR (1ull << 3)
#define SANDBOX_LL_FS_REMOVE_FILE (1ull << 5)
#define SANDBOX_LL_FS_ABI1 ((1ull << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define SANDBOX_LL_FS_REFER (1ull << 13)      /* ABI 2 */
#define SANDBOX_LL_FS_TRUNCATE (1ull << 14)   /* ABI 3 */
#define SANDBOX_LL_FS_IOCTL_DEV (1ull << 15)  /* ABI 5 */
#define SANDBOX_LL_FS_FILE_ONLY                                                                    \
    (SANDBOX_LL_FS_EXECUTE | SANDBOX_LL_FS_WRITE_FILE | SANDBOX_LL_FS_READ_FILE |                 \
     SANDBOX_LL_FS_TRUNCATE | SANDBOX_LL_FS_IOCTL_DEV)
#define SANDBOX_LL_SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define SANDBOX_LL_SCOPE_SIGNAL (1ull << 1)        /* ABI 6 */

typedef struct {
    guint64 handled_access_fs;
    guint64 handled_access_net; /* ABI 4; left 0: the network is the helper's job */
    guint64 scoped;             /* ABI 6 */
} SandboxLandlockRuleset;

typedef struct __attribute__((packed)) {
    guint64 allowed_access;
    gint32 parent_fd;
} SandboxLandlockPathBeneath;

typedef enum {
    SANDBOX_BIND_READONLY = 0,
    SANDBOX_BIND_WRITABLE = 1 << 0, /* the --socket-path directory: unlink at exit */
    SANDBOX_BIND_DEVICE = 1 << 1,   /* /dev/urandom: a character device */
} SandboxBindFlags;

typedef struct {
    char *target; /* absolute path inside the new root */
    int tree_fd;  /* detached bind mount from open_tree() */
    bool is_dir;
} SandboxBind;

static struct {
    bool isolated;   /* stage 1 done */
    bool active;     /* stage 2 done */
    bool privileged; /* switch to runas_uid/gid in stages 1 and 2 */
    bool namespaced; /* stage 1 built namespaces and the empty root */
    uid_t runas_uid;
    gid_t runas_gid;
    int fd_floor;     /* stage 0: every number below is inherited or a placeholder */
    int landlock_abi; /* 0: not applied */
    bool landlock_fs; /* Landlock handles the file system */
    HelperConfinement level;
    char *reduced; /* why the level is below full, or NULL */
    rlim_t max_fds;
    int flow_limit; /* lowest descriptor number that refuses new flows, 0: none */
    int probe_fd;   /* duplicated by sandbox_flow_allowed() */
} sandbox;

static bool G_GNUC_PRINTF(3, 4) sandbox_fail(GError **error, int err, const char *fmt, ...)
{
    g_autofree char *what = NULL;
    va_list ap;

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
                "Cannot confine the helper (--sandbox=off disables this): %s: %s", what,
                g_strerror(err));
    return false;
}

/**
 * sandbox_capget() - this thread's capability sets
 * @data: receives the two 32-bit halves
 *
 * Return: true on success
 */
static bool sandbox_capget(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

    return syscall(SYS_capget, &hdr, data) == 0;
}

/**
 * sandbox_capset() - set this thread's effective and permitted sets to @keep
 * @keep: capability bit mask (only capabilities below 64)
 *
 * The inheritable set is cleared.
 *
 * Return: true on success
 */
static bool sandbox_capset(guint64 keep)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2] = {
        { .effective = (guint32)keep, .permitted = (guint32)keep, .inheritable = 0 },
        { .effective = (guint32)(keep >> 32),
          .permitted = (guint32)(keep >> 32),
          .inheritable = 0 },
    };

    return syscall(SYS_capset, &hdr, data) == 0;
}

static bool sandbox_has_cap(const struct __user_cap_data_struct data[2], int cap)
{
    return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

/**
 * sandbox_resolve_runas() - look up --runas (default nobody) while
 * /etc/passwd is visible
 * @spec: USER or USER:GROUP, or NULL for nobody
 * @error: set naming --runas and the value
 *
 * Return: true on success (sandbox.runas_uid and runas_gid set)
 */
static bool sandbox_resolve_runas(const char *spec, GError **error)
{
    const char *shown = spec ? spec : "nobody";
    g_autofree char *user = g_strdup(shown);
    char *group = strchr(user, ':');
    struct passwd *pw;

    if (group)
        *group++ = '\0';
    errno = 0;
    pw = getpwnam(user);
    if (!pw) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "Invalid --runas value '%s': no user '%s'%s", shown, user,
                    spec ? "" : " (the default; give --runas=USER)");
        return false;
    }
    sandbox.runas_uid = pw->pw_uid;
    sandbox.runas_gid = pw->pw_gid;
    if (group) {
        struct group *gr = getgrnam(group);

        if (!gr) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "Invalid --runas value '%s': no group '%s'", shown, group);
            return false;
        }
        sandbox.runas_gid = gr->gr_gid;
    }
    if (sandbox.runas_uid == 0 || sandbox.runas_gid == 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "Invalid --runas value '%s': the user and group must not be root", shown);
        return false;
    }
    return true;
}

/**
 * sandbox_write_file() - write a short string to a /proc file
 * @path: the file
 * @text: what to write
 *
 * Return: 0 on success, else an errno value
 */
static int sandbox_write_file(const char *path, const char *text)
{
    HELPER_AUTOFD int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(text);

    if (fd < 0)
        return errno;
    if (write(fd, text, len) != (ssize_t)len)
        return errno ? errno : EIO;
    return 0;
}

/**
 * sandbox_unshare() - stage 1 step 2: new namespaces
 * @refused: set to the errno value when an unprivileged unshare() was
 *           refused (then nothing changed and the caller may carry on
 *           without namespaces), else left alone
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_unshare(int *refused, GError **error)
{
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    uid_t uid = geteuid();
    gid_t gid = getegid();

    if (!sandbox.privileged)
        flags |= CLONE_NEWUSER;
    if (unshare(flags) < 0) {
        if (!sandbox.privileged && (errno == EPERM || errno == ENOSPC || errno == EUSERS))
            *refused = errno;
        return sandbox_fail(error, errno, "unshare(%s)",
                            sandbox.privileged ? "mount, IPC, UTS namespaces"
                                               : "user, mount, IPC, UTS namespaces");
    }
    if (!sandbox.privileged) {
        char map[64];
        int err;

        /* our own ids map to themselves */
        err = sandbox_write_file("/proc/self/setgroups", "deny");
        if (err && err != ENOENT)
            return sandbox_fail(error, err, "/proc/self/setgroups");
        g_snprintf(map, sizeof(map), "%u %u 1", (unsigned)uid, (unsigned)uid);
        err = sandbox_write_file("/proc/self/uid_map", map);
        if (err)
            return sandbox_fail(error, err, "/proc/self/uid_map");
        g_snprintf(map, sizeof(map), "%u %u 1", (unsigned)gid, (unsigned)gid);
        err = sandbox_write_file("/proc/self/gid_map", map);
        if (err)
            return sandbox_fail(error, err, "/proc/self/gid_map");
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return sandbox_fail(error, errno, "making the mounts private");
    return true;
}

/**
 * sandbox_add_bind() - stage 1 step 3: clone one host path for the new root
 * @binds: array of SandboxBind
 * @source: host path (followed if a symbolic link)
 * @target: where it appears in the new root (absolute)
 * @flags: read-only without devices unless asked otherwise
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_add_bind(GArray *binds, const char *source, const char *target,
                             SandboxBindFlags flags, GError **error)
{
    SandboxBind bind = { 0 };
    struct mount_attr attr = {
        .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC |
                    (flags & SANDBOX_BIND_WRITABLE ? 0 : MOUNT_ATTR_RDONLY) |
                    (flags & SANDBOX_BIND_DEVICE ? 0 : MOUNT_ATTR_NODEV),
    };
    struct stat st;

    if (binds->len >= SANDBOX_MAX_BINDS)
        return sandbox_fail(error, E2BIG, "more than %d paths to keep", SANDBOX_MAX_BINDS);
    for (guint i = 0; i < binds->len; i++) {
        const SandboxBind *kept = &g_array_index(binds, SandboxBind, i);
        size_t len = strlen(kept->target);

        /* already visible, as itself or inside a kept directory (a mount
         * point cannot be made inside a clone of the host's directory) */
        if (strcmp(kept->target, target) == 0 ||
            (kept->is_dir && strncmp(kept->target, target, len) == 0 && target[len] == '/'))
            return true;
    }
    if (stat(source, &st) < 0)
        return sandbox_fail(error, errno, "'%s'", source);
    bind.tree_fd = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (bind.tree_fd < 0)
        return sandbox_fail(error, errno, "cloning '%s'", source);
    if (mount_setattr(bind.tree_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
        int err = errno;

        close(bind.tree_fd);
        return sandbox_fail(error, err, "making '%s' read-only", source);
    }
    bind.target = g_strdup(target);
    bind.is_dir = S_ISDIR(st.st_mode);
    g_array_append_val(binds, bind);
    return true;
}

static void sandbox_bind_clear(SandboxBind *bind)
{
    g_free(bind->target);
    autofd_close(&bind->tree_fd);
}

/**
 * sandbox_dbus_socket_dirs() - the unix:path= sockets of a D-Bus address
 * @address: the --dbus-address value, or NULL
 *
 * Return: NULL-terminated list (possibly empty)
 */
static char **sandbox_dbus_socket_dirs(const char *address)
{
    g_autoptr(GPtrArray) dirs = g_ptr_array_new();
    g_auto(GStrv) entries = NULL;

    if (!address)
        return g_new0(char *, 1);
    entries = g_strsplit(address, ";", -1);
    for (char **e = entries; *e; e++) {
        g_auto(GStrv) pairs = NULL;

        if (!g_str_has_prefix(*e, "unix:"))
            continue;
        pairs = g_strsplit(*e + 5, ",", -1);
        for (char **kv = pairs; *kv; kv++) {
            g_autofree char *path = NULL;

            if (!g_str_has_prefix(*kv, "path="))
                continue;
            path = g_uri_unescape_string(*kv + 5, NULL);
            if (path && path[0] == '/')
                g_ptr_array_add(dirs, g_steal_pointer(&path));
        }
    }
    g_ptr_array_add(dirs, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&dirs), FALSE);
}

/**
 * sandbox_collect_binds() - stage 1 step 3: everything the new root keeps
 * @cfg: the configuration
 * @binds: array of SandboxBind to fill
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_collect_binds(const HelperConfig *cfg, GArray *binds, GError **error)
{
    g_auto(GStrv) dbus_dirs = sandbox_dbus_socket_dirs(cfg->dbus_address);

    /* the one writable bind first: a read-only bind of the same directory,
     * or of a path inside it, is then covered by it rather than shadowing it */
    if (cfg->socket_path) {
        /* transport.c unlinks its --socket-path at exit */
        g_autofree char *path = g_canonicalize_filename(cfg->socket_path, "/");
        g_autofree char *dir = g_path_get_dirname(path);
        g_autofree char *source_dir = g_path_get_dirname(cfg->socket_path);

        if (!sandbox_add_bind(binds, source_dir, dir, SANDBOX_BIND_WRITABLE, error))
            return false;
    }
    if (access(SANDBOX_RESOLV_CONF, F_OK) == 0) {
        if (!sandbox_add_bind(binds, SANDBOX_RESOLV_CONF, SANDBOX_RESOLV_CONF,
                              SANDBOX_BIND_READONLY, error))
            return false;
    } else {
        log_warn("No %s: DNS forwarding will not work", SANDBOX_RESOLV_CONF);
    }
    if (cfg->tftp_dir) {
        /* libslirp opens files by --tftp as given, relative to the cwd: "/" */
        g_autofree char *target = g_canonicalize_filename(cfg->tftp_dir, "/");

        if (!sandbox_add_bind(binds, cfg->tftp_dir, target, SANDBOX_BIND_READONLY, error))
            return false;
    }
    for (guint i = 0; i < cfg->guestfwds->len; i++) {
        const GuestForward *gf = &g_array_index(cfg->guestfwds, GuestForward, i);
        g_autofree char *path = g_canonicalize_filename(gf->unix_path, "/");
        g_autofree char *dir = g_path_get_dirname(path);
        g_autofree char *source_dir = g_path_get_dirname(gf->unix_path);

        if (!sandbox_add_bind(binds, source_dir, dir, SANDBOX_BIND_READONLY, error))
            return false;
    }
    for (char **d = dbus_dirs; *d; d++) {
        if (!sandbox_add_bind(binds, *d, *d, SANDBOX_BIND_READONLY, error))
            return false;
    }
    /* GLib seeds g_rand_new() from it; libslirp makes one per instance, also
     * for a migration Load (the fallback would be the time and our pid) */
    if (!sandbox_add_bind(binds, SANDBOX_URANDOM, SANDBOX_URANDOM, SANDBOX_BIND_DEVICE, error))
        return false;
    return true;
}

/**
 * sandbox_make_mountpoint() - create @path (a directory or an empty file)
 * below @root, with its parents
 * @root: descriptor of the new root
 * @path: absolute path
 * @is_dir: make a directory rather than a file
 *
 * Return: 0 on success, else an errno value
 */
static int sandbox_make_mountpoint(int root, const char *path, bool is_dir)
{
    g_auto(GStrv) parts = g_strsplit(path + 1, "/", -1);
    g_autoptr(GString) rel = g_string_new(NULL);

    for (char **p = parts; *p; p++) {
        bool last = p[1] == NULL;

        if (**p == '\0')
            continue;
        if (rel->len)
            g_string_append_c(rel, '/');
        g_string_append(rel, *p);
        if (last && !is_dir) {
            int fd = openat(root, rel->str, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);

            if (fd < 0)
                return errno;
            close(fd);
        } else if (mkdirat(root, rel->str, 0755) < 0 && errno != EEXIST) {
            return errno;
        }
    }
    return 0;
}

/**
 * sandbox_new_root() - stage 1 step 4: build the new root and pivot into it
 * @binds: the clones from sandbox_collect_binds()
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_new_root(GArray *binds, GError **error)
{
    HELPER_AUTOFD int root = -1;
    struct mount_attr ro = {
        .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    };
    int err;

    if (mount("slirp-helper", SANDBOX_STAGING, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=64k,nr_inodes=128,mode=0755") < 0)
        return sandbox_fail(error, errno, "mounting a tmpfs on %s", SANDBOX_STAGING);
    root = open(SANDBOX_STAGING, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return sandbox_fail(error, errno, "opening the new root");
    for (guint i = 0; i < binds->len; i++) {
        SandboxBind *bind = &g_array_index(binds, SandboxBind, i);

        err = sandbox_make_mountpoint(root, bind->target, bind->is_dir);
        if (err)
            return sandbox_fail(error, err, "creating the mount point for '%s'", bind->target);
        if (move_mount(bind->tree_fd, "", root, bind->target + 1, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return sandbox_fail(error, errno, "mounting '%s' in the new root", bind->target);
    }

    if (chdir(SANDBOX_STAGING) < 0)
        return sandbox_fail(error, errno, "entering the new root");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return sandbox_fail(error, errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        return sandbox_fail(error, errno, "detaching the old root");
    if (chdir("/") < 0)
        return sandbox_fail(error, errno, "entering the new root");
    if (mount_setattr(AT_FDCWD, "/", 0, &ro, sizeof(ro)) < 0)
        return sandbox_fail(error, errno, "making the new root read-only");
    return true;
}

/**
 * sandbox_drop_capabilities() - stage 1 step 7: empty the bounding and
 * ambient sets, and keep only @keep in the effective and permitted sets
 * @keep: capability bit mask
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_drop_capabilities(guint64 keep, GError **error)
{
    bool kept = false;

    for (int cap = 0; cap <= 63; cap++) {
        int in_set = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

        if (in_set < 0)
            break; /* past the kernel's last capability */
        if (in_set == 0)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno != EPERM)
                return sandbox_fail(error, errno, "dropping capability %d from the bounding set",
                                    cap);
            kept = true; /* no CAP_SETPCAP: harmless, as execve is never allowed */
        }
    }
    if (kept)
        log_warn("Without CAP_SETPCAP the capability bounding set stays as inherited; "
                 "no-new-privileges and seccomp keep execve from using it");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return sandbox_fail(error, errno, "clearing the ambient capabilities");
    if (!sandbox_capset(keep))
        return sandbox_fail(error, errno, "capset");
    return true;
}

/**
 * sandbox_check_socket_dir() - warn if --runas cannot remove --socket-path
 * @socket_path: the path, or NULL
 */
static void sandbox_check_socket_dir(const char *socket_path)
{
    g_autofree char *dir = socket_path ? g_path_get_dirname(socket_path) : NULL;
    struct stat st;
    bool writable;

    if (!dir || stat(dir, &st) < 0)
        return;
    writable = (st.st_uid == sandbox.runas_uid && (st.st_mode & S_IWUSR)) ||
               (st.st_gid == sandbox.runas_gid && (st.st_mode & S_IWGRP)) || (st.st_mode & S_IWOTH);
    if (!writable)
        log_warn("The --runas user cannot write to '%s': '%s' will be left behind at exit", dir,
                 socket_path);
}

/**
 * sandbox_pin_inherited() - stage 0: put everything the helper opens above
 * the inherited descriptors
 * @cfg: the configuration (--fd, --max-fds, --sandbox)
 * @error: set on failure
 *
 * Must run before the helper opens any descriptor.  Every free number up to
 * the highest inherited descriptor is taken by an eventfd (no path, nothing
 * to write to that matters), so the kernel, which hands out the lowest free
 * number, numbers everything opened later at or above sandbox.fd_floor.
 * Placeholders are never closed.
 *
 * Return: true on success (also when --sandbox=off, which skips this)
 */
bool sandbox_pin_inherited(const HelperConfig *cfg, GError **error)
{
    int highest = 2;
    DIR *dir;

    if (!cfg->sandbox)
        return true;
    dir = opendir("/proc/self/fd");
    if (dir) {
        struct dirent *e;

        while ((e = readdir(dir))) {
            int fd = (int)g_ascii_strtoll(e->d_name, NULL, 10);

            if (g_ascii_isdigit(e->d_name[0]) && fd != dirfd(dir))
                highest = MAX(highest, fd);
        }
        closedir(dir);
    } else {
        /* no /proc (a bare chroot): ask each number */
        for (int fd = 3; fd < SANDBOX_INHERITED_SCAN_MAX; fd++) {
            if (fcntl(fd, F_GETFD) >= 0)
                highest = fd;
        }
    }
    if ((guint)highest + SANDBOX_FD_RESERVE >= cfg->max_fds)
        return sandbox_fail(error, EMFILE, "inherited descriptor %d is too close to --max-fds=%u",
                            highest, cfg->max_fds);
    for (;;) {
        int fd = eventfd(0, EFD_CLOEXEC);

        if (fd < 0)
            return sandbox_fail(error, errno, "a placeholder descriptor");
        if (fd > highest) {
            close(fd);
            break;
        }
    }
    sandbox.fd_floor = highest + 1;
    return true;
}

/**
 * sandbox_root_is_mount() - whether "/" is the root of a mount
 *
 * pivot_root(2) and making "/" private need it; in a chroot, or a
 * container started with one, it is a plain directory.
 *
 * Return: true if it is, or if the kernel cannot tell (then stage 1 tries)
 */
static bool sandbox_root_is_mount(void)
{
    struct statx stx;

    if (statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx) < 0 ||
        !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
        return true;
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/**
 * sandbox_limit_fds() - stage 1 step 5: RLIMIT_NOFILE --max-fds, and the
 * probe of sandbox_flow_allowed()
 * @cfg: the configuration
 * @can_raise: we hold CAP_SYS_RESOURCE in the initial user namespace
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_limit_fds(const HelperConfig *cfg, bool can_raise, GError **error)
{
    struct rlimit nofile;

    if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
        return sandbox_fail(error, errno, "getrlimit(RLIMIT_NOFILE)");
    if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < cfg->max_fds && !can_raise)
        log_warn("--max-fds=%u is above the hard limit %lu; using the hard limit", cfg->max_fds,
                 (unsigned long)nofile.rlim_max);
    else
        nofile.rlim_max = cfg->max_fds;
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        return sandbox_fail(error, errno, "setrlimit(RLIMIT_NOFILE, %lu)",
                            (unsigned long)nofile.rlim_max);
    sandbox.max_fds = nofile.rlim_max;
    sandbox.probe_fd = eventfd(0, EFD_CLOEXEC);
    if (sandbox.probe_fd < 0)
        return sandbox_fail(error, errno, "the descriptor probe");
    sandbox.flow_limit = (int)nofile.rlim_max - SANDBOX_FD_RESERVE;
    return true;
}

/**
 * sandbox_switch_saved_ids() - stage 1 step 6: real and saved ids become
 * --runas, the effective ones stay for the D-Bus daemon
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_switch_saved_ids(GError **error)
{
    if (setgroups(0, NULL) < 0)
        return sandbox_fail(error, errno, "setgroups");
    if (setresgid(sandbox.runas_gid, getegid(), sandbox.runas_gid) < 0)
        return sandbox_fail(error, errno, "setresgid(%u)", (unsigned)sandbox.runas_gid);
    if (setresuid(sandbox.runas_uid, geteuid(), sandbox.runas_uid) < 0)
        return sandbox_fail(error, errno, "setresuid(%u)", (unsigned)sandbox.runas_uid);
    return true;
}

/**
 * sandbox_landlock_allow() - one Landlock path rule, if the path exists
 * @ruleset: the ruleset descriptor
 * @path: absolute path
 * @access: rights wanted (file-only rights are kept for a non-directory)
 * @error: set on failure
 *
 * Return: true on success (also when @path does not exist: nothing to allow)
 */
static bool sandbox_landlock_allow(int ruleset, const char *path, guint64 access, GError **error)
{
    SandboxLandlockPathBeneath rule = { .allowed_access = access };
    HELPER_AUTOFD int fd = open(path, O_PATH | O_CLOEXEC);
    struct stat st;

    if (fd < 0 && errno == ENOENT)
        return true;
    if (fd < 0 || fstat(fd, &st) < 0)
        return sandbox_fail(error, errno, "Landlock: '%s'", path);
    if (!S_ISDIR(st.st_mode))
        rule.allowed_access &= SANDBOX_LL_FS_FILE_ONLY;
    rule.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ruleset, SANDBOX_LL_RULE_PATH_BENEATH, &rule, 0) < 0)
        return sandbox_fail(error, errno, "Landlock rule for '%s'", path);
    return true;
}

/**
 * sandbox_landlock() - stage 1 step 8: Landlock, as far as the kernel has it
 * @cfg: the configuration (the paths of step 3, the D-Bus address)
 * @error: set on failure
 *
 * Needs no_new_privs.  A kernel without Landlock (or with it disabled)
 * leaves sandbox.landlock_abi 0; that is not an error.
 *
 * Return: true on success
 */
static bool sandbox_landlock(const HelperConfig *cfg, GError **error)
{
    SandboxLandlockRuleset attr = { 0 };
    HELPER_AUTOFD int ruleset = -1;
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, SANDBOX_LL_CREATE_RULESET_VERSION);
    const guint64 read_dir = SANDBOX_LL_FS_READ_FILE | SANDBOX_LL_FS_READ_DIR;

    if (abi <= 0)
        return true;
    attr.handled_access_fs = SANDBOX_LL_FS_ABI1 | (abi >= 2 ? SANDBOX_LL_FS_REFER : 0) |
                             (abi >= 3 ? SANDBOX_LL_FS_TRUNCATE : 0) |
                             (abi >= 5 ? SANDBOX_LL_FS_IOCTL_DEV : 0);
    if (abi >= 6) {
        attr.scoped = SANDBOX_LL_SCOPE_SIGNAL;
        /* GDBus connects after this stage: an abstract bus must stay reachable */
        if (!cfg->dbus_address || !strstr(cfg->dbus_address, "abstract="))
            attr.scoped |= SANDBOX_LL_SCOPE_ABSTRACT_UNIX;
    }
    /* a kernel older than the structure accepts it while the rest is zero */
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0)
        return sandbox_fail(error, errno, "creating a Landlock ruleset");
    if (!sandbox_landlock_allow(ruleset, SANDBOX_RESOLV_CONF, SANDBOX_LL_FS_READ_FILE, error) ||
        !sandbox_landlock_allow(ruleset, SANDBOX_URANDOM, SANDBOX_LL_FS_READ_FILE, error))
        return false;
    if (cfg->tftp_dir) {
        g_autofree char *dir = g_canonicalize_filename(cfg->tftp_dir, "/");

        if (!sandbox_landlock_allow(ruleset, dir, read_dir, error))
            return false;
    }
    if (cfg->socket_path) {
        g_autofree char *path = g_canonicalize_filename(cfg->socket_path, "/");
        g_autofree char *dir = g_path_get_dirname(path);

        if (!sandbox_landlock_allow(ruleset, dir, SANDBOX_LL_FS_REMOVE_FILE, error))
            return false;
    }
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
        return sandbox_fail(error, errno, "landlock_restrict_self");
    sandbox.landlock_abi = (int)abi;
    sandbox.landlock_fs = true;
    return true;
}

/**
 * sandbox_check_level() - the level stage 1 reached, against
 * --require-confinement
 * @cfg: the configuration
 * @error: set, naming what is missing, when the level is too low
 *
 * Return: true if the level is at least the one required
 */
static bool sandbox_check_level(const HelperConfig *cfg, GError **error)
{
    if (sandbox.namespaced)
        sandbox.level = HELPER_CONFINEMENT_FULL;
    else if (sandbox.landlock_fs)
        sandbox.level = HELPER_CONFINEMENT_FILESYSTEM;
    else
        sandbox.level = HELPER_CONFINEMENT_MINIMAL;
    if (sandbox.level >= cfg->require_confinement)
        return true;
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                "Confinement '%s' is below --require-confinement=%s: %s%s",
                options_confinement_name(sandbox.level),
                options_confinement_name(cfg->require_confinement), sandbox.reduced,
                sandbox.landlock_abi ? "" : "; the kernel offers no Landlock");
    return false;
}

/**
 * sandbox_isolate() - stage 1: namespaces, the empty root, the descriptor
 * limit, ids, capabilities, Landlock
 * @cfg: the configuration
 * @error: set on failure, saying which step failed
 *
 * Must run before any thread is created (before dbus_connect()).
 *
 * Return: true on success (also when --sandbox=off)
 */
bool sandbox_isolate(const HelperConfig *cfg, GError **error)
{
    struct __user_cap_data_struct caps[2];
    g_autoptr(GArray) binds = g_array_new(FALSE, TRUE, sizeof(SandboxBind));
    bool try_namespaces = true;
    bool can_raise;

    g_array_set_clear_func(binds, (GDestroyNotify)sandbox_bind_clear);
    if (!cfg->sandbox) {
        log_warn("Running without a sandbox (--sandbox=off): for debugging only");
        return true;
    }
    if (!sandbox_capget(caps))
        return sandbox_fail(error, errno, "capget");
    sandbox.privileged = sandbox_has_cap(caps, CAP_SYS_ADMIN) &&
                         sandbox_has_cap(caps, CAP_SETUID) && sandbox_has_cap(caps, CAP_SETGID) &&
                         sandbox_has_cap(caps, CAP_SETPCAP);
    can_raise = sandbox_has_cap(caps, CAP_SYS_RESOURCE);
    if (sandbox.privileged) {
        if (!sandbox_resolve_runas(cfg->runas, error))
            return false;
        sandbox_check_socket_dir(cfg->socket_path);
    } else if (geteuid() == 0) {
        sandbox.reduced = g_strdup("started as root without CAP_SYS_ADMIN, CAP_SETUID, "
                                   "CAP_SETGID and CAP_SETPCAP, so no namespaces and uid 0 kept");
        try_namespaces = false;
    } else if (cfg->runas) {
        log_warn("Ignoring --runas=%s: started without CAP_SETUID, staying uid %u in a user "
                 "namespace",
                 cfg->runas, (unsigned)getuid());
    }
    if (try_namespaces && !sandbox_root_is_mount()) {
        sandbox.reduced = g_strdup("'/' is not a mount point (a chroot?), so no namespaces and "
                                   "no empty root");
        try_namespaces = false;
    }

    if (try_namespaces) {
        int refused = 0;

        if (sandbox_unshare(&refused, error)) {
            /* clones are taken in the new namespace: the tmpfs then covers /tmp */
            if (!sandbox_collect_binds(cfg, binds, error) || !sandbox_new_root(binds, error))
                return false;
            sandbox.namespaced = true;
        } else if (refused) {
            /* unshare() changed nothing: hosts that forbid user namespaces
             * to ordinary users (user.max_user_namespaces 0, an LSM) */
            sandbox.reduced = g_strdup_printf("a user namespace was refused (%s), so no "
                                              "namespaces and no empty root",
                                              g_strerror(refused));
            g_clear_error(error);
        } else {
            return false;
        }
    }

    if (!sandbox_limit_fds(cfg, can_raise, error))
        return false;
    if (sandbox.privileged && !sandbox_switch_saved_ids(error))
        return false;
    if (!sandbox_drop_capabilities(0, error))
        return false;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return sandbox_fail(error, errno, "PR_SET_NO_NEW_PRIVS");
    if (!sandbox_landlock(cfg, error) || !sandbox_check_level(cfg, error))
        return false;
    if (sandbox.reduced)
        log_warn("Reduced confinement '%s': %s; %s", options_confinement_name(sandbox.level),
                 sandbox.reduced,
                 sandbox.landlock_fs ? "Landlock hides the host file system"
                                     : "the host file system stays visible (no Landlock)");
    sandbox.isolated = true;
    return true;
}

/**
 * sandbox_set_limit() - set both limits of a resource
 * @resource: RLIMIT_*
 * @value: the new soft and hard limit
 * @name: for the message
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_set_limit(int resource, rlim_t value, const char *name, GError **error)
{
    struct rlimit lim = { value, value };

    if (setrlimit(resource, &lim) < 0)
        return sandbox_fail(error, errno, "setrlimit(%s, %lu)", name, (unsigned long)value);
    return true;
}

/**
 * sandbox_enter() - stage 2: limits, user, seccomp
 * @cfg: the configuration
 * @error: set on failure, saying which step failed
 *
 * Runs after the D-Bus connection exists; affects every thread.
 *
 * Return: true on success (also when --sandbox=off)
 */
bool sandbox_enter(const HelperConfig *cfg, GError **error)
{
    SeccompPolicy policy = {
        .mode = cfg->seccomp,
        .fd_floor = sandbox.fd_floor,
        .qemu_fd = cfg->fd,
        .probe_fd = sandbox.probe_fd,
        .unix_sockets = cfg->guestfwds->len > 0,
        .unlink = cfg->socket_path != NULL,
    };
    g_autofree char *who = NULL;
    g_autofree char *landlock = NULL;

    if (!cfg->sandbox)
        return true;
    g_return_val_if_fail(sandbox.isolated, FALSE);
    if (cfg->dbus_address)
        dbusmodule_keep_pool_thread();

    if (!sandbox_set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", error) ||
        !sandbox_set_limit(RLIMIT_NPROC, 0, "RLIMIT_NPROC", error))
        return false;
    if (sandbox.privileged) {
        /* the real and saved ids are --runas already: no capability needed */
        if (setresgid(-1, sandbox.runas_gid, -1) < 0)
            return sandbox_fail(error, errno, "setresgid(%u)", (unsigned)sandbox.runas_gid);
        if (setresuid(-1, sandbox.runas_uid, -1) < 0)
            return sandbox_fail(error, errno, "setresuid(%u)", (unsigned)sandbox.runas_uid);
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return sandbox_fail(error, errno, "PR_SET_DUMPABLE");
    if (!seccomp_apply(&policy, error))
        return false;
    sandbox.active = true;
    who = geteuid() == 0 ? g_strdup("uid 0 kept")
                         : g_strdup_printf("uid %u%s", (unsigned)geteuid(),
                                           sandbox.privileged ? " (--runas)" : " (as started)");
    landlock = sandbox.landlock_abi ? g_strdup_printf("Landlock ABI %d", sandbox.landlock_abi)
                                    : g_strdup("no Landlock");
    log_info("Confinement: %s (%s; %s; %s; no capabilities; seccomp %s, %u rules; at most %lu "
             "descriptors)",
             options_confinement_name(sandbox.level), who,
             sandbox.namespaced ? "namespaces, empty read-only root"
             : sandbox.landlock_fs ? "host file system hidden by Landlock"
                                   : "host file system visible",
             landlock,
             options_seccomp_mode_name(cfg->seccomp), seccomp_rule_count(),
             (unsigned long)sandbox.max_fds);
    return true;
}

/**
 * sandbox_flow_allowed() - whether a guest packet may make libslirp open a
 * new host socket
 *
 * The kernel hands out the lowest free descriptor number, so when the
 * lowest free number has reached the limit minus SANDBOX_FD_RESERVE, nearly
 * all descriptors below it are in use.  Asking costs a dup and a close.
 *
 * Return: true if there is room (always true without the sandbox)
 */
bool sandbox_flow_allowed(void)
{
    int fd;

    if (sandbox.flow_limit <= 0)
        return true;
    fd = fcntl(sandbox.probe_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return errno != EMFILE;
    close(fd);
    return fd < sandbox.flow_limit;
}

/**
 * sandbox_descriptor_free() - whether one more descriptor can be had now
 * @fd: a descriptor of the caller's, copied when there is no probe
 *
 * Confined, the filter lets the helper copy no descriptor but the probe
 * (a copy of libvirt's pid file would outlive the lock), so the probe is
 * what is copied; before stage 1 or with --sandbox=off, @fd is.  The copy is
 * closed at once.
 *
 * Return: false only when the copy failed for want of a descriptor
 */
bool sandbox_descriptor_free(int fd)
{
    int copy = fcntl(sandbox.flow_limit > 0 ? sandbox.probe_fd : fd, F_DUPFD_CLOEXEC, 0);

    if (copy < 0)
        return errno != EMFILE && errno != ENFILE;
    close(copy);
    return true;
}

/**
 * sandbox_is_active() - whether sandbox_enter() completed
 *
 * Return: true once confined
 */
bool sandbox_is_active(void)
{
    return sandbox.active;
}
