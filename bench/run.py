#!/usr/bin/python3
"""Benchmark of slirp-helper against libslirp-helper, slirp4netns, pasta and loopback.

A network namespace plays the guest: its kernel TCP stack talks through a tap
device. For the socket helpers (ours and Debian's libslirp-helper) a small C
forwarder relays frames between that tap and the helper's AF_UNIX socket the
way QEMU's socket/stream netdev does; slirp4netns and pasta attach to the
namespace themselves. The host side is reached from the guest at 10.0.2.2,
which the backends map to the host's 127.0.0.1, where the servers listen.

    /usr/bin/python3 bench/run.py            full run (5 interleaved repetitions)
    /usr/bin/python3 bench/run.py --quick    one short repetition, correctness only

Needs root (network namespaces, tap). Writes build/bench/results.{md,json}.
Only Debian packages are used: python3, iperf3, iproute2, slirp4netns, passt,
libslirp-helper, a C compiler and make.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.path.join(REPO, "build", "bench")
LOGS = os.path.join(BUILD, "logs")
OURS_DEFAULT = os.path.join(REPO, "build", "helper", "src", "slirp-helper")
LSH = "/usr/bin/libslirp-helper"
SLIRP4NETNS = "/usr/bin/slirp4netns"
PASTA = "/usr/bin/pasta"
PASST = "/usr/bin/passt"
IPERF3 = "/usr/bin/iperf3"
PY = "/usr/bin/python3"
NS_PREFIX = "slbench-guest-"
GUEST_IP, GUEST_GW = "10.0.2.15", "10.0.2.2"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Extra forwarder options for experiments, e.g. "--batch=1" (the default batches 32 frames).
FORWARDER_EXTRA = os.environ.get("BENCH_FORWARDER_ARGS", "").split()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# Process and namespace bookkeeping: everything we start is recorded by PID
# and every namespace by name, and both are removed on any exit path.

class Registry:
    def __init__(self):
        self.procs = []
        self.netns = []
        self.files = []
        self.lock = threading.Lock()
        self.counter = 0

    def spawn(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, **kw)
        with self.lock:
            self.procs.append(p)
        return p

    def kill(self, p, grace=2.0):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log("warning: pid %d did not die" % p.pid)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()
        with self.lock:
            if p in self.procs:
                self.procs.remove(p)

    def new_netns(self):
        with self.lock:
            self.counter += 1
            name = "%s%d-%d" % (NS_PREFIX, os.getpid(), self.counter)
        run(["ip", "netns", "add", name])
        with self.lock:
            self.netns.append(name)
        return name

    def del_netns(self, name):
        subprocess.run(["ip", "netns", "del", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
        with self.lock:
            if name in self.netns:
                self.netns.remove(name)

    def cleanup(self):
        for p in list(self.procs):
            self.kill(p, grace=1.0)
        for ns in list(self.netns):
            self.del_netns(ns)
        for path in self.files:
            try:
                os.unlink(path)
            except OSError:
                pass


REG = Registry()


def remove_stale_netns():
    """Deletes namespaces left by earlier runs whose runner process is gone."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         timeout=10).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-\d+$", name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            log("removing stale namespace %s" % name)
            subprocess.run(["ip", "netns", "del", name], timeout=10)


def run(argv, timeout=30, check=True, **kw):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise BenchError("timed out after %ss: %s" % (timeout, " ".join(argv)))
    if check and r.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                  (r.stderr or r.stdout).strip()[-800:]))
    return r


def wait_until(pred, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise BenchError("timed out after %ss waiting for %s" % (timeout, what))


def read_line(p, timeout, what):
    """First stdout line of a child, bounded by timeout."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise BenchError("timed out waiting for %s" % what)
    line = p.stdout.readline()
    if not line:
        raise BenchError("%s exited early (status %s)" % (what, p.poll()))
    return line.decode().strip() if isinstance(line, bytes) else line.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError("no %s for pid %d" % (key, pid))


# --------------------------------------------------------------------------
# Host-side servers (all on 127.0.0.1).

class BlobServer(threading.Thread):
    """Receives or sends random blobs and records the SHA-256 of each transfer."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.results = []
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.results.append(self.serve(conn))
            except Exception as e:  # recorded, the runner reports it
                self.results.append({"error": str(e)})
            finally:
                conn.close()

    def serve(self, conn):
        conn.settimeout(60)
        hdr = b""
        while len(hdr) < 9:
            part = conn.recv(9 - len(hdr))
            if not part:
                raise EOFError("short header")
            hdr += part
        kind, size = hdr[:1], struct.unpack("!Q", hdr[1:])[0]
        h = hashlib.sha256()
        moved = 0
        if kind == b"S":
            while moved < size:
                part = conn.recv(min(262144, size - moved))
                if not part:
                    raise EOFError("closed after %d of %d bytes" % (moved, size))
                h.update(part)
                moved += len(part)
        else:
            while moved < size:
                chunk = os.urandom(min(262144, size - moved))
                h.update(chunk)
                conn.sendall(chunk)
                moved += len(chunk)
        conn.sendall(h.digest())
        return {"kind": kind.decode(), "bytes": moved, "sha256": h.hexdigest()}

    def stop(self):
        self.stopping = True
        self.sock.close()


class HostServers:
    def __init__(self):
        self.blob = BlobServer()
        self.blob.start()
        self.pp = REG.spawn([os.path.join(BUILD, "benchtool"), "pp-server", "--addr=127.0.0.1",
                             "--port=0"], stdout=subprocess.PIPE)
        line = read_line(self.pp, 10, "ping-pong server")
        self.pp_port = int(line.split()[1])
        self.iperf = None
        self.iperf_port = None
        self.restart_iperf()

    def restart_iperf(self):
        if self.iperf:
            REG.kill(self.iperf)
        self.iperf_port = free_port()
        self.iperf = REG.spawn([IPERF3, "-s", "-B", "127.0.0.1", "-p", str(self.iperf_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: listening(self.iperf_port), 10, "iperf3 server")

    def stop(self):
        self.blob.stop()
        REG.kill(self.pp)
        if self.iperf:
            REG.kill(self.iperf)


# --------------------------------------------------------------------------
# Backends.

class Backend:
    def __init__(self, name, kind, binary=None, framing=None, mtu=None, ref=None, caps=False,
                 optional=False):
        self.name, self.kind, self.binary = name, kind, binary
        self.optional = optional  # only run when named in --backends
        self.framing, self.mtu = framing, mtu
        self.ref = ref    # which libslirp-helper column it is compared with
        self.caps = caps  # has --print-capabilities

    @property
    def is_socket_helper(self):
        return self.kind == "helper"

    def helper_argv(self, fd):
        """Command line of a socket helper given its end of the socketpair as fd."""
        if self.binary == PASST:
            # passt speaks QEMU's stream framing on a pre-opened socket (-F);
            # the gateway address is mapped to the host's loopback like 10.0.2.2 in slirp.
            return [PASST, "-f", "-q", "--runas", "0", "--fd", str(fd), "-4", "-a", GUEST_IP,
                    "-n", "24", "-g", GUEST_GW, "-m", str(self.mtu), "-t", "none", "-u", "none"]
        return [self.binary, "--fd=%d" % fd, "--mtu=%d" % self.mtu]


def all_backends(ours):
    b = []
    if ours:
        for mtu in (1500, 65520):
            for framing in ("dgram", "stream"):
                b.append(Backend("ours-%s-%d" % (framing, mtu), "helper", ours, framing, mtu,
                                 ref="lsh-%d" % mtu, caps=True))
    for mtu in (1500, 65520):
        b.append(Backend("lsh-%d" % mtu, "helper", LSH, "dgram", mtu, ref="lsh-%d" % mtu,
                         caps=True))
    for mtu in (1500, 65520):
        b.append(Backend("slirp4netns-%d" % mtu, "slirp4netns", SLIRP4NETNS, None, mtu,
                         ref="lsh-%d" % mtu))
    b.append(Backend("pasta-65520", "pasta", PASTA, None, 65520, ref="lsh-65520"))
    # passt behind the forwarder (QEMU's stream netdev + passt, libvirt's passt backend).
    # Opt-in: passt 2023-03 moves host->guest data very slowly on this path (see
    # docs/performance.md), which says more about that snapshot than about the helpers.
    b.append(Backend("passt-stream-65520", "helper", PASST, "stream", 65520, ref="lsh-65520",
                     optional=True))
    b.append(Backend("loopback", "loopback", mtu=65536))
    return b


class Instance:
    """One running backend with its guest namespace."""

    def __init__(self, backend, tag):
        self.b = backend
        self.tag = tag        # e.g. "rep1": names the log files
        self.logs = []
        self.ns = None
        self.procs = []
        self.pid = None       # the process whose CPU and memory are measured
        self.fwd_pid = None
        self.keep_fds = []

    @property
    def guest(self):
        return ["ip", "netns", "exec", self.ns] if self.ns else []

    @property
    def host_addr(self):
        return GUEST_GW if self.ns else "127.0.0.1"

    def _spawn(self, argv, **kw):
        """Starts a backend process; its stderr goes to build/bench/logs/."""
        os.makedirs(LOGS, exist_ok=True)
        path = os.path.join(LOGS, "%s-%s-%s.log" % (self.b.name, self.tag,
                                                    os.path.basename(argv[0])))
        with open(path, "wb") as err:
            kw.setdefault("stderr", err)
            p = REG.spawn(argv, **kw)
        self.procs.append(p)
        self.logs.append(path)
        return p

    def log_tails(self):
        out = []
        for path in self.logs:
            try:
                with open(path, errors="replace") as f:
                    tail = f.read()[-600:].strip()
            except OSError:
                continue
            if tail:
                out.append("%s: %s" % (os.path.basename(path), tail))
        return "\n".join(out)

    def _netns(self):
        self.ns = REG.new_netns()
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        # The guest speaks IPv4 only: no router solicitations or DAD noise.
        for k in ("all", "default"):
            run(["ip", "netns", "exec", self.ns, "sysctl", "-q", "-w",
                 "net.ipv6.conf.%s.disable_ipv6=1" % k])

    def _configure_guest(self, addr):
        ns, mtu = self.ns, str(self.b.mtu)
        run(["ip", "-n", ns, "link", "set", "tap0", "mtu", mtu, "up"])
        run(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", "tap0"])
        run(["ip", "-n", ns, "route", "add", "default", "via", GUEST_GW])

    def start(self):
        k = self.b.kind
        if k == "loopback":
            return
        self._netns()
        if k == "helper":
            stype = socket.SOCK_STREAM if self.b.framing == "stream" else socket.SOCK_DGRAM
            hs, fs = socket.socketpair(socket.AF_UNIX, stype)
            try:
                h = self._spawn(self.b.helper_argv(hs.fileno()), pass_fds=[hs.fileno()],
                                stdout=subprocess.DEVNULL)
                self.pid = h.pid
                f = self._spawn([os.path.join(BUILD, "forwarder"), "--fd=%d" % fs.fileno(),
                                 "--mode=" + self.b.framing, "--tap=tap0",
                                 "--netns=/run/netns/" + self.ns] + FORWARDER_EXTRA,
                                pass_fds=[fs.fileno()], stdout=subprocess.PIPE)
                self.fwd_pid = f.pid
                line = read_line(f, 10, "forwarder")
                if not line.startswith("READY"):
                    raise BenchError("forwarder said %r" % line)
            finally:
                hs.close()
                fs.close()
            if h.poll() is not None:
                raise BenchError("%s exited at start (status %s)" % (self.b.binary, h.returncode))
            self._configure_guest(GUEST_IP)
        elif k == "slirp4netns":
            rr, rw = os.pipe()
            er, ew = os.pipe()
            p = self._spawn([self.b.binary, "--configure", "--mtu=%d" % self.b.mtu,
                             "--ready-fd=%d" % rw, "--exit-fd=%d" % er, "--netns-type=path",
                             "/run/netns/" + self.ns, "tap0"],
                            pass_fds=[rw, er], stdout=subprocess.DEVNULL)
            os.close(rw)
            os.close(er)
            self.keep_fds.append(ew)
            self.pid = p.pid
            r, _, _ = select.select([rr], [], [], 10)
            ready = os.read(rr, 1) if r else b""
            os.close(rr)
            if ready != b"1":
                raise BenchError("slirp4netns did not become ready")
        elif k == "pasta":
            p = self._spawn([self.b.binary, "-f", "-q", "--runas", "0", "--config-net", "--netns",
                             "/run/netns/" + self.ns, "-I", "tap0", "-4", "-a", GUEST_IP,
                             "-n", "24", "-g", GUEST_GW, "-m", str(self.b.mtu), "-t", "none",
                             "-u", "none", "-T", "none", "-U", "none"],
                            stdout=subprocess.DEVNULL)
            self.pid = p.pid

            def configured():
                if p.poll() is not None:
                    raise BenchError("pasta exited at start (status %s)" % p.returncode)
                r = run(["ip", "-n", self.ns, "-4", "route", "show", "default"], check=False)
                return GUEST_GW in r.stdout
            wait_until(configured, 10, "pasta to configure the namespace")

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in reversed(self.procs):  # the forwarder before the helper
            REG.kill(p)
        self.procs = []
        for fd in self.keep_fds:
            os.close(fd)
        self.keep_fds = []
        if self.ns:
            REG.del_netns(self.ns)
            self.ns = None


# --------------------------------------------------------------------------
# Measurements.

def ping_pong(inst, srv, count, timeout):
    r = run(inst.guest + [os.path.join(BUILD, "benchtool"), "pp-client",
                          "--addr=" + inst.host_addr, "--port=%d" % srv.pp_port,
                          "--count=%d" % count, "--warmup=%d" % max(10, count // 10),
                          "--timeout=10"], timeout=timeout)
    return json.loads(r.stdout)


def iperf(inst, srv, seconds, streams, reverse):
    """One iperf3 test from the guest; retries (bounded) while the server is still busy
    finishing the previous test, which happens on a loaded machine."""
    for attempt in range(10):
        try:
            return iperf_once(inst, srv, seconds, streams, reverse)
        except BenchError as e:
            if "busy" not in str(e) or attempt == 9:
                raise
            time.sleep(0.5)


def iperf_once(inst, srv, seconds, streams, reverse):
    argv = inst.guest + [IPERF3, "-c", inst.host_addr, "-p", str(srv.iperf_port),
                         "-t", str(seconds), "-P", str(streams), "-J", "--connect-timeout", "5000"]
    if reverse:
        argv.append("-R")
    cpu0 = cpu_seconds(inst.pid) if inst.pid else None
    fcpu0 = cpu_seconds(inst.fwd_pid) if inst.fwd_pid else None
    try:
        r = run(argv, timeout=seconds + 30, check=False)
    except BenchError:
        srv.restart_iperf()
        raise
    try:
        res = json.loads(r.stdout)
    except ValueError:
        srv.restart_iperf()
        raise BenchError("iperf3 gave no JSON: %s" % (r.stderr or r.stdout)[-400:])
    if r.returncode != 0 or "error" in res:
        err = res.get("error", r.stderr[-400:])
        if "busy" not in err:
            srv.restart_iperf()
        raise BenchError("iperf3 failed: %s" % err)
    recv = res["end"]["sum_received"]
    out = {"gbps": recv["bits_per_second"] / 1e9, "bytes": recv["bytes"]}
    if recv["bytes"] <= 0:
        raise BenchError("iperf3 moved no data")
    gb = recv["bytes"] / 1e9
    if cpu0 is not None:
        out["cpu_s_per_gb"] = (cpu_seconds(inst.pid) - cpu0) / gb
    if fcpu0 is not None:
        out["fwd_cpu_s_per_gb"] = (cpu_seconds(inst.fwd_pid) - fcpu0) / gb
    return out


def blob(inst, srv, direction, size, timeout):
    before = len(srv.blob.results)
    r = run(inst.guest + [PY, os.path.join(HERE, "blobclient.py"), direction, inst.host_addr,
                          str(srv.blob.port), str(size), "30"], timeout=timeout, check=False)
    if r.returncode != 0:
        raise BenchError("blob %s failed: %s" % (direction, r.stderr.strip()[-400:]))
    wait_until(lambda: len(srv.blob.results) > before, 10, "blob server record")
    server = srv.blob.results[-1]
    client = json.loads(r.stdout)
    ok = (client["bytes"] == size and server.get("bytes") == size
          and client["sha256"] == server.get("sha256") == client["peer_sha256"])
    return {"ok": ok, "bytes": size, "client": client["sha256"], "server": server.get("sha256")}


def measure_instance(b, srv, cfg, tag):
    """Starts backend b, measures everything that needs the guest, stops it."""
    m, checks = {}, []
    inst = Instance(b, tag)
    with open("/proc/loadavg") as f:
        m["loadavg_before"] = float(f.read().split()[0])
    try:
        inst.start()
        if inst.pid:
            time.sleep(0.3)
            m["rss_idle"] = status_kib(inst.pid, "VmRSS") / 1024
        pp = ping_pong(inst, srv, cfg.pp_count, timeout=60)
        m["rr_mean"], m["rr_p99"] = pp["mean"], pp["p99"]
        for key, streams, rev in (("g2h_1", 1, False), ("h2g_1", 1, True),
                                  ("g2h_4", 4, False), ("h2g_4", 4, True)):
            r = iperf(inst, srv, cfg.seconds, streams, rev)
            m["tput_" + key] = r["gbps"]
            if streams == 1 and "cpu_s_per_gb" in r:
                m["cpu_" + key] = r["cpu_s_per_gb"]
            if streams == 1 and "fwd_cpu_s_per_gb" in r:
                m["fwdcpu_" + key] = r["fwd_cpu_s_per_gb"]
        for direction in ("send", "recv"):
            res = blob(inst, srv, direction, cfg.blob_size, timeout=120)
            checks.append(dict(res, backend=b.name, what="blob " + {
                "send": "guest->host", "recv": "host->guest"}[direction]))
        if inst.pid:
            m["rss_loaded"] = status_kib(inst.pid, "VmHWM") / 1024
        if not inst.alive():
            raise BenchError("a process of %s died during the run" % b.name)
    except BenchError as e:
        inst.stop()
        tails = inst.log_tails()
        raise BenchError(str(e) + ("\n" + tails if tails else ""))
    finally:
        inst.stop()
    return m, checks


def measure_startup(b, cfg):
    """Start-up metrics of a socket helper: no guest needed."""
    tool = os.path.join(BUILD, "benchtool")
    m = {}
    if b.caps:
        r = run([tool, "exec-time", "--count=%d" % cfg.exec_count, "--", b.binary,
                 "--print-capabilities"], timeout=60)
        m["caps_ms"] = json.loads(r.stdout)["median"]
    helper = b.helper_argv(3)
    r = run([tool, "dhcp-time", "--count=%d" % cfg.exec_count, "--type=" + b.framing, "--fd=3",
             "--"] + helper, timeout=120)
    m["dhcp_ms"] = json.loads(r.stdout)["median"]
    r = run([tool, "idle-rss", "--count=%d" % cfg.idle_count, "--type=" + b.framing, "--fd=3",
             "--"] + helper, timeout=120)
    j = json.loads(r.stdout)
    m["idle%d_rss" % cfg.idle_count] = j["rss_sum_kib"] / 1024
    m["idle%d_pss" % cfg.idle_count] = j["pss_sum_kib"] / 1024
    return m


# --------------------------------------------------------------------------
# Report.

def metric_defs(cfg):
    n = cfg.idle_count
    # key, label, unit, higher-is-better, compare with loopback
    return [
        ("tput_g2h_1", "TCP guest->host, 1 stream", "Gbit/s", True, True),
        ("tput_h2g_1", "TCP host->guest, 1 stream", "Gbit/s", True, True),
        ("tput_g2h_4", "TCP guest->host, 4 streams", "Gbit/s", True, True),
        ("tput_h2g_4", "TCP host->guest, 4 streams", "Gbit/s", True, True),
        ("rr_mean", "TCP 1-byte request/response, mean", "us", False, True),
        ("rr_p99", "TCP 1-byte request/response, p99", "us", False, True),
        ("cpu_g2h_1", "Backend CPU per GB, guest->host", "s/GB", False, False),
        ("cpu_h2g_1", "Backend CPU per GB, host->guest", "s/GB", False, False),
        ("fwdcpu_g2h_1", "Forwarder (QEMU stand-in) CPU per GB, g->h", "s/GB", False, False),
        ("fwdcpu_h2g_1", "Forwarder (QEMU stand-in) CPU per GB, h->g", "s/GB", False, False),
        ("rss_idle", "RSS idle", "MiB", False, False),
        ("rss_loaded", "RSS peak under load (VmHWM)", "MiB", False, False),
        ("caps_ms", "--print-capabilities wall time", "ms", False, False),
        ("dhcp_ms", "exec to first DHCPOFFER", "ms", False, False),
        ("idle%d_rss" % n, "%d idle helpers, sum of RSS" % n, "MiB", False, False),
        ("idle%d_pss" % n, "%d idle helpers, sum of PSS" % n, "MiB", False, False),
    ]


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def summarize(samples, backends, cfg):
    """Rows of the one table: metric x backend with median, min, max and ratios."""
    rows = []
    for key, label, unit, _hib, vs_lo in metric_defs(cfg):
        for b in backends:
            vals = samples.get(b.name, {}).get(key)
            if not vals:
                continue
            med = statistics.median(vals)
            ref = samples.get(b.ref or "", {}).get(key)
            lo = samples.get("loopback", {}).get(key)
            r_ref = med / statistics.median(ref) if ref and b.name != b.ref and statistics.median(ref) else None
            r_lo = (med / statistics.median(lo) if vs_lo and lo and b.name != "loopback"
                    and statistics.median(lo) else None)
            rows.append({"metric": key, "label": label, "unit": unit, "backend": b.name,
                         "n": len(vals), "median": med, "min": min(vals), "max": max(vals),
                         "vs_lsh": r_ref, "vs_loopback": r_lo})
    return rows


def render_table(rows):
    out = ["| Metric | Unit | Backend | Median | Min | Max | n | vs libslirp-helper | vs loopback |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    last = None
    for r in rows:
        label = r["label"] if r["metric"] != last else ""
        unit = r["unit"] if r["metric"] != last else ""
        last = r["metric"]
        ratio = lambda x: "n/a" if x is None else "%.2fx" % x
        out.append("| %s | %s | %s | %s | %s | %s | %d | %s | %s |" % (
            label, unit, r["backend"], fmt(r["median"]), fmt(r["min"]), fmt(r["max"]), r["n"],
            ratio(r["vs_lsh"]), ratio(r["vs_loopback"])))
    return "\n".join(out)


def render_glance(rows, backends):
    """Medians only: one row per metric, one column per backend."""
    names = [b.name for b in backends if any(r["backend"] == b.name for r in rows)]
    med = {(r["metric"], r["backend"]): r["median"] for r in rows}
    out = ["| Metric (median) | " + " | ".join(names) + " |",
           "|---|" + "---:|" * len(names)]
    seen = []
    for r in rows:
        if r["metric"] not in seen:
            seen.append(r["metric"])
            out.append("| %s, %s | " % (r["label"], r["unit"]) + " | ".join(
                fmt(med.get((r["metric"], n))) if (r["metric"], n) in med else "-"
                for n in names) + " |")
    return "\n".join(out)


def machine_info(ours):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def ver(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except Exception:
            return "unavailable"
    head = ver(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "git": head, "ours": ours or "not built",
        "libslirp-helper": ver([LSH, "--version"]), "slirp4netns": ver([SLIRP4NETNS, "--version"]),
        "iperf3": ver([IPERF3, "--version"]),
    }


def render_markdown(rows, info, cfg, checks, errors, backends, samples, warnings=()):
    lines = ["# slirp-helper benchmark results", ""]
    lines.append("Mode: %s; %d interleaved repetition(s); iperf3 %d s per test; "
                 "%d request/response round trips per repetition; blob %d MiB each way." % (
                     "quick (correctness only, numbers not meaningful)" if cfg.quick else "full",
                     cfg.reps, cfg.seconds, cfg.pp_count, cfg.blob_size >> 20))
    lines.append("")
    lines.append("Machine: %s, %s CPUs, %s GiB, kernel %s. Date: %s. Repo at %s." % (
        info["cpu"], info["cpus"], info["mem_gib"], info["kernel"], info["date"], info["git"]))
    lines.append("Versions: %s; %s; %s; our helper: %s." % (
        info["libslirp-helper"], info["slirp4netns"], info["iperf3"], info["ours"]))
    lines.append("")
    loads = [v for per in samples.values() for v in per.get("loadavg_before", [])]
    if loads:
        lines.append("1-minute load average before each measurement: median %.1f, max %.1f "
                     "(%d CPUs; the benchmark itself keeps about 2-3 busy)." % (
                         statistics.median(loads), max(loads), os.cpu_count()))
        lines.append("")
    lines.append("Backends: " + ", ".join(b.name for b in backends) + ".")
    lines.append("`ours-F-M` = our slirp-helper, socket framing F, MTU M; `lsh-M` = Debian's "
                 "Rust libslirp-helper (datagram), MTU M. Ratios divide the median by the "
                 "median of libslirp-helper at the same MTU, or of host loopback; for "
                 "throughput higher is better, for everything else lower is better.")
    lines.append("")
    lines.append(render_table(rows))
    lines.append("")
    lines.append("The medians again, side by side:")
    lines.append("")
    lines.append(render_glance(rows, backends))
    lines.append("")
    bad = [c for c in checks if not c["ok"]]
    lines.append("Integrity: %d transfer(s) checked with SHA-256, %d mismatch(es)." % (
        len(checks), len(bad)))
    for c in bad:
        lines.append("- MISMATCH %s %s: client %s server %s" % (
            c["backend"], c["what"], c["client"], c["server"]))
    if warnings:
        lines.append("")
        lines.append("Retried after a failed first attempt (the retry's numbers are used):")
        for w in warnings:
            lines.append("- %s" % w.replace("\n", " / "))
    if errors:
        lines.append("")
        lines.append("Errors (no numbers for that repetition):")
        for e in errors:
            lines.append("- %s" % e.replace("\n", " / "))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------

def ensure_built():
    r = subprocess.run(["make", "-s", "-C", HERE, "OUT=" + BUILD], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise BenchError("building bench tools failed:\n" + r.stdout + r.stderr)


def find_ours():
    """Our helper, copied so that a rebuild during the run cannot mix two versions."""
    path = os.environ.get("SLIRP_HELPER") or OURS_DEFAULT
    if not os.access(path, os.X_OK):
        return None, None
    snap = os.path.join(BUILD, "slirp-helper.under-test.%d" % os.getpid())
    shutil.copy2(path, snap)
    REG.files.append(snap)
    with open(snap, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return snap, "%s (sha256 %s)" % (path, digest)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="one short repetition per backend, correctness only")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, quick 1)")
    ap.add_argument("--seconds", type=int, help="iperf3 seconds per test (default 5, quick 1)")
    ap.add_argument("--backends", help="comma-separated subset of backend names or prefixes")
    ap.add_argument("--json", default=os.path.join(BUILD, "results.json"))
    ap.add_argument("--md", default=os.path.join(BUILD, "results.md"))
    ap.add_argument("--logs", default=os.path.join(BUILD, "logs"),
                    help="directory for the backends' stderr (emptied first)")
    ap.add_argument("--from-json", metavar="PATH",
                    help="only render the table again from an earlier results.json")
    ap.add_argument("--update-doc", metavar="PATH",
                    help="also put the table between the RESULTS markers of this file "
                         "(docs/performance.md)")
    cfg = ap.parse_args(argv)
    cfg.reps = cfg.reps or (1 if cfg.quick else 5)
    cfg.seconds = cfg.seconds or (1 if cfg.quick else 5)
    cfg.pp_count = 500 if cfg.quick else 5000
    cfg.blob_size = (8 if cfg.quick else 64) << 20
    cfg.exec_count = 3 if cfg.quick else 20
    cfg.idle_count = 100
    return cfg


def rerender(cfg):
    with open(cfg.from_json) as f:
        res = json.load(f)
    for k in ("quick", "reps", "seconds", "pp_count", "blob_size", "idle_count"):
        setattr(cfg, k, res["config"][k])
    known = {b.name: b for b in all_backends("ours")}
    backends = [known[n] for n in res["backends"] if n in known]
    rows = summarize(res["samples"], backends, cfg)
    md = render_markdown(rows, res["machine"], cfg, res["checks"], res["errors"], backends,
                         res["samples"], res.get("warnings", ()))
    with open(cfg.md, "w") as f:
        f.write(md)
    if cfg.update_doc:
        update_doc(cfg.update_doc, md)
    print(md)
    return 0


def update_doc(path, md):
    begin, end = "<!-- BEGIN RESULTS -->", "<!-- END RESULTS -->"
    with open(path) as f:
        doc = f.read()
    if begin not in doc or end not in doc:
        raise BenchError("%s has no %s ... %s markers" % (path, begin, end))
    body = md.split("\n", 1)[1].strip()  # without the "# ..." title
    head, rest = doc.split(begin, 1)
    doc = head + begin + "\n" + body + "\n" + end + rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(doc)


def main(argv):
    cfg = parse_args(argv)
    if cfg.from_json:
        return rerender(cfg)
    if os.geteuid() != 0:
        log("bench/run.py needs root (network namespaces and tap devices)")
        return 2
    for tool in (IPERF3, LSH, SLIRP4NETNS, PASTA, PASST, PY):
        if not os.access(tool, os.X_OK):
            log("missing %s (Debian packages: iperf3 libslirp-helper slirp4netns passt)" % tool)
            return 2
    t_start = time.monotonic()
    ensure_built()
    remove_stale_netns()
    global LOGS
    LOGS = cfg.logs
    shutil.rmtree(LOGS, ignore_errors=True)
    ours, ours_desc = find_ours()
    if not ours:
        log("note: our slirp-helper is not built (%s); measuring the others only" % OURS_DEFAULT)
    backends = all_backends(ours)
    if cfg.backends:
        want = cfg.backends.split(",")
        backends = [b for b in backends if any(b.name == w or b.name.startswith(w) for w in want)]
    else:
        backends = [b for b in backends if not b.optional]
    if not backends:
        log("no backend selected")
        return 2
    samples = {b.name: {} for b in backends}
    checks, errors, warnings = [], [], []
    srv = HostServers()
    try:
        for rep in range(cfg.reps):
            for b in backends:  # interleaved: A B C A B C ...
                t0 = time.monotonic()
                m = None
                for attempt in (1, 2):  # one retry: a loaded machine can upset iperf3
                    try:
                        tag = "rep%d" % (rep + 1) + ("" if attempt == 1 else "-retry")
                        m, c = measure_instance(b, srv, cfg, tag)
                        if b.is_socket_helper:
                            m.update(measure_startup(b, cfg))
                        break
                    except BenchError as e:
                        msg = "rep %d %s (attempt %d): %s" % (rep + 1, b.name, attempt, e)
                        (errors if attempt == 2 else warnings).append(msg)
                        log(("ERROR " if attempt == 2 else "retrying after: ") + msg)
                if m is None:
                    continue
                checks.extend(c)
                for k, v in m.items():
                    samples[b.name].setdefault(k, []).append(v)
                log("rep %d/%d %-18s %5.1fs  g2h %s h2g %s Gbit/s, rr %s us%s" % (
                    rep + 1, cfg.reps, b.name, time.monotonic() - t0, fmt(m.get("tput_g2h_1")),
                    fmt(m.get("tput_h2g_1")), fmt(m.get("rr_mean")),
                    "" if all(x["ok"] for x in c) else "  CHECKSUM MISMATCH"))
    finally:
        srv.stop()
    rows = summarize(samples, backends, cfg)
    info = machine_info(ours_desc)
    md = render_markdown(rows, info, cfg, checks, errors, backends, samples, warnings)
    os.makedirs(os.path.dirname(cfg.md), exist_ok=True)
    with open(cfg.md, "w") as f:
        f.write(md)
    if cfg.update_doc:
        update_doc(cfg.update_doc, md)
    with open(cfg.json, "w") as f:
        json.dump({"config": {k: v for k, v in vars(cfg).items()}, "machine": info,
                   "backends": [b.name for b in backends], "samples": samples, "rows": rows,
                   "checks": checks, "errors": errors, "warnings": warnings,
                   "metrics": [d[0] for d in metric_defs(cfg)],
                   "elapsed_s": time.monotonic() - t_start}, f, indent=1)
    print(md)
    log("wrote %s and %s (%.0f s)" % (cfg.md, cfg.json, time.monotonic() - t_start))
    bad = [c for c in checks if not c["ok"]]
    return 1 if errors or bad else 0


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        rc = main(sys.argv[1:])
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except BenchError as e:
        log("error: %s" % e)
        rc = 1
    finally:
        REG.cleanup()
    sys.exit(rc)
