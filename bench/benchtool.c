/*
 * benchtool: the small measuring programs of the benchmark, in C so that
 * the measuring itself costs little and is steady.
 *
 *   benchtool pp-server --addr=A --port=P
 *       TCP echo of one byte at a time, one connection after the other.
 *       Prints "LISTENING <port>" once it listens (port 0 picks one).
 *   benchtool pp-client --addr=A --port=P --count=N [--warmup=W] [--timeout=S]
 *       1-byte request/response over one TCP connection (TCP_NODELAY),
 *       prints JSON: mean, p50, p99, min, max in microseconds.
 *   benchtool exec-time --count=N -- CMD ARGS...
 *       wall time of fork+exec+exit of CMD (stdout/stderr to /dev/null),
 *       prints JSON with median/min/max in milliseconds; fails if CMD fails.
 *   benchtool dhcp-time --count=N --type=dgram|stream --fd=K -- CMD ARGS...
 *       creates a socketpair, starts CMD with one end as fd K, sends a DHCP
 *       DISCOVER right after fork and times fork -> OFFER received.
 *   benchtool idle-rss --count=N --type=dgram|stream --fd=K -- CMD ARGS...
 *       starts N helpers the same way, waits until each answered a DHCP
 *       DISCOVER, then sums VmRSS and Pss over them and prints JSON.
 *
 * Every wait is bounded; children get PR_SET_PDEATHSIG so they cannot
 * outlive this tool, and they are killed and reaped before it exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    size_t l = strlen(name);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strncmp(argv[i], name, l) && argv[i][l] == '=')
            return argv[i] + l + 1;
    }
    return def;
}

static char **cmd_after_dashes(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--") && i + 1 < argc)
            return argv + i + 1;
    fprintf(stderr, "benchtool: missing -- CMD\n");
    exit(2);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void fail(const char *what)
{
    fprintf(stderr, "benchtool: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* sorted samples -> value at quantile q (nearest rank) */
static double quantile(const double *s, int n, double q)
{
    int idx = (int)(q * n + 0.999999) - 1;
    if (idx < 0)
        idx = 0;
    if (idx >= n)
        idx = n - 1;
    return s[idx];
}

static void print_stats(const char *unit, double *s, int n)
{
    double sum = 0;
    qsort(s, n, sizeof(*s), cmp_double);
    for (int i = 0; i < n; i++)
        sum += s[i];
    printf("{\"unit\": \"%s\", \"count\": %d, \"mean\": %.3f, \"median\": %.3f, \"p50\": %.3f, "
           "\"p99\": %.3f, \"min\": %.3f, \"max\": %.3f}\n",
           unit, n, sum / n, quantile(s, n, 0.5), quantile(s, n, 0.5), quantile(s, n, 0.99), s[0],
           s[n - 1]);
}

/* ---------------------------------------------------------------- ping-pong */

static int full_io(int fd, char *c, int wr)
{
    for (;;) {
        ssize_t r = wr ? send(fd, c, 1, MSG_NOSIGNAL) : recv(fd, c, 1, 0);
        if (r == 1)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static int __attribute__((noreturn)) pp_server(int argc, char **argv)
{
    const char *addr = opt(argc, argv, "--addr", "127.0.0.1");
    int port = atoi(opt(argc, argv, "--port", "0"));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    socklen_t sl = sizeof(sa);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (lfd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        fail("socket/address");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
        fail("bind/listen");
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    printf("LISTENING %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        struct timeval tv = { .tv_sec = 30 };
        char c;
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            fail("accept");
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        while (full_io(fd, &c, 0) == 1 && full_io(fd, &c, 1) == 1)
            ;
        close(fd);
    }
}

static int pp_client(int argc, char **argv)
{
    const char *addr = opt(argc, argv, "--addr", "127.0.0.1");
    int port = atoi(opt(argc, argv, "--port", "0"));
    int count = atoi(opt(argc, argv, "--count", "1000"));
    int warmup = atoi(opt(argc, argv, "--warmup", "100"));
    int timeout = atoi(opt(argc, argv, "--timeout", "10"));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct timeval tv = { .tv_sec = timeout };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    double *s = calloc(count > 0 ? count : 1, sizeof(double));
    char c = 'x';

    if (fd < 0 || !s || count < 1 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        fail("socket/address/count");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        fail("connect");
    for (int i = 0; i < warmup + count; i++) {
        double t0 = now_us(), t1;
        c = (char)i;
        if (full_io(fd, &c, 1) != 1)
            fail("send");
        if (full_io(fd, &c, 0) != 1)
            fail("recv (or timeout)");
        if (c != (char)i) {
            fprintf(stderr, "benchtool: ping-pong byte mismatch\n");
            return 1;
        }
        t1 = now_us();
        if (i >= warmup)
            s[i - warmup] = t1 - t0;
    }
    close(fd);
    print_stats("us", s, count);
    return 0;
}

/* ---------------------------------------------------------- process timing */

static pid_t spawn(char **cmd, int keep_fd, int as_fd)
{
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        if (keep_fd >= 0) {
            if (keep_fd == as_fd)
                fcntl(as_fd, F_SETFD, 0);
            else if (dup2(keep_fd, as_fd) < 0)
                _exit(126);
        }
        execv(cmd[0], cmd);
        _exit(127);
    }
    return pid;
}

static int exec_time(int argc, char **argv)
{
    int count = atoi(opt(argc, argv, "--count", "10"));
    char **cmd = cmd_after_dashes(argc, argv);
    double *s = calloc(count > 0 ? count : 1, sizeof(double));
    if (!s || count < 1)
        fail("count");
    for (int i = 0; i < count; i++) {
        int st;
        double t0 = now_us();
        pid_t pid = spawn(cmd, -1, -1);
        if (waitpid(pid, &st, 0) < 0)
            fail("waitpid");
        s[i] = (now_us() - t0) / 1000.0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "benchtool: %s exited with status %d\n", cmd[0], st);
            return 1;
        }
    }
    print_stats("ms", s, count);
    return 0;
}

/* --------------------------------------------------------------- DHCP probe */

static const unsigned char probe_mac[6] = { 0x52, 0x54, 0x00, 0xbe, 0x00, 0x01 };

static uint16_t ip_csum(const unsigned char *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* Builds an Ethernet/IPv4/UDP DHCPDISCOVER; returns its length. */
static size_t build_discover(unsigned char *f, uint32_t xid)
{
    size_t bootp_len = 236 + 312, udp_len = 8 + bootp_len, ip_len = 20 + udp_len;
    unsigned char *ip = f + 14, *udp = ip + 20, *bp = udp + 8, *opt;

    memset(f, 0, 14 + ip_len);
    memset(f, 0xff, 6);
    memcpy(f + 6, probe_mac, 6);
    f[12] = 0x08;
    ip[0] = 0x45;
    ip[2] = (unsigned char)(ip_len >> 8);
    ip[3] = (unsigned char)ip_len;
    ip[8] = 64;
    ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    {
        uint16_t c = ip_csum(ip, 20);
        ip[10] = (unsigned char)(c >> 8);
        ip[11] = (unsigned char)c;
    }
    udp[1] = 68;
    udp[3] = 67;
    udp[4] = (unsigned char)(udp_len >> 8);
    udp[5] = (unsigned char)udp_len;
    bp[0] = 1; /* BOOTREQUEST */
    bp[1] = 1;
    bp[2] = 6;
    bp[4] = (unsigned char)(xid >> 24);
    bp[5] = (unsigned char)(xid >> 16);
    bp[6] = (unsigned char)(xid >> 8);
    bp[7] = (unsigned char)xid;
    bp[10] = 0x80; /* broadcast */
    memcpy(bp + 28, probe_mac, 6);
    opt = bp + 236;
    opt[0] = 99;
    opt[1] = 130;
    opt[2] = 83;
    opt[3] = 99;
    opt[4] = 53; /* DHCP message type */
    opt[5] = 1;
    opt[6] = 1; /* DISCOVER */
    opt[7] = 255;
    return 14 + ip_len;
}

/* Is this frame a DHCPOFFER for xid? */
static int is_offer(const unsigned char *f, size_t n, uint32_t xid)
{
    const unsigned char *ip = f + 14, *udp, *bp, *o, *end = f + n;
    size_t ihl;
    if (n < 14 + 20 + 8 + 240 || f[12] != 0x08 || f[13] != 0x00 || ip[9] != 17)
        return 0;
    ihl = (size_t)(ip[0] & 15) * 4;
    udp = ip + ihl;
    bp = udp + 8;
    if (bp + 240 > end || udp[2] != 0 || udp[3] != 68 || bp[0] != 2)
        return 0;
    if (((uint32_t)bp[4] << 24 | (uint32_t)bp[5] << 16 | (uint32_t)bp[6] << 8 | bp[7]) != xid)
        return 0;
    for (o = bp + 240; o < end && *o != 255;) {
        if (*o == 0) {
            o++;
            continue;
        }
        if (o + 2 > end || o + 2 + o[1] > end)
            return 0;
        if (o[0] == 53 && o[1] == 1)
            return o[2] == 2;
        o += 2 + o[1];
    }
    return 0;
}

struct probe {
    pid_t pid;
    int fd;
    int stream;
    unsigned char *buf; /* stream reassembly */
    size_t have;
};

static void probe_start(struct probe *p, char **cmd, int stream, int as_fd, uint32_t xid)
{
    int sv[2];
    unsigned char frame[1024 + 4];
    size_t len;
    if (socketpair(AF_UNIX, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0, sv) < 0)
        fail("socketpair");
    p->stream = stream;
    p->pid = spawn(cmd, sv[1], as_fd);
    close(sv[1]);
    p->fd = sv[0];
    p->have = 0;
    p->buf = stream ? malloc(256 * 1024) : NULL;
    len = build_discover(frame + 4, xid);
    if (stream) {
        frame[0] = 0;
        frame[1] = 0;
        frame[2] = (unsigned char)(len >> 8);
        frame[3] = (unsigned char)len;
        if (send(p->fd, frame, len + 4, MSG_NOSIGNAL) != (ssize_t)(len + 4))
            fail("send discover");
    } else if (send(p->fd, frame + 4, len, MSG_NOSIGNAL) != (ssize_t)len) {
        fail("send discover");
    }
}

/* Waits up to timeout_ms for the OFFER; returns 1 on success. */
static int probe_wait(struct probe *p, uint32_t xid, int timeout_ms)
{
    static unsigned char buf[70000];
    double deadline = now_us() + timeout_ms * 1000.0;
    for (;;) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
        int left = (int)((deadline - now_us()) / 1000.0);
        ssize_t r;
        if (left <= 0)
            return 0;
        if (poll(&pfd, 1, left) <= 0)
            continue;
        if (!p->stream) {
            r = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                return 0;
            if (is_offer(buf, (size_t)r, xid))
                return 1;
            continue;
        }
        r = recv(p->fd, p->buf + p->have, 256 * 1024 - p->have, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return 0;
        p->have += (size_t)r;
        while (p->have >= 4) {
            size_t len = (size_t)p->buf[0] << 24 | (size_t)p->buf[1] << 16 |
                         (size_t)p->buf[2] << 8 | p->buf[3];
            int ok;
            if (len > 256 * 1024 - 4)
                return 0;
            if (p->have < 4 + len)
                break;
            ok = is_offer(p->buf + 4, len, xid);
            memmove(p->buf, p->buf + 4 + len, p->have - 4 - len);
            p->have -= 4 + len;
            if (ok)
                return 1;
        }
    }
}

static void probe_stop(struct probe *p)
{
    int st;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    close(p->fd);
    free(p->buf);
}

static int type_is_stream(int argc, char **argv)
{
    const char *t = opt(argc, argv, "--type", "dgram");
    if (!strcmp(t, "stream"))
        return 1;
    if (strcmp(t, "dgram")) {
        fprintf(stderr, "benchtool: --type must be dgram or stream\n");
        exit(2);
    }
    return 0;
}

static int dhcp_time(int argc, char **argv)
{
    int count = atoi(opt(argc, argv, "--count", "10"));
    int as_fd = atoi(opt(argc, argv, "--fd", "3"));
    int timeout = atoi(opt(argc, argv, "--timeout-ms", "5000"));
    int stream = type_is_stream(argc, argv);
    char **cmd = cmd_after_dashes(argc, argv);
    double *s = calloc(count > 0 ? count : 1, sizeof(double));
    if (!s || count < 1)
        fail("count");
    for (int i = 0; i < count; i++) {
        struct probe p;
        uint32_t xid = 0x5b000000u + (uint32_t)i;
        double t0 = now_us();
        probe_start(&p, cmd, stream, as_fd, xid);
        if (!probe_wait(&p, xid, timeout)) {
            fprintf(stderr, "benchtool: no DHCPOFFER from %s within %d ms\n", cmd[0], timeout);
            probe_stop(&p);
            return 1;
        }
        s[i] = (now_us() - t0) / 1000.0;
        probe_stop(&p);
    }
    print_stats("ms", s, count);
    return 0;
}

static long proc_kib(pid_t pid, const char *file, const char *key)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    long v = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int idle_rss(int argc, char **argv)
{
    int count = atoi(opt(argc, argv, "--count", "100"));
    int as_fd = atoi(opt(argc, argv, "--fd", "3"));
    int timeout = atoi(opt(argc, argv, "--timeout-ms", "10000"));
    int stream = type_is_stream(argc, argv);
    char **cmd = cmd_after_dashes(argc, argv);
    struct probe *ps = calloc(count > 0 ? count : 1, sizeof(*ps));
    long rss = 0, pss = 0, maxrss = 0;
    int ok = 1, started = 0;
    if (!ps || count < 1)
        fail("count");
    for (int i = 0; i < count; i++, started++)
        probe_start(&ps[i], cmd, stream, as_fd, 0x6c000000u + (uint32_t)i);
    for (int i = 0; i < count && ok; i++)
        if (!probe_wait(&ps[i], 0x6c000000u + (uint32_t)i, timeout)) {
            fprintf(stderr, "benchtool: helper %d gave no DHCPOFFER\n", i);
            ok = 0;
        }
    usleep(200 * 1000); /* let them settle into their idle wait */
    for (int i = 0; i < count && ok; i++) {
        long r = proc_kib(ps[i].pid, "status", "VmRSS");
        long p = proc_kib(ps[i].pid, "smaps_rollup", "Pss");
        if (r < 0 || p < 0) {
            fprintf(stderr, "benchtool: cannot read memory of helper %d\n", i);
            ok = 0;
            break;
        }
        rss += r;
        pss += p;
        if (r > maxrss)
            maxrss = r;
    }
    for (int i = 0; i < started; i++)
        probe_stop(&ps[i]);
    if (!ok)
        return 1;
    printf("{\"count\": %d, \"rss_sum_kib\": %ld, \"pss_sum_kib\": %ld, \"rss_max_kib\": %ld}\n",
           count, rss, pss, maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        goto usage;
    if (!strcmp(argv[1], "pp-server"))
        return pp_server(argc, argv);
    if (!strcmp(argv[1], "pp-client"))
        return pp_client(argc, argv);
    if (!strcmp(argv[1], "exec-time"))
        return exec_time(argc, argv);
    if (!strcmp(argv[1], "dhcp-time"))
        return dhcp_time(argc, argv);
    if (!strcmp(argv[1], "idle-rss"))
        return idle_rss(argc, argv);
usage:
    fprintf(stderr, "usage: benchtool pp-server|pp-client|exec-time|dhcp-time|idle-rss [options] [-- CMD...]\n");
    return 2;
}
