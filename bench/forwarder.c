/*
 * forwarder: relay Ethernet frames between a tap device and a slirp helper's
 * AF_UNIX socket, the way QEMU's socket (datagram) and stream netdevs do.
 *
 * It stands in for QEMU in the benchmark, so it tries to cost as little as
 * possible: one thread, level-triggered epoll, frames read from the tap in
 * batches and handed to the socket with one sendmmsg() (datagram) or one
 * writev() (stream), datagrams received with recvmmsg(), stream input read
 * in large chunks and split on the 4-byte big-endian length prefixes.
 *
 * Flow control mirrors QEMU: when the socket cannot take more, the tap is no
 * longer read (the guest's kernel queues or drops), and reading resumes once
 * the socket drains. Frames that the tap refuses are dropped.
 *
 *   forwarder --fd=N --mode=dgram|stream --tap=NAME [--netns=PATH] [--batch=1..32] [--sockbuf=BYTES]
 *
 * The tap is created with IFF_TAP|IFF_NO_PI inside the network namespace at
 * PATH (the forwarder switches back afterwards). When the tap is open it
 * prints "READY <ifname>" on stdout. It exits 0 when the helper side closes
 * or goes away, and prints counters on stderr when it ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FRAME 65550 /* 65521 MTU + Ethernet header, rounded up */
#define BATCH 32
#define STREAM_IN_CAP (512 * 1024)

enum mode { MODE_DGRAM, MODE_STREAM };

static int tapfd = -1, sockfd = -1, epfd = -1;
static enum mode mode;

/* tap -> socket: frames waiting to be sent */
static unsigned char *out_frames[BATCH];
static size_t out_len[BATCH];
static int out_count, out_first;     /* dgram: frames [out_first, out_count) pending */
static unsigned char out_hdr[BATCH][4]; /* stream length prefixes */
static size_t out_stream_off;        /* stream: bytes of the batch already written */
static size_t out_stream_total;
static int tap_reading = 1;          /* is EPOLLIN on the tap enabled */
static int batch = BATCH;            /* frames per tap->socket send (--batch) */

/* socket -> tap */
static unsigned char *in_frames[BATCH];
static unsigned char *in_stream;     /* stream reassembly buffer */
static size_t in_have;

static unsigned long long n_tap_in, n_sock_out, n_sock_in, n_tap_out, n_tap_drop;

static void die(const char *what)
{
    fprintf(stderr, "forwarder: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl");
}

static void ep_set(int fd, uint32_t events, int op)
{
    struct epoll_event ev = { .events = events, .data.fd = fd };
    if (epoll_ctl(epfd, op, fd, &ev) < 0)
        die("epoll_ctl");
}

static void peer_gone(const char *why)
{
    fprintf(stderr, "forwarder: helper side %s, exiting\n", why);
    fprintf(stderr, "forwarder: tap_in=%llu sock_out=%llu sock_in=%llu tap_out=%llu tap_drop=%llu\n",
            n_tap_in, n_sock_out, n_sock_in, n_tap_out, n_tap_drop);
    exit(0);
}

static int open_tap(const char *name, const char *netns)
{
    int orig = -1, fd;
    struct ifreq ifr;

    if (netns) {
        int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0)
            die("open netns");
        orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (orig < 0)
            die("open own netns");
        if (setns(nsfd, CLONE_NEWNET) < 0)
            die("setns");
        close(nsfd);
    }
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("open /dev/net/tun");
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        die("TUNSETIFF");
    if (orig >= 0) {
        if (setns(orig, CLONE_NEWNET) < 0)
            die("setns back");
        close(orig);
    }
    printf("READY %s\n", ifr.ifr_name);
    fflush(stdout);
    return fd;
}

static void tap_pause(void)
{
    if (tap_reading) {
        ep_set(tapfd, 0, EPOLL_CTL_MOD);
        ep_set(sockfd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        tap_reading = 0;
    }
}

static void tap_resume(void)
{
    if (!tap_reading) {
        ep_set(tapfd, EPOLLIN, EPOLL_CTL_MOD);
        ep_set(sockfd, EPOLLIN, EPOLL_CTL_MOD);
        tap_reading = 1;
    }
}

static int sock_send_error(int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
        return 0;
    if (err == EINTR)
        return 0;
    if (err == ECONNREFUSED || err == ENOTCONN || err == EPIPE || err == ECONNRESET)
        peer_gone("closed");
    die("send to helper");
    return 0;
}

/* Try to push pending tap frames to the socket. Returns 1 when all are out. */
static int flush_out(void)
{
    if (mode == MODE_DGRAM) {
        while (out_first < out_count) {
            struct mmsghdr msgs[BATCH];
            struct iovec iov[BATCH];
            int n = out_count - out_first, i, r;
            for (i = 0; i < n; i++) {
                iov[i].iov_base = out_frames[out_first + i];
                iov[i].iov_len = out_len[out_first + i];
                memset(&msgs[i], 0, sizeof(msgs[i]));
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            r = sendmmsg(sockfd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r < 0) {
                sock_send_error(errno);
                return 0;
            }
            out_first += r;
            n_sock_out += r;
        }
        out_first = out_count = 0;
        return 1;
    }
    while (out_stream_off < out_stream_total) {
        struct iovec iov[2 * BATCH];
        size_t skip = out_stream_off;
        int n = 0, i;
        ssize_t r;
        for (i = 0; i < out_count; i++) {
            size_t hl = 4, fl = out_len[i];
            if (skip >= hl) {
                skip -= hl;
            } else {
                iov[n].iov_base = out_hdr[i] + skip;
                iov[n++].iov_len = hl - skip;
                skip = 0;
            }
            if (skip >= fl) {
                skip -= fl;
            } else {
                iov[n].iov_base = out_frames[i] + skip;
                iov[n++].iov_len = fl - skip;
                skip = 0;
            }
        }
        r = writev(sockfd, iov, n);
        if (r < 0) {
            sock_send_error(errno);
            return 0;
        }
        out_stream_off += (size_t)r;
    }
    n_sock_out += out_count;
    out_count = 0;
    out_stream_off = out_stream_total = 0;
    return 1;
}

static void tap_to_sock(void)
{
    /* Only read when nothing is pending (otherwise the tap is paused). */
    while (out_count < batch) {
        ssize_t r = read(tapfd, out_frames[out_count], MAX_FRAME);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            die("read tap");
        }
        if (r == 0)
            break;
        out_len[out_count] = (size_t)r;
        out_hdr[out_count][0] = (unsigned char)(r >> 24);
        out_hdr[out_count][1] = (unsigned char)(r >> 16);
        out_hdr[out_count][2] = (unsigned char)(r >> 8);
        out_hdr[out_count][3] = (unsigned char)r;
        out_stream_total += 4 + (size_t)r;
        out_count++;
        n_tap_in++;
    }
    if (out_count && !flush_out())
        tap_pause();
}

static void write_tap(const unsigned char *f, size_t len)
{
    ssize_t r;
    do {
        r = write(tapfd, f, len);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == ENOBUFS || errno == EIO || errno == EINVAL) {
            n_tap_drop++;
            return;
        }
        die("write tap");
    }
    n_tap_out++;
}

static void sock_to_tap(void)
{
    if (mode == MODE_DGRAM) {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        int i, r;
        for (i = 0; i < BATCH; i++) {
            iov[i].iov_base = in_frames[i];
            iov[i].iov_len = MAX_FRAME;
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        r = recvmmsg(sockfd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            if (errno == ECONNREFUSED || errno == ECONNRESET || errno == ENOTCONN)
                peer_gone("closed");
            die("recv from helper");
        }
        for (i = 0; i < r; i++) {
            n_sock_in++;
            if (msgs[i].msg_len == 0) /* QEMU treats this as end of connection */
                peer_gone("sent an empty datagram");
            write_tap(in_frames[i], msgs[i].msg_len);
        }
        return;
    }
    {
        ssize_t r = read(sockfd, in_stream + in_have, STREAM_IN_CAP - in_have);
        size_t off = 0;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            if (errno == ECONNRESET)
                peer_gone("reset");
            die("read from helper");
        }
        if (r == 0)
            peer_gone("closed");
        in_have += (size_t)r;
        while (in_have - off >= 4) {
            const unsigned char *p = in_stream + off;
            size_t len = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
            if (len == 0 || len > MAX_FRAME) {
                fprintf(stderr, "forwarder: bad frame length %zu from helper\n", len);
                exit(1);
            }
            if (in_have - off < 4 + len)
                break;
            n_sock_in++;
            write_tap(p + 4, len);
            off += 4 + len;
        }
        if (off) {
            memmove(in_stream, in_stream + off, in_have - off);
            in_have -= off;
        }
    }
}

static void on_term(int sig)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "forwarder: signal %d: tap_in=%llu sock_out=%llu sock_in=%llu tap_out=%llu tap_drop=%llu\n",
                     sig, n_tap_in, n_sock_out, n_sock_in, n_tap_out, n_tap_drop);
    if (getenv("FORWARDER_STATS") && n > 0)
        (void)!write(2, buf, (size_t)n);
    _exit(0);
}

static void usage(void)
{
    fprintf(stderr, "usage: forwarder --fd=N --mode=dgram|stream --tap=NAME [--netns=PATH] [--batch=1..32] [--sockbuf=BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *tap = NULL, *netns = NULL, *m = NULL;
    int i, sockbuf = 0;

    for (i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--fd=", 5))
            sockfd = atoi(argv[i] + 5);
        else if (!strncmp(argv[i], "--mode=", 7))
            m = argv[i] + 7;
        else if (!strncmp(argv[i], "--tap=", 6))
            tap = argv[i] + 6;
        else if (!strncmp(argv[i], "--netns=", 8))
            netns = argv[i] + 8;
        else if (!strncmp(argv[i], "--batch=", 8))
            batch = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "--sockbuf=", 10))
            sockbuf = atoi(argv[i] + 10);
        else
            usage();
    }
    if (sockfd < 0 || !tap || !m || batch < 1 || batch > BATCH)
        usage();
    if (!strcmp(m, "dgram"))
        mode = MODE_DGRAM;
    else if (!strcmp(m, "stream"))
        mode = MODE_STREAM;
    else
        usage();

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    for (i = 0; i < BATCH; i++) {
        out_frames[i] = malloc(MAX_FRAME);
        in_frames[i] = mode == MODE_DGRAM ? malloc(MAX_FRAME) : NULL;
        if (!out_frames[i] || (mode == MODE_DGRAM && !in_frames[i]))
            die("malloc");
    }
    if (mode == MODE_STREAM && !(in_stream = malloc(STREAM_IN_CAP)))
        die("malloc");

    tapfd = open_tap(tap, netns);
    set_nonblock(tapfd);
    set_nonblock(sockfd);
    if (sockbuf > 0) {
        /* QEMU leaves the defaults; this is for experiments only */
        setsockopt(sockfd, SOL_SOCKET, SO_SNDBUFFORCE, &sockbuf, sizeof(sockbuf));
        setsockopt(sockfd, SOL_SOCKET, SO_RCVBUFFORCE, &sockbuf, sizeof(sockbuf));
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    ep_set(tapfd, EPOLLIN, EPOLL_CTL_ADD);
    ep_set(sockfd, EPOLLIN, EPOLL_CTL_ADD);

    for (;;) {
        struct epoll_event evs[4];
        int n = epoll_wait(epfd, evs, 4, -1), k;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (k = 0; k < n; k++) {
            uint32_t e = evs[k].events;
            if (evs[k].data.fd == sockfd) {
                if (e & EPOLLIN)
                    sock_to_tap();
                if ((e & EPOLLOUT) && flush_out())
                    tap_resume();
                if ((e & (EPOLLHUP | EPOLLERR)) && !(e & EPOLLIN)) {
                    int err = 0;
                    socklen_t l = sizeof(err);
                    getsockopt(sockfd, SOL_SOCKET, SO_ERROR, &err, &l);
                    peer_gone(err ? strerror(err) : "hung up");
                }
            } else if (evs[k].data.fd == tapfd && (e & EPOLLIN) && tap_reading) {
                tap_to_sock();
            }
        }
    }
}
