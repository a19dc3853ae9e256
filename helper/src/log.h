/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h - where the helper's messages go
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <syslog.h>

void log_init_early(bool debug);
bool log_prepare(const char *log_file, GError **error);
int log_file_fd(void);
bool log_startup_complete(const char *log_file, GError **error);
void log_msg(int priority, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
bool log_debug_enabled(void);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_debug_enabled())                                                                   \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)
