/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.c - stderr until start-up completes, then syslog or --log-file
 *
 * Theory of operation: libvirt reads the helper's stderr only while it waits
 * for the helper to start; afterwards it closes the read end of that pipe and
 * every write to stderr fails with EPIPE (SIGPIPE is ignored, see main.c).
 * So start-up errors go to stderr, where libvirt quotes them in its own
 * error, and once the helper runs, messages go to --log-file if given, to
 * stderr if it is a terminal (someone runs us by hand), and to syslog
 * otherwise; in that last case fd 2 is pointed at /dev/null so that stray
 * writes from libraries can neither fail loudly nor block on a full pipe.
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
#include <time.h>
#include <unistd.h>

typedef enum {
    LOG_TARGET_STDERR,
    LOG_TARGET_FILE,
    LOG_TARGET_SYSLOG,
    LOG_TARGET_LAST,
} LogTarget;

static gint log_target = LOG_TARGET_STDERR;
static int log_fd = 2;
static bool log_verbose;
static bool log_prepared;
static int log_file_fd_prepared = -1;
static int log_null_fd = -1;

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
        log_write_line(2, line, MIN((size_t)len, sizeof(line) - 1));
        break;
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
 * log_prepare() - open what the final log target needs, before confinement
 * @log_file: path given with --log-file, or NULL
 * @error: set when @log_file cannot be opened
 *
 * The sandbox (sandbox.c) hides the file system and forbids new files, so
 * the --log-file descriptor, the syslog socket and /dev/null are opened
 * here, while the helper still sees the host; log_startup_complete() only
 * switches to them.  Messages keep going to stderr until then.
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
    } else if (!isatty(2)) {
        openlog("slirp-helper", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    }
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
    if (log_file_fd_prepared >= 0) {
        log_fd = log_file_fd_prepared;
        g_atomic_int_set(&log_target, LOG_TARGET_FILE);
        return true;
    }

    if (isatty(2))
        return true;

    g_atomic_int_set(&log_target, LOG_TARGET_SYSLOG);

    /* fd 2 is ours; park it on /dev/null so nothing can block or fail on it */
    if (log_null_fd >= 0) {
        dup2(log_null_fd, 2);
        close(log_null_fd);
        log_null_fd = -1;
    }
    return true;
}
