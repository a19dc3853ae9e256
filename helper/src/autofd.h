/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * autofd.h - a cleanup attribute for file descriptors
 *
 * GLib 2.74 has no g_autofd, so the helper carries its own: a variable
 * declared HELPER_AUTOFD is closed when it goes out of scope unless its
 * value was handed out with autofd_steal().  Only descriptors this process
 * opened may be declared this way: inherited descriptors we do not own
 * (libvirt's pid-file lock) must never be closed.
 */
#pragma once

#include <errno.h>
#include <unistd.h>

/**
 * autofd_close() - close *@fd if it is open, keeping errno intact
 * @fd: pointer to a descriptor or -1
 */
static inline void autofd_close(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;

        close(*fd);
        errno = saved;
        *fd = -1;
    }
}

/**
 * autofd_steal() - take ownership of a descriptor out of a HELPER_AUTOFD
 * @fd: pointer to the variable
 *
 * Return: the descriptor; *@fd is set to -1 so nothing closes it
 */
static inline int autofd_steal(int *fd)
{
    int ret = *fd;

    *fd = -1;
    return ret;
}

#define HELPER_AUTOFD __attribute__((cleanup(autofd_close)))
