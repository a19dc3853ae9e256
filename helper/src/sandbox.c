/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox.c - staged privilege reduction, documented in one place
 *
 * Theory of operation.  The helper feeds guest-controlled bytes to libslirp,
 * a C TCP/IP stack with a long CVE history.  Everything that needs privilege
 * or a new descriptor from the host happens first (main.c steps 1-5: the
 * QEMU socket, libslirp, host-forward listeners, the log target); then the
 * helper takes away its own ability to do anything else, in two calls made
 * from main() in this order:
 *
 * Stage 1, sandbox_isolate(), runs while the process has one thread (before
 * GDBus starts its worker; namespaces and credentials set now are inherited
 * by every later thread, which would not be true afterwards):
 *
 *   1. Who are we.  "Privileged" means effective CAP_SYS_ADMIN, CAP_SETUID,
 *      CAP_SETGID and CAP_SETPCAP (root started by hand or by a service
 *      manager).  Privileged: the --runas user (default nobody) is looked up
 *      now, while /etc/passwd is still visible.  An ordinary user (libvirt's
 *      DAC driver starts the helper as the VM's user): a new user namespace
 *      provides the capabilities for the next steps, mapping our own uid and
 *      gid to themselves, so the D-Bus peer still sees our real uid.
 *      Root without those capabilities (libvirt with security_driver="none"
 *      clears them) can do neither: it may not map uid 0 in a user namespace
 *      (that needs CAP_SETFCAP), and from an unmapped one GDBus cannot send
 *      its credentials (EINVAL).  Such a helper skips steps 2-5 with a
 *      warning and relies on steps 6-9 only; give it the four capabilities
 *      above (it drops them itself) to get the whole sandbox.  The same
 *      happens for an ordinary user on a host that forbids user namespaces.
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
 *   5. Capabilities: the bounding, inheritable and ambient sets are
 *      cleared; effective and permitted keep only CAP_SETUID and CAP_SETGID
 *      when privileged (for stage 2), nothing otherwise.  GDBus' worker
 *      thread, created next, inherits exactly this.
 *
 * Stage 2, sandbox_enter(), runs after the D-Bus connection is
 * authenticated (the bus checks our uid, so it must still be the one libvirt
 * started us with):
 *
 *   6. With --dbus-address, GLib's task thread is started now and kept
 *      (dbus_keep_pool_thread() in the D-Bus module: GDBus needs it to
 *      flush at exit and no thread can be created later).  Resource limits:
 *      RLIMIT_CORE 0 (no core dump of guest memory), RLIMIT_NPROC 0 (no
 *      new processes or threads), RLIMIT_NOFILE
 *      --max-fds.  Each guest flow costs one host socket (and 36-87 KiB of
 *      RSS); the limit bounds what a guest SYN or UDP flood can take, and
 *      sandbox_flow_allowed() refuses new flows SANDBOX_FD_RESERVE
 *      descriptors before it, so D-Bus, host-forward accepts and TFTP keep
 *      working during a flood.
 *   7. Privileged only: setgroups(0), setresgid and setresuid to --runas.
 *      glibc applies these to every thread, and leaving uid 0 clears the
 *      effective, permitted and ambient capabilities of each.  nobody is the
 *      default because every system has it and it owns nothing: as nobody
 *      the helper can open no file that is not world-accessible even if it
 *      escaped the empty root.  A dedicated user (--runas) is better where
 *      the administrator can create one, since nobody is shared.
 *   8. Effective and permitted capabilities cleared (nothing left to keep),
 *      PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE 0 (no ptrace by other processes
 *      of the same uid, /proc/PID files owned by root).
 *   9. The seccomp allowlist (seccomp.c), installed for all threads.
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
#include <sched.h>
#include <stdio.h>
#include <string.h>
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
    bool privileged; /* switch to runas_uid/gid in stage 2 */
    bool namespaced; /* stage 1 built namespaces and the empty root */
    uid_t runas_uid;
    gid_t runas_gid;
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
 * @refused: set when an unprivileged unshare() was refused (then nothing
 *           changed and the caller may carry on without namespaces)
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_unshare(bool *refused, GError **error)
{
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    uid_t uid = geteuid();
    gid_t gid = getegid();

    if (!sandbox.privileged)
        flags |= CLONE_NEWUSER;
    if (unshare(flags) < 0) {
        *refused = !sandbox.privileged && (errno == EPERM || errno == ENOSPC || errno == EUSERS);
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
 * sandbox_drop_bounding() - stage 1 step 5: empty the bounding and ambient
 * sets, and keep only @keep in the effective and permitted sets
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
 * sandbox_limited() - stage 1 when namespaces are out of reach: only the
 * capability sets are cleared; stage 2 still applies
 * @error: set on failure
 *
 * Return: true on success
 */
static bool sandbox_limited(GError **error)
{
    if (!sandbox_drop_capabilities(0, error))
        return false;
    sandbox.isolated = true;
    return true;
}

/**
 * sandbox_isolate() - stage 1: namespaces, the empty root, capabilities
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
    bool refused = false;

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
    if (sandbox.privileged) {
        if (!sandbox_resolve_runas(cfg->runas, error))
            return false;
        sandbox_check_socket_dir(cfg->socket_path);
    } else if (geteuid() == 0) {
        log_warn("Started as root without CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID and "
                 "CAP_SETPCAP: cannot change user or hide the file system; only resource "
                 "limits, no-new-privileges and seccomp apply");
        return sandbox_limited(error);
    } else if (cfg->runas) {
        log_warn("Ignoring --runas=%s: started without CAP_SETUID, staying uid %u in a user "
                 "namespace",
                 cfg->runas, (unsigned)getuid());
    }

    if (!sandbox_unshare(&refused, error)) {
        if (!refused)
            return false;
        /* unshare() changed nothing: hosts that forbid user namespaces to
         * ordinary users (user.max_user_namespaces 0, an LSM) still run us */
        log_warn("%s; only resource limits, no-new-privileges and seccomp apply",
                 (*error)->message);
        g_clear_error(error);
        return sandbox_limited(error);
    }
    /* clones are taken in the new namespace: the tmpfs then covers /tmp */
    if (!sandbox_collect_binds(cfg, binds, error) || !sandbox_new_root(binds, error))
        return false;
    sandbox.namespaced = true;
    if (!sandbox_drop_capabilities(
            sandbox.privileged ? (1ull << CAP_SETUID) | (1ull << CAP_SETGID) : 0, error))
        return false;
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
 * sandbox_enter() - stage 2: limits, user, no capabilities, seccomp
 * @cfg: the configuration
 * @error: set on failure, saying which step failed
 *
 * Runs after the D-Bus connection exists; affects every thread.
 *
 * Return: true on success (also when --sandbox=off)
 */
bool sandbox_enter(const HelperConfig *cfg, GError **error)
{
    struct rlimit nofile;

    if (!cfg->sandbox)
        return true;
    g_return_val_if_fail(sandbox.isolated, FALSE);
    if (cfg->dbus_address)
        dbusmodule_keep_pool_thread();

    if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
        return sandbox_fail(error, errno, "getrlimit(RLIMIT_NOFILE)");
    if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < cfg->max_fds && !sandbox.privileged)
        log_warn("--max-fds=%u is above the hard limit %lu; using the hard limit", cfg->max_fds,
                 (unsigned long)nofile.rlim_max);
    else
        nofile.rlim_max = cfg->max_fds;
    if (!sandbox_set_limit(RLIMIT_NOFILE, nofile.rlim_max, "RLIMIT_NOFILE", error) ||
        !sandbox_set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", error) ||
        !sandbox_set_limit(RLIMIT_NPROC, 0, "RLIMIT_NPROC", error))
        return false;
    sandbox.probe_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sandbox.probe_fd < 0)
        return sandbox_fail(error, errno, "opening the new root");
    sandbox.flow_limit = (int)nofile.rlim_max - SANDBOX_FD_RESERVE;

    if (sandbox.privileged) {
        if (setgroups(0, NULL) < 0)
            return sandbox_fail(error, errno, "setgroups");
        if (setresgid(sandbox.runas_gid, sandbox.runas_gid, sandbox.runas_gid) < 0)
            return sandbox_fail(error, errno, "setresgid(%u)", (unsigned)sandbox.runas_gid);
        if (setresuid(sandbox.runas_uid, sandbox.runas_uid, sandbox.runas_uid) < 0)
            return sandbox_fail(error, errno, "setresuid(%u)", (unsigned)sandbox.runas_uid);
    }
    if (!sandbox_capset(0))
        return sandbox_fail(error, errno, "capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return sandbox_fail(error, errno, "PR_SET_NO_NEW_PRIVS");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return sandbox_fail(error, errno, "PR_SET_DUMPABLE");
    if (!seccomp_apply(cfg->seccomp, error))
        return false;
    sandbox.active = true;
    log_info("Confined: %s, no capabilities, at most %u descriptors, seccomp %s (%u rules)",
             sandbox.privileged   ? "switched user, empty read-only root"
             : sandbox.namespaced ? "user namespace, empty read-only root"
                                  : "host file system still visible",
             (unsigned)nofile.rlim_max, options_seccomp_mode_name(cfg->seccomp),
             seccomp_rule_count());
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
 * sandbox_is_active() - whether sandbox_enter() completed
 *
 * Return: true once confined
 */
bool sandbox_is_active(void)
{
    return sandbox.active;
}
