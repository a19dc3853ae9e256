/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.c - stderr until start-up completes, then --log-file, a chosen stderr,
 * or syslog
 *
 * Theory of operation: a manager reads the helper's stderr, if at all, only
 * while it waits for the helper to start.  libvirt's fork passes a pipe and
 * closes its read end once start-up is over (every later write fails with
 * EPIPE; SIGPIPE is ignored, see main.c); stock libvirt 9.0 and 11.3
 * daemonize the helper with virCommandDaemonize() and no error descriptor,
 * so its stderr is /dev/null, and neither hands it the domain's log file.
 * So start-up errors go to stderr, where a manager that reads it quotes
 * them, and once the helper runs, messages go (log_prepare() decides):
 *
 *   1. to --log-file, if given;
 *   2. to stderr if it is a terminal (run by hand), a regular file or a
 *      socket (a journal stream): whoever started the helper chose it;
 *   3. to syslog (facility daemon) if /dev/log accepts a connection;
 *   4. to stderr if it is a pipe whose reader is still there, through a
 *      non-blocking descriptor of its own (so a reader that stops reading
 *      can never block the helper, and one that goes away costs an EPIPE);
 *   5. nowhere, said once on stderr while start-up still owns it: without
 *      /dev/log (containers, chroots) and with stderr /dev/null, only
 *      --log-file keeps the helper's messages.
 *
 * Whenever messages do not go to fd 2 itself, fd 2 is pointed at /dev/null
 * so that stray writes from libraries can neither fail loudly nor block on
 * a full pipe.
 *
 * Every message is formatted into a bounded stack buffer and written with a
 * single write(2), so messages from GDBus's worker thread do not interleave,
 * and nothing here allocates.  Write errors are ignored: logging never stops
 * the helper.  GLib's and libslirp's own g_log() output is routed here.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* where syslog(3) sends messages; glibc's _PATH_LOG */
#define LOG_SYSLOG_PATH "/dev/log"

typedef enum {
    LOG_TARGET_STDERR,  /* "slirp-helper: ..." lines on log_fd: 2 or a copy of it */
    LOG_TARGET_FILE,    /* time-stamped lines on log_fd, the --log-file */
    LOG_TARGET_SYSLOG,  /* syslog(3) */
    LOG_TARGET_DISCARD, /* nowhere: nothing can be read */
    LOG_TARGET_LAST,
} LogTarget;

static gint log_target = LOG_TARGET_STDERR;
static int log_fd = 2;
static bool log_verbose;
static bool log_prepared;
static int log_file_fd_prepared = -1;
static int log_null_fd = -1;
static LogTarget log_target_prepared = LOG_TARGET_STDERR;
static int log_fd_prepared = 2; /* for LOG_TARGET_STDERR */

static const char *const log_level_names[] = {
    [LOG_EMERG] = "emergency", [LOG_ALERT] = "alert",     [LOG_CRIT] = "critical",
    [LOG_ERR] = "error",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info",       [LOG_DEBUG] = "debug",
};
G_STATIC_ASSERT(G_N_ELEMENTS(log_level_names) == LOG_DEBUG + 1);

/**
 * log_debug_enabled() - whether debug messages are wanted
 *
 * Return: true when the helper was started with --debug
 */
bool log_debug_enabled(void)
{
    return log_verbose;
}

/**
 * log_write_line() - write one whole line to @fd, ignoring failures
 * @fd: destination descriptor
 * @line: text including the final newline
 * @len: length of @line
 */
static void log_write_line(int fd, const char *line, size_t len)
{
    ssize_t n;

    do {
        n = write(fd, line, len);
    } while (n < 0 && errno == EINTR);
}

/**
 * log_msgv() - format and emit one message
 * @priority: syslog priority (LOG_ERR ... LOG_DEBUG)
 * @fmt: printf format
 * @ap: arguments
 */
static void G_GNUC_PRINTF(2, 0) log_msgv(int priority, const char *fmt, va_list ap)
{
    char msg[1024];
    char line[1200];
    int saved = errno;
    int len;

    if (priority < LOG_EMERG || priority > LOG_DEBUG)
        priority = LOG_ERR;
    if (priority == LOG_DEBUG && !log_verbose)
        return;

    vsnprintf(msg, sizeof(msg), fmt, ap);

    switch ((LogTarget)g_atomic_int_get(&log_target)) {
    case LOG_TARGET_SYSLOG:
        syslog(priority, "%s", msg);
        break;
    case LOG_TARGET_FILE: {
        struct timespec ts;
        struct tm tm;
        char stamp[32] = "";

        clock_gettime(CLOCK_REALTIME, &ts);
        if (gmtime_r(&ts.tv_sec, &tm))
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        len = snprintf(line, sizeof(line), "%s.%03ldZ %d %s: %s\n", stamp, ts.tv_nsec / 1000000,
                       (int)getpid(), log_level_names[priority], msg);
        log_write_line(log_fd, line, MIN((size_t)len, sizeof(line) - 1));
        break;
    }
    case LOG_TARGET_STDERR:
        len = snprintf(line, sizeof(line), "slirp-helper: %s%s%s\n",
                       priority == LOG_ERR ? "" : log_level_names[priority],
                       priority == LOG_ERR ? "" : ": ", msg);
        log_write_line(log_fd, line, MIN((size_t)len, sizeof(line) - 1));
        break;
    case LOG_TARGET_DISCARD:
    case LOG_TARGET_LAST:
        break;
    }
    errno = saved;
}

/**
 * log_msg() - emit one message at @priority
 * @priority: syslog priority
 * @fmt: printf format; the message is a sentence without a final period
 */
void log_msg(int priority, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_msgv(priority, fmt, ap);
    va_end(ap);
}

/**
 * log_glib_handler() - route g_log() from GLib, GIO and libslirp to log_msg()
 * @domain: log domain
 * @level: GLib level flags
 * @message: the message
 * @data: unused
 */
static void log_glib_handler(const char *domain, GLogLevelFlags level, const char *message,
                             gpointer data)
{
    int priority = LOG_DEBUG;

    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        priority = LOG_ERR;
    else if (level & G_LOG_LEVEL_WARNING)
        priority = LOG_WARNING;
    else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
        priority = LOG_INFO;
    log_msg(priority, "%s%s%s", domain ? domain : "", domain ? ": " : "", message);
}

/**
 * log_glib_writer() - route structured GLib logging to log_glib_handler()
 * @level: GLib level
 * @fields: structured fields
 * @n_fields: number of @fields
 * @data: unused
 *
 * Return: always G_LOG_WRITER_HANDLED
 */
static GLogWriterOutput log_glib_writer(GLogLevelFlags level, const GLogField *fields,
                                        gsize n_fields, gpointer data)
{
    const char *domain = NULL;
    const char *message = "";

    for (gsize i = 0; i < n_fields; i++) {
        if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
            domain = fields[i].value;
        else if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
            message = fields[i].value;
    }
    log_glib_handler(domain, level, message, data);
    return G_LOG_WRITER_HANDLED;
}

/**
 * log_init_early() - start logging to stderr
 * @debug: emit debug messages too
 *
 * Called first thing in main(); also takes over GLib's log handlers.
 */
void log_init_early(bool debug)
{
    log_verbose = debug;
    g_log_set_default_handler(log_glib_handler, NULL);
    g_log_set_writer_func(log_glib_writer, NULL, NULL);
}

/**
 * log_syslog_listening() - whether the syslog socket accepts a connection
 *
 * Tries a datagram connection to LOG_SYSLOG_PATH, then a stream one, as
 * glibc's syslog(3) does, and closes it again.
 *
 * Return: true if syslog(3) messages would reach a reader
 */
static bool log_syslog_listening(void)
{
    static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
    struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = LOG_SYSLOG_PATH };

    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        int ret;

        if (fd < 0)
            return false;
        ret = connect(fd, (const struct sockaddr *)&sun, sizeof(sun));
        close(fd);
        if (ret == 0)
            return true;
    }
    return false;
}

/**
 * log_choose_target() - where messages go after start-up without --log-file
 * @fd: receives the descriptor for LOG_TARGET_STDERR (2, or a new one)
 *
 * The order and the reasons are in the theory of operation above.
 *
 * Return: the target
 */
static LogTarget log_choose_target(int *fd)
{
    struct stat st;

    *fd = 2;
    if (fstat(2, &st) == 0 && (isatty(2) || S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode)))
        return LOG_TARGET_STDERR;
    if (log_syslog_listening())
        return LOG_TARGET_SYSLOG;
    if (fstat(2, &st) == 0 && S_ISFIFO(st.st_mode)) {
        /* a description of our own: O_NONBLOCK on fd 2 would change the
         * manager's too; opening fails (ENXIO) once the reader is gone */
        *fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (*fd >= 0)
            return LOG_TARGET_STDERR;
    }
    *fd = -1;
    return LOG_TARGET_DISCARD;
}

/**
 * log_prepare() - open what the final log target needs, before confinement
 * @log_file: path given with --log-file, or NULL
 * @error: set when @log_file cannot be opened
 *
 * The sandbox (sandbox.c) hides the file system and forbids new files, so
 * the --log-file descriptor, the syslog socket, a non-blocking copy of a
 * stderr pipe and /dev/null are opened here, while the helper still sees
 * the host; log_startup_complete() only switches to them.  Messages keep
 * going to stderr until then; when none of them will be readable, that is
 * said once, here.
 *
 * Return: true on success
 */
bool log_prepare(const char *log_file, GError **error)
{
    if (log_prepared)
        return true;
    if (log_file) {
        int fd = open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);

        if (fd < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "Cannot open --log-file '%s': %s", log_file, g_strerror(errno));
            return false;
        }
        log_file_fd_prepared = fd;
        log_fd_prepared = fd;
        log_target_prepared = LOG_TARGET_FILE;
    } else {
        log_target_prepared = log_choose_target(&log_fd_prepared);
        if (log_target_prepared == LOG_TARGET_SYSLOG)
            openlog("slirp-helper", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        else if (log_target_prepared == LOG_TARGET_DISCARD)
            log_warn("Messages after start-up will be lost: " LOG_SYSLOG_PATH
                     " accepts no connection and stderr is not kept; use --log-file");
    }
    if (log_fd_prepared != 2)
        log_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    log_prepared = true;
    return true;
}

/**
 * log_file_fd() - the --log-file descriptor, for async-signal-safe writers
 *
 * Return: the descriptor opened by log_prepare(), or -1 without --log-file
 */
int log_file_fd(void)
{
    return log_file_fd_prepared;
}

/**
 * log_startup_complete() - leave stderr now that libvirt stops reading it
 * @log_file: path given with --log-file, or NULL
 * @error: set when @log_file cannot be opened
 *
 * Calls log_prepare() if main() did not already.
 *
 * Return: true on success; on failure logging stays on stderr
 */
bool log_startup_complete(const char *log_file, GError **error)
{
    if (!log_prepare(log_file, error))
        return false;
    log_fd = log_fd_prepared;
    g_atomic_int_set(&log_target, log_target_prepared);

    /* fd 2 is no longer ours to write; park it so nothing can block or fail on it */
    if (log_null_fd >= 0) {
        dup2(log_null_fd, 2);
        close(log_null_fd);
        log_null_fd = -1;
    }
    return true;
}
