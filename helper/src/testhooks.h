/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * testhooks.h - test-only actions, compiled into tests/slirp-helper-testhooks
 */
#pragma once

void testhooks_run(void);
