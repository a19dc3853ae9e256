/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * transport.c - Ethernet frames to and from QEMU over a Unix socket
 *
 * Theory of operation.  Two framings exist, told apart by SO_TYPE:
 *
 *  - SOCK_DGRAM (libvirt's socketpair, QEMU -netdev socket,fd= / dgram):
 *    one datagram is one frame.  Frames are read in batches with recvmmsg().
 *    A zero-length datagram is never sent: QEMU reads it as end of
 *    connection and stops the NIC for good.
 *  - SOCK_STREAM (QEMU -netdev stream, the framing passt uses): each frame
 *    is preceded by its length, 32-bit big-endian; frame.c decodes.
 *
 * Frames for QEMU are queued, not sent one by one: transport_send() copies
 * a frame into a bounded queue and transport_flush(), which the loop calls
 * once per iteration before it sleeps, hands the whole queue to the kernel
 * with one sendmmsg() (datagram) or one send() of the length-prefixed frames
 * laid end to end (stream).  A burst libslirp emits while serving one poll
 * (an ACK per guest segment, a window of segments per host read) thus costs
 * one system call and wakes QEMU once.  A queue that fills up mid-iteration
 * is flushed at once, and so is the queue after every 12 KiB read from the
 * guest, so that the guest's TCP sees its ACKs while it still has window
 * left.
 *
 * The socket is non-blocking and the loop never waits for QEMU.  When QEMU's
 * side is full (EAGAIN, typically while the VM is paused) what was not sent
 * stays queued and is sent when the socket is writable again (POLLOUT);
 * frames that find the queue full are dropped and counted: libslirp's TCP
 * retransmits, and the loop stays free to answer D-Bus (a migration Save must
 * not time out behind a stuck write).  On a stream a frame is only ever
 * dropped whole, so the byte stream never loses its framing.
 *
 * QEMU's end going away is reported as TRANSPORT_PEER_GONE: EOF or hang-up
 * on a stream; ECONNREFUSED, ENOTCONN or EPIPE on a datagram send; or, for
 * an idle datagram socket that reports nothing at all, the periodic
 * sock_diag peer query (sockdiag.c) that the loop runs once a second.
 *
 * While guest traffic is held for a migration Load (loop.c), the loop asks
 * for TRANSPORT_INPUT_WATCH until a frame is waiting: the socket is polled
 * for input but not read, so the frame stays queued in the kernel for
 * later and transport_input_waiting() tells the loop that the guest runs;
 * then TRANSPORT_INPUT_HOLD stops watching (a readable socket would wake
 * every poll).
 *
 * With --socket-path the helper listens and serves the first QEMU that
 * connects; later connections are accepted and closed at once.  When the
 * served connection ends the helper is done, as with --fd.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "autofd.h"
#include "log.h"
#include "sockdiag.h"

#define TRANSPORT_RX_BATCH 32
#define TRANSPORT_STREAM_CHUNK (256 * 1024)
#define TRANSPORT_SOCKBUF (4 * 1024 * 1024)
#define TRANSPORT_READS_PER_WAKEUP 8
/*
 * While guest frames are read, the queue is also flushed after every this
 * many bytes of them (8 frames at MTU 1500, every frame at 65520): libslirp
 * ACKs each guest segment, and with its 64 KiB window (no window scaling)
 * the guest stalls if the ACKs of a whole batch wait for the end of the
 * iteration.  Small frames (the guest's own ACKs) do not force a flush, so
 * the segments they release still leave in one batch.
 */
#define TRANSPORT_RX_FLUSH_BYTES (12 * 1024)
/* the output queue: at most this many frames, or bytes with stream prefixes */
#define TRANSPORT_TX_FRAMES 64
#define TRANSPORT_TX_BYTES (4 * (FRAME_MAX + FRAME_STREAM_HDR))

struct HelperTransport {
    TransportKind kind;
    int fd;        /* connection to QEMU, -1 while listening */
    int listen_fd; /* --socket-path listener, else -1 */
    char *listen_path;
    dev_t listen_dev;
    ino_t listen_ino;
    int diag_fd;
    guint32 diag_seq;
    bool diag_warned;
    bool peer_gone;
    size_t max_frame;

    /* positions in the loop's pollfd array, -1 if not added */
    int fd_index;
    int listen_index;
    TransportInput input;    /* as asked by the last transport_add_pollfds() */
    bool input_waiting;      /* a frame was seen waiting with TRANSPORT_INPUT_WATCH */

    /* datagram receive batch */
    guint8 *rx_bufs;
    struct mmsghdr rx_msgs[TRANSPORT_RX_BATCH];
    struct iovec rx_iov[TRANSPORT_RX_BATCH];

    /* stream receive */
    guint8 *rx_chunk;
    FrameDecoder decoder;

    /*
     * Output queue: frames laid end to end in tx_buf (a stream's with their
     * length prefixes), tx_len bytes in all.  Datagram: frame i is
     * tx_iov[i], frames [tx_first, tx_count) are unsent.  Stream: bytes
     * [tx_off, tx_len) are unsent.
     */
    guint8 *tx_buf;
    size_t tx_len;
    size_t tx_off;
    guint tx_count;
    guint tx_first;
    struct iovec tx_iov[TRANSPORT_TX_FRAMES];
    struct mmsghdr tx_msgs[TRANSPORT_TX_FRAMES];

    size_t rx_since_flush; /* bytes from the guest since the last flush */

    TransportStats stats;
};

static const char *const transport_kind_names[] = {
    [TRANSPORT_DGRAM] = "datagram",
    [TRANSPORT_STREAM] = "stream",
};
G_STATIC_ASSERT(G_N_ELEMENTS(transport_kind_names) == TRANSPORT_KIND_LAST);

/**
 * transport_kind_name() - human name of a framing
 * @kind: the framing
 *
 * Return: a static string
 */
const char *transport_kind_name(TransportKind kind)
{
    return transport_kind_names[kind];
}

static HelperTransport *transport_alloc(guint mtu)
{
    HelperTransport *t = g_new0(HelperTransport, 1);

    t->fd = -1;
    t->listen_fd = -1;
    t->diag_fd = -1;
    t->fd_index = -1;
    t->listen_index = -1;
    t->max_frame = MIN((size_t)mtu + FRAME_L2_OVERHEAD, (size_t)FRAME_MAX);
    frame_decoder_init(&t->decoder, FRAME_MAX);
    return t;
}

/**
 * transport_setup_conn() - make a connected socket ready for the frame path
 * @t: the transport
 * @fd: connected AF_UNIX socket, owned by @t from now on
 * @kind: its framing
 */
static void transport_setup_conn(HelperTransport *t, int fd, TransportKind kind)
{
    int size = TRANSPORT_SOCKBUF;
    int flags = fcntl(fd, F_GETFL);

    if (flags >= 0 && !(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    /* best effort: the kernel caps these at net.core.[rw]mem_max */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));

    t->fd = fd;
    t->kind = kind;
    if (kind == TRANSPORT_DGRAM) {
        t->rx_bufs = g_malloc((size_t)TRANSPORT_RX_BATCH * FRAME_MAX);
        for (int i = 0; i < TRANSPORT_RX_BATCH; i++) {
            t->rx_iov[i].iov_base = t->rx_bufs + (size_t)i * FRAME_MAX;
            t->rx_iov[i].iov_len = FRAME_MAX;
        }
    } else {
        t->rx_chunk = g_malloc(TRANSPORT_STREAM_CHUNK);
    }
    /* pages are only touched as far as the queue ever fills */
    t->tx_buf = g_malloc(TRANSPORT_TX_BYTES);
}

/**
 * transport_new_fd() - use an inherited socket to QEMU
 * @fd: the descriptor given with --fd; the transport owns it from now on
 * @mtu: the configured MTU; longer frames from the guest are dropped
 * @error: set with a message naming --fd when the descriptor is unusable
 *
 * Return: the transport, or NULL
 */
HelperTransport *transport_new_fd(int fd, guint mtu, GError **error)
{
    g_autoptr(HelperTransport) t = NULL;
    struct sockaddr_un peer;
    socklen_t len;
    int type = 0;
    int domain = 0;
    int listening = 0;

    if (fcntl(fd, F_GETFD) < 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "Invalid --fd value '%d': not an open file descriptor", fd);
        return NULL;
    }
    len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "Invalid --fd value '%d': %s", fd,
                    errno == ENOTSOCK ? "not a socket" : g_strerror(errno));
        return NULL;
    }
    len = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "Invalid --fd value '%d': not an AF_UNIX socket", fd);
        return NULL;
    }
    if (type != SOCK_DGRAM && type != SOCK_STREAM) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "Invalid --fd value '%d': the socket must be SOCK_DGRAM or SOCK_STREAM", fd);
        return NULL;
    }
    len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "Invalid --fd value '%d': a listening socket (use --socket-path)", fd);
        return NULL;
    }
    len = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "Invalid --fd value '%d': the socket is not connected", fd);
        return NULL;
    }

    t = transport_alloc(mtu);
    t->diag_fd = sockdiag_open(error);
    if (t->diag_fd < 0)
        return NULL;
    transport_setup_conn(t, fd, type == SOCK_DGRAM ? TRANSPORT_DGRAM : TRANSPORT_STREAM);
    return g_steal_pointer(&t);
}

/**
 * transport_new_listen() - listen on a Unix stream socket for one QEMU
 * @path: the socket path; a stale socket there is replaced
 * @mtu: the configured MTU
 * @error: set with a message naming --socket-path on failure
 *
 * Return: the transport, or NULL
 */
HelperTransport *transport_new_listen(const char *path, guint mtu, GError **error)
{
    g_autoptr(HelperTransport) t = NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    HELPER_AUTOFD int fd = -1;
    struct stat st;

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (lstat(path, &st) == 0) {
        HELPER_AUTOFD int probe = -1;

        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "Invalid --socket-path value '%s': exists and is not a socket", path);
            return NULL;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(EADDRINUSE),
                        "Invalid --socket-path value '%s': another process is listening there",
                        path);
            return NULL;
        }
        unlink(path);
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0 ||
        stat(path, &st) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "Invalid --socket-path value '%s': %s", path, g_strerror(errno));
        return NULL;
    }

    t = transport_alloc(mtu);
    t->kind = TRANSPORT_STREAM;
    t->listen_fd = autofd_steal(&fd);
    t->listen_path = g_strdup(path);
    t->listen_dev = st.st_dev;
    t->listen_ino = st.st_ino;
    return g_steal_pointer(&t);
}

/**
 * transport_free() - close what the transport owns and remove its socket file
 * @t: the transport, or NULL
 */
void transport_free(HelperTransport *t)
{
    struct stat st;

    if (!t)
        return;
    autofd_close(&t->fd);
    autofd_close(&t->listen_fd);
    autofd_close(&t->diag_fd);
    if (t->listen_path && lstat(t->listen_path, &st) == 0 && st.st_dev == t->listen_dev &&
        st.st_ino == t->listen_ino)
        unlink(t->listen_path);
    g_free(t->listen_path);
    g_free(t->rx_bufs);
    g_free(t->rx_chunk);
    g_free(t->tx_buf);
    frame_decoder_clear(&t->decoder);
    g_free(t);
}

/**
 * transport_kind() - the framing in use
 * @t: the transport
 *
 * Return: TRANSPORT_DGRAM or TRANSPORT_STREAM
 */
TransportKind transport_kind(const HelperTransport *t)
{
    return t->kind;
}

/**
 * transport_stats() - frame and drop counters
 * @t: the transport
 *
 * Return: the counters, owned by @t
 */
const TransportStats *transport_stats(const HelperTransport *t)
{
    return &t->stats;
}

/**
 * transport_add_pollfds() - append the descriptors the loop must watch
 * @t: the transport
 * @pollfds: the loop's GArray of GPollFD
 * @input: whether to read guest frames, only watch for one, or neither
 *         (while guest traffic is held back for a Load)
 */
void transport_add_pollfds(HelperTransport *t, GArray *pollfds, TransportInput input)
{
    t->input = input;
    t->fd_index = -1;
    t->listen_index = -1;
    if (t->listen_fd >= 0) {
        GPollFD p = { .fd = t->listen_fd, .events = G_IO_IN };

        t->listen_index = (int)pollfds->len;
        g_array_append_val(pollfds, p);
    }
    if (t->fd >= 0) {
        GPollFD p = { .fd = t->fd, .events = 0 };

        if (input != TRANSPORT_INPUT_HOLD)
            p.events |= G_IO_IN;
        if (t->tx_len > 0)
            p.events |= G_IO_OUT;
        /* POLLHUP and POLLERR are reported whatever the events */
        t->fd_index = (int)pollfds->len;
        g_array_append_val(pollfds, p);
    }
}

/**
 * transport_deliver() - check one frame from QEMU and hand it on
 * @t: the transport
 * @frame: the frame
 * @len: its length
 * @func: receiver of accepted frames
 * @opaque: for @func
 */
static void transport_deliver(HelperTransport *t, const guint8 *frame, size_t len, FrameFunc func,
                              void *opaque)
{
    FrameVerdict verdict = frame_check(frame, len, t->max_frame);

    if (verdict != FRAME_OK) {
        t->stats.rx_dropped[verdict]++;
        return;
    }
    t->stats.rx_frames++;
    t->stats.rx_bytes += len;
    func(frame, len, opaque);
    t->rx_since_flush += len;
    if (t->rx_since_flush >= TRANSPORT_RX_FLUSH_BYTES)
        transport_flush(t);
}

typedef struct {
    HelperTransport *t;
    FrameFunc func;
    void *opaque;
} TransportDeliverCtx;

static void transport_deliver_cb(const guint8 *frame, size_t len, void *opaque)
{
    TransportDeliverCtx *ctx = opaque;

    transport_deliver(ctx->t, frame, len, ctx->func, ctx->opaque);
}

static bool transport_errno_is_peer_gone(int err)
{
    return err == ECONNREFUSED || err == ENOTCONN || err == EPIPE || err == ECONNRESET;
}

/**
 * transport_read_error() - what a failed read from QEMU means
 * @err: errno of the failed read
 *
 * Return: TRANSPORT_PEER_GONE when QEMU's end is gone; otherwise
 * TRANSPORT_OK (nothing to read now, or a transient error, which is logged)
 */
static TransportStatus transport_read_error(int err)
{
    if (err == EAGAIN || err == EINTR)
        return TRANSPORT_OK;
    if (transport_errno_is_peer_gone(err))
        return TRANSPORT_PEER_GONE;
    log_warn("Reading from QEMU failed: %s", g_strerror(err));
    return TRANSPORT_OK;
}

/**
 * transport_read_dgram() - read batches of datagrams until none is left
 * @t: the transport
 * @func: receiver of accepted frames
 * @opaque: for @func
 *
 * Return: TRANSPORT_OK or TRANSPORT_PEER_GONE
 */
static TransportStatus transport_read_dgram(HelperTransport *t, FrameFunc func, void *opaque)
{
    for (int round = 0; round < TRANSPORT_READS_PER_WAKEUP; round++) {
        int n;

        for (int i = 0; i < TRANSPORT_RX_BATCH; i++) {
            memset(&t->rx_msgs[i].msg_hdr, 0, sizeof(t->rx_msgs[i].msg_hdr));
            t->rx_msgs[i].msg_hdr.msg_iov = &t->rx_iov[i];
            t->rx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        n = recvmmsg(t->fd, t->rx_msgs, TRANSPORT_RX_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0)
            return transport_read_error(errno);
        for (int i = 0; i < n; i++) {
            size_t len = t->rx_msgs[i].msg_len;

            if (t->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                t->stats.rx_dropped[FRAME_OVERSIZE]++;
                continue;
            }
            transport_deliver(t, t->rx_iov[i].iov_base, len, func, opaque);
        }
        if (n < TRANSPORT_RX_BATCH)
            return TRANSPORT_OK;
    }
    return TRANSPORT_OK;
}

/**
 * transport_read_stream() - read stream bytes and decode frames
 * @t: the transport
 * @func: receiver of accepted frames
 * @opaque: for @func
 *
 * Return: TRANSPORT_OK, or TRANSPORT_PEER_GONE on EOF or reset
 */
static TransportStatus transport_read_stream(HelperTransport *t, FrameFunc func, void *opaque)
{
    TransportDeliverCtx ctx = { t, func, opaque };

    for (int round = 0; round < TRANSPORT_READS_PER_WAKEUP; round++) {
        ssize_t n = recv(t->fd, t->rx_chunk, TRANSPORT_STREAM_CHUNK, MSG_DONTWAIT);

        if (n == 0)
            return TRANSPORT_PEER_GONE;
        if (n < 0)
            return transport_read_error(errno);
        guint64 oversize = t->decoder.oversize;
        frame_decoder_feed(&t->decoder, t->rx_chunk, (size_t)n, transport_deliver_cb, &ctx);
        t->stats.rx_dropped[FRAME_OVERSIZE] += t->decoder.oversize - oversize;
        if ((size_t)n < TRANSPORT_STREAM_CHUNK)
            return TRANSPORT_OK;
    }
    return TRANSPORT_OK;
}

/**
 * transport_flush_dgram() - send queued datagrams, as many per call as fit
 * @t: the transport
 *
 * A datagram the kernel refuses for any reason but a full socket or a gone
 * peer is dropped and counted, and the rest are still sent.
 *
 * Return: TRANSPORT_OK (frames may still be queued) or TRANSPORT_PEER_GONE
 */
static TransportStatus transport_flush_dgram(HelperTransport *t)
{
    while (t->tx_first < t->tx_count) {
        guint todo = t->tx_count - t->tx_first;
        int n;

        for (guint i = 0; i < todo; i++) {
            struct msghdr *hdr = &t->tx_msgs[i].msg_hdr;

            memset(hdr, 0, sizeof(*hdr));
            hdr->msg_iov = &t->tx_iov[t->tx_first + i];
            hdr->msg_iovlen = 1;
        }
        n = sendmmsg(t->fd, t->tx_msgs, todo, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == ENOBUFS)
                return TRANSPORT_OK;
            if (errno == EINTR)
                continue;
            if (transport_errno_is_peer_gone(errno)) {
                t->peer_gone = true;
                return TRANSPORT_PEER_GONE;
            }
            t->stats.tx_dropped_error++;
            n = 1;
        }
        t->tx_first += (guint)n;
    }
    return TRANSPORT_OK;
}

/**
 * transport_flush_stream() - send the queued bytes of a stream
 * @t: the transport
 *
 * Return: TRANSPORT_OK (bytes may still be queued) or TRANSPORT_PEER_GONE
 */
static TransportStatus transport_flush_stream(HelperTransport *t)
{
    while (t->tx_off < t->tx_len) {
        ssize_t n =
            send(t->fd, t->tx_buf + t->tx_off, t->tx_len - t->tx_off, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == ENOBUFS)
                return TRANSPORT_OK;
            if (errno == EINTR)
                continue;
            /* a stream that fails mid-frame cannot be resynchronised */
            t->peer_gone = true;
            return TRANSPORT_PEER_GONE;
        }
        t->tx_off += (size_t)n;
    }
    return TRANSPORT_OK;
}

/**
 * transport_tx_compact() - move what is still unsent to the queue's start
 * @t: the transport
 */
static void transport_tx_compact(HelperTransport *t)
{
    size_t done;

    if (t->kind == TRANSPORT_DGRAM) {
        if (t->tx_first == t->tx_count) {
            t->tx_len = 0;
            t->tx_count = t->tx_first = 0;
            return;
        }
        if (t->tx_first == 0)
            return;
        done = (size_t)((guint8 *)t->tx_iov[t->tx_first].iov_base - t->tx_buf);
        for (guint i = t->tx_first; i < t->tx_count; i++) {
            t->tx_iov[i - t->tx_first].iov_base = (guint8 *)t->tx_iov[i].iov_base - done;
            t->tx_iov[i - t->tx_first].iov_len = t->tx_iov[i].iov_len;
        }
        t->tx_count -= t->tx_first;
        t->tx_first = 0;
    } else {
        done = t->tx_off;
        t->tx_off = 0;
    }
    memmove(t->tx_buf, t->tx_buf + done, t->tx_len - done);
    t->tx_len -= done;
}

/**
 * transport_flush() - send the frames queued for QEMU without blocking
 * @t: the transport
 *
 * What QEMU cannot take now stays queued; the loop then polls for POLLOUT
 * (transport_add_pollfds()) and calls this again.
 *
 * Return: TRANSPORT_PEER_GONE once QEMU's end is closed, else TRANSPORT_OK
 */
TransportStatus transport_flush(HelperTransport *t)
{
    TransportStatus status;

    t->rx_since_flush = 0;
    if (t->tx_len == 0)
        return t->peer_gone ? TRANSPORT_PEER_GONE : TRANSPORT_OK;
    if (t->fd < 0 || t->peer_gone) {
        t->tx_len = t->tx_off = 0;
        t->tx_count = t->tx_first = 0;
        return t->peer_gone ? TRANSPORT_PEER_GONE : TRANSPORT_OK;
    }
    status = t->kind == TRANSPORT_DGRAM ? transport_flush_dgram(t) : transport_flush_stream(t);
    transport_tx_compact(t);
    return status;
}

/**
 * transport_accept() - take a connection on the --socket-path listener
 * @t: the transport
 */
static void transport_accept(HelperTransport *t)
{
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    if (t->fd >= 0) {
        t->stats.rejected_connections++;
        log_warn("Refusing a second connection on '%s': one QEMU is already served",
                 t->listen_path);
        close(fd);
        return;
    }
    log_info("QEMU connected on '%s'", t->listen_path);
    transport_setup_conn(t, fd, TRANSPORT_STREAM);
}

/**
 * transport_input_waiting() - whether a guest frame was seen waiting
 * @t: the transport
 *
 * Return: true once a poll with TRANSPORT_INPUT_WATCH found the socket
 * readable (the guest has sent something); stays true
 */
bool transport_input_waiting(const HelperTransport *t)
{
    return t->input_waiting;
}

/**
 * transport_dispatch() - act on the poll results for the transport's fds
 * @t: the transport
 * @pollfds: the loop's array after poll
 * @func: receiver of accepted frames from the guest
 * @opaque: for @func
 *
 * Return: TRANSPORT_PEER_GONE once QEMU's end is closed, else TRANSPORT_OK
 */
TransportStatus transport_dispatch(HelperTransport *t, const GArray *pollfds, FrameFunc func,
                                   void *opaque)
{
    if (t->listen_index >= 0 &&
        (g_array_index(pollfds, GPollFD, t->listen_index).revents & G_IO_IN))
        transport_accept(t);

    if (t->fd_index >= 0) {
        gushort revents = g_array_index(pollfds, GPollFD, t->fd_index).revents;

        if ((revents & G_IO_OUT) && transport_flush(t) == TRANSPORT_PEER_GONE)
            return TRANSPORT_PEER_GONE;
        if (t->input == TRANSPORT_INPUT_WATCH && (revents & G_IO_IN)) {
            t->input_waiting = true;
            revents &= (gushort)~G_IO_IN;
        }
        if (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
            TransportStatus status = t->kind == TRANSPORT_DGRAM
                                         ? transport_read_dgram(t, func, opaque)
                                         : transport_read_stream(t, func, opaque);
            if (status == TRANSPORT_PEER_GONE)
                return status;
            /* a stream hang-up with nothing left to read ends the connection */
            if ((revents & (G_IO_HUP | G_IO_ERR)) && t->kind == TRANSPORT_STREAM &&
                !(revents & G_IO_IN))
                return TRANSPORT_PEER_GONE;
        }
    }
    return t->peer_gone ? TRANSPORT_PEER_GONE : TRANSPORT_OK;
}

/**
 * transport_tx_room() - whether one more frame fits in the output queue
 * @t: the transport
 * @len: the frame's length
 *
 * Return: true if it fits
 */
static bool transport_tx_room(const HelperTransport *t, size_t len)
{
    if (t->kind == TRANSPORT_DGRAM)
        return t->tx_count < TRANSPORT_TX_FRAMES && t->tx_len + len <= TRANSPORT_TX_BYTES;
    return t->tx_len + FRAME_STREAM_HDR + len <= TRANSPORT_TX_BYTES;
}

/**
 * transport_send() - queue one frame for QEMU; transport_flush() sends it
 * @t: the transport
 * @frame: the frame, copied
 * @len: its length; 0 is refused (QEMU would read it as end of connection)
 *
 * A full queue is flushed first; if QEMU cannot take enough of it, the
 * frame is dropped.
 *
 * Return: TRANSPORT_PEER_GONE if QEMU's end is closed; otherwise TRANSPORT_OK,
 * also when the frame was dropped (counted in the statistics)
 */
TransportStatus transport_send(HelperTransport *t, const guint8 *frame, size_t len)
{
    guint8 *dst;

    if (t->fd < 0 || t->peer_gone) {
        t->stats.tx_dropped_error++;
        return t->peer_gone ? TRANSPORT_PEER_GONE : TRANSPORT_OK;
    }
    if (len == 0 || len > FRAME_MAX) {
        t->stats.tx_dropped_error++;
        return TRANSPORT_OK;
    }
    if (!transport_tx_room(t, len)) {
        if (transport_flush(t) == TRANSPORT_PEER_GONE)
            return TRANSPORT_PEER_GONE;
        if (!transport_tx_room(t, len)) {
            t->stats.tx_dropped_full++;
            return TRANSPORT_OK;
        }
    }

    dst = t->tx_buf + t->tx_len;
    if (t->kind == TRANSPORT_DGRAM) {
        t->tx_iov[t->tx_count].iov_base = dst;
        t->tx_iov[t->tx_count].iov_len = len;
        t->tx_count++;
    } else {
        frame_stream_header(dst, len);
        dst += FRAME_STREAM_HDR;
        t->tx_len += FRAME_STREAM_HDR;
    }
    memcpy(dst, frame, len);
    t->tx_len += len;
    t->stats.tx_frames++;
    t->stats.tx_bytes += len;
    return TRANSPORT_OK;
}

/**
 * transport_wants_peer_checks() - whether the loop should poll sock_diag
 * @t: the transport
 *
 * Return: true for a connected datagram socket, whose peer's death the
 * kernel does not signal
 */
bool transport_wants_peer_checks(const HelperTransport *t)
{
    return t->kind == TRANSPORT_DGRAM && t->fd >= 0 && t->diag_fd >= 0;
}

/**
 * transport_check_peer() - ask the kernel whether QEMU's end still exists
 * @t: the transport
 *
 * Return: TRANSPORT_PEER_GONE once it does not, else TRANSPORT_OK (also
 * when the kernel cannot be asked: then only send errors end the helper)
 */
TransportStatus transport_check_peer(HelperTransport *t)
{
    switch (sockdiag_query_peer(t->diag_fd, t->fd, &t->diag_seq)) {
    case SOCKDIAG_PEER_PRESENT:
        return TRANSPORT_OK;
    case SOCKDIAG_PEER_GONE:
        t->peer_gone = true;
        return TRANSPORT_PEER_GONE;
    case SOCKDIAG_PEER_UNKNOWN:
        if (!t->diag_warned) {
            t->diag_warned = true;
            log_warn("Cannot query the socket's peer through sock_diag; "
                     "QEMU's exit is noticed on the next send only");
        }
        return TRANSPORT_OK;
    case SOCKDIAG_PEER_LAST:
        break;
    }
    g_assert_not_reached();
}
