/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sockdiag.c - ask the kernel whether a Unix socket still has a peer
 *
 * Theory of operation: when the last descriptor of one end of a connected
 * AF_UNIX datagram pair is closed, the surviving end sees nothing: no
 * POLLHUP, no POLLERR, no SO_ERROR.  An idle helper would never notice that
 * QEMU is gone.  The kernel's socket diagnostics do know: a NETLINK_SOCK_DIAG
 * query for our own socket's inode with UDIAG_SHOW_PEER returns the peer's
 * inode while the peer exists, and 0 (or no attribute) once it is gone.  The
 * query needs no privilege and no traffic on the data socket, so it is safe
 * to ask once a second.  The netlink socket is opened during start-up, before
 * any sandbox would forbid creating it.
 */
#include "sockdiag.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/**
 * sockdiag_open() - open the netlink socket used by sockdiag_query_peer()
 * @error: set on failure
 *
 * Return: the descriptor (close-on-exec, non-blocking), or -1
 */
int sockdiag_open(GError **error)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);

    if (fd < 0)
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "Cannot open a NETLINK_SOCK_DIAG socket: %s", g_strerror(errno));
    return fd;
}

/**
 * sockdiag_query_peer() - whether @sock_fd's peer still exists
 * @nl_fd: descriptor from sockdiag_open()
 * @sock_fd: a connected AF_UNIX socket of ours
 * @seq: sequence counter, incremented per query
 *
 * Return: SOCKDIAG_PEER_PRESENT, SOCKDIAG_PEER_GONE, or SOCKDIAG_PEER_UNKNOWN
 * if the kernel could not be asked (the caller then keeps running)
 */
SockdiagPeer sockdiag_query_peer(int nl_fd, int sock_fd, guint32 *seq)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } request;
    union {
        struct nlmsghdr nlh;
        guint8 bytes[8192];
    } reply;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    struct stat st;
    ssize_t n;

    if (fstat(sock_fd, &st) < 0)
        return SOCKDIAG_PEER_UNKNOWN;

    memset(&request, 0, sizeof(request));
    request.nlh.nlmsg_len = sizeof(request);
    request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    request.nlh.nlmsg_flags = NLM_F_REQUEST;
    request.nlh.nlmsg_seq = ++*seq;
    request.req.sdiag_family = AF_UNIX;
    request.req.udiag_states = ~0u;
    request.req.udiag_ino = (guint32)st.st_ino;
    request.req.udiag_show = UDIAG_SHOW_PEER;
    request.req.udiag_cookie[0] = ~0u;
    request.req.udiag_cookie[1] = ~0u;

    if (sendto(nl_fd, &request, sizeof(request), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return SOCKDIAG_PEER_UNKNOWN;

    /* The kernel answers synchronously; drain until our sequence number. */
    for (int attempts = 0; attempts < 4; attempts++) {
        n = recv(nl_fd, &reply, sizeof(reply), MSG_DONTWAIT);
        if (n < 0)
            return SOCKDIAG_PEER_UNKNOWN;
        for (struct nlmsghdr *h = &reply.nlh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != *seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR)
                return SOCKDIAG_PEER_UNKNOWN;
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
                return SOCKDIAG_PEER_UNKNOWN;

            struct unix_diag_msg *msg = NLMSG_DATA(h);
            int attr_len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*msg));
            struct rtattr *attr = (struct rtattr *)(msg + 1);

            if (msg->udiag_ino != (guint32)st.st_ino)
                return SOCKDIAG_PEER_UNKNOWN;
            for (; RTA_OK(attr, attr_len); attr = RTA_NEXT(attr, attr_len)) {
                if (attr->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(attr) >= sizeof(guint32)) {
                    guint32 peer;

                    memcpy(&peer, RTA_DATA(attr), sizeof(peer));
                    return peer != 0 ? SOCKDIAG_PEER_PRESENT : SOCKDIAG_PEER_GONE;
                }
            }
            return SOCKDIAG_PEER_GONE;
        }
    }
    return SOCKDIAG_PEER_UNKNOWN;
}
