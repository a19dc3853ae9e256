/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * seccomp.h - the system call allowlist (see seccomp.c)
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "options.h"

bool seccomp_apply(HelperSeccompMode mode, GError **error);
guint seccomp_rule_count(void);
