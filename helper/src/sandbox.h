/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox.h - staged privilege reduction (see sandbox.c for the stages)
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "options.h"

/* Descriptors kept free for the helper itself when the fd cap is near. */
#define SANDBOX_FD_RESERVE 32

bool sandbox_pin_inherited(const HelperConfig *cfg, GError **error);
bool sandbox_isolate(const HelperConfig *cfg, GError **error);
bool sandbox_enter(const HelperConfig *cfg, GError **error);
bool sandbox_flow_allowed(void);
bool sandbox_descriptor_free(int fd);
bool sandbox_is_active(void);
