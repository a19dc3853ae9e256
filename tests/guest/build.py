#!/usr/bin/python3
"""Build the tiny test guest of libvirt-slirp.

Output (default directory: <repo>/build/guest, override with --out or the
GUEST_DIR environment variable):

  vmlinuz        Debian's kernel, from the concrete linux-image-*-amd64
                 package that linux-image-amd64 depends on, fetched with
                 `apt-get download` and unpacked with `dpkg-deb -x` (never
                 installed on the host).
  initramfs.gz   gzip'ed newc cpio: busybox-static, the kernel modules needed
                 for virtio-net over virtio-pci (dependency order from the
                 package's modules.dep), tests/guest/init as /init and
                 tests/guest/udhcpc.script as the udhcpc event script.
  cmdline        the suggested kernel command line (one line).
  guest.json     what was built: kernel package/version, modules, stamp.
  downloads/     the kernel .deb (kept, so rebuilds need no network).

Incremental: nothing is rebuilt when the outputs exist and were made from the
same inputs (this script, init, udhcpc.script, the kernel package).  --force
rebuilds.  Needs root only for the apt-get install of missing tools
(busybox-static, cpio, gzip); run as root on a fresh Debian 12 machine.

Usage: /usr/bin/python3 tests/guest/build.py [--out DIR] [--force] [--quiet]
Prints the output directory on the last line of stdout.
"""

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(REPO, "build", "guest")

# Modules the guest needs (their dependencies are added from modules.dep).
# In Debian 12's 6.1 config these are all =m; anything built in is simply
# absent from modules.dep and skipped.
WANTED_MODULES = ["virtio_pci", "virtio_net"]

KERNEL_CMDLINE = ("console=ttyS0 quiet loglevel=1 panic=-1 "
                  "mitigations=off nokaslr tsc=reliable "
                  "i8042.noaux i8042.nokbd i8042.nopnp "
                  "random.trust_cpu=on rdinit=/init")

# Host tools we need, and the Debian package that provides each.
TOOLS = {"/bin/busybox": "busybox-static", "cpio": "cpio", "gzip": "gzip",
         "dpkg-deb": "dpkg", "apt-get": "apt", "/sbin/depmod": "kmod"}

VERBOSE = True


def log(msg):
    if VERBOSE:
        print("guest-build: " + msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def have(tool):
    if tool.startswith("/"):
        return os.access(tool, os.X_OK)
    return shutil.which(tool) is not None


def ensure_tools():
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not have(tool)})
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit("guest-build: missing packages %s and not root to install them"
                 % " ".join(missing))
    log("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"]
                   + missing, check=True, env=env)
    still = [t for t in TOOLS if not have(t)]
    if still:
        sys.exit("guest-build: still missing after install: " + " ".join(still))


def check_static(path):
    with open(path, "rb") as f:
        data = f.read()
    # A dynamically linked ELF has a PT_INTERP naming the loader.
    if b"/lib64/ld-linux" in data or b"/lib/ld-linux" in data:
        sys.exit("guest-build: %s is dynamically linked; install busybox-static"
                 % path)


def kernel_package():
    """Name of the concrete linux-image-X-amd64 package behind the
    linux-image-amd64 metapackage (the candidate version's Depends)."""
    def query():
        r = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            line = line.strip()
            if line.startswith("Depends:"):
                name = line.split(":", 1)[1].strip()
                if name.startswith("linux-image-") and name.endswith("-amd64"):
                    return name
        return None
    name = query()
    if name is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        name = query()
    if name is None:
        sys.exit("guest-build: cannot find the package linux-image-amd64 "
                 "depends on (apt-cache depends linux-image-amd64)")
    return name


def candidate_version(pkg):
    r = subprocess.run(["apt-cache", "policy", pkg], capture_output=True,
                       text=True, check=True)
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def download_kernel(out, pkg):
    """apt-get download of pkg into out/downloads (once); returns the .deb
    file name."""
    dl = os.path.join(out, "downloads")
    os.makedirs(dl, exist_ok=True)

    def debs():
        return sorted(f for f in os.listdir(dl)
                      if f.startswith(pkg + "_") and f.endswith(".deb"))
    if not debs():
        # apt-get download writes into the current directory; the _apt
        # sandbox warning is harmless when running as root.
        run(["apt-get", "download", "-q", pkg], cwd=dl,
            stdout=subprocess.DEVNULL)
    if not debs():
        sys.exit("guest-build: apt-get download %s produced no .deb" % pkg)
    return debs()[-1]


def extract_kernel(out, deb):
    """dpkg-deb -x into out/kernel-root (removed again after the build)."""
    root = os.path.join(out, "kernel-root")
    if os.path.exists(root):
        shutil.rmtree(root)
    run(["dpkg-deb", "-x", os.path.join(out, "downloads", deb), root])
    return root


def find_kernel(root):
    boot = os.path.join(root, "boot")
    vmlinuz = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")]
    if len(vmlinuz) != 1:
        sys.exit("guest-build: expected one vmlinuz in %s, found %s"
                 % (boot, vmlinuz))
    kver = vmlinuz[0][len("vmlinuz-"):]
    for base in ("lib/modules", "usr/lib/modules"):
        moddir = os.path.join(root, base, kver)
        if os.path.isdir(moddir):
            # The package does not ship modules.dep (its postinst runs
            # depmod); generate it inside the unpacked tree.
            if not os.path.exists(os.path.join(moddir, "modules.dep")):
                run(["/sbin/depmod", "-b", root, kver])
            return os.path.join(boot, vmlinuz[0]), kver, moddir
    sys.exit("guest-build: no modules directory for %s" % kver)


def module_order(moddir, wanted):
    """Module files (paths relative to moddir) for `wanted`, dependencies
    first, parsed from modules.dep.  Built-in modules (listed in
    modules.builtin) are skipped."""
    deps = {}
    byname = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            mod, rest = line.split(":", 1)
            mod = mod.strip()
            deps[mod] = rest.split()
            name = os.path.basename(mod).split(".ko")[0].replace("-", "_")
            byname[name] = mod
    builtin = set()
    bpath = os.path.join(moddir, "modules.builtin")
    if os.path.exists(bpath):
        with open(bpath) as f:
            for line in f:
                builtin.add(os.path.basename(line.strip()).split(".ko")[0]
                            .replace("-", "_"))
    order = []

    def visit(mod, stack):
        if mod in order:
            return
        if mod in stack:
            sys.exit("guest-build: dependency cycle at " + mod)
        for d in deps.get(mod, []):
            visit(d, stack + [mod])
        order.append(mod)

    for name in wanted:
        key = name.replace("-", "_")
        if key in builtin:
            log("%s is built into the kernel" % name)
            continue
        if key not in byname:
            sys.exit("guest-build: module %s neither built in nor in "
                     "modules.dep" % name)
        visit(byname[key], [])
    return order


def copy_module(src, dst_dir):
    """Copy one module uncompressed (busybox insmod wants a plain .ko).
    Returns the file name inside dst_dir."""
    base = os.path.basename(src)
    for ext, tool in ((".xz", ["xz", "-dc"]), (".zst", ["zstd", "-dcq"]),
                      (".gz", ["gzip", "-dc"])):
        if base.endswith(ext):
            name = base[:-len(ext)]
            with open(os.path.join(dst_dir, name), "wb") as f:
                subprocess.run(tool + [src], stdout=f, check=True)
            return name
    shutil.copy2(src, os.path.join(dst_dir, base))
    return base


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_stamp(deb):
    h = hashlib.sha256()
    for name in ("build.py", "init", "udhcpc.script"):
        h.update(name.encode())
        h.update(open(os.path.join(HERE, name), "rb").read())
    h.update(deb.encode())
    h.update(open("/bin/busybox", "rb").read())
    return h.hexdigest()


def build_initramfs(out, moddir, modules):
    stage = tempfile.mkdtemp(prefix="initramfs.", dir=out)
    try:
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys",
                  "dev", "tmp", "run", "root", "srv", "lib/modules",
                  "usr/share/udhcpc", "var/run"):
            os.makedirs(os.path.join(stage, d), exist_ok=True)
        shutil.copy2("/bin/busybox", os.path.join(stage, "bin/busybox"))
        applets = subprocess.run(["/bin/busybox", "--list-full"],
                                 capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            p = os.path.join(stage, a)
            if os.path.lexists(p) or a == "bin/busybox":
                continue
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink("/bin/busybox", p)
        names = [copy_module(os.path.join(moddir, m),
                             os.path.join(stage, "lib/modules"))
                 for m in modules]
        with open(os.path.join(stage, "etc/guest-modules"), "w") as f:
            f.write("\n".join(names) + "\n")
        shutil.copy2(os.path.join(HERE, "init"), os.path.join(stage, "init"))
        os.chmod(os.path.join(stage, "init"), 0o755)
        for dst in ("etc/udhcpc.script", "usr/share/udhcpc/default.script"):
            shutil.copy2(os.path.join(HERE, "udhcpc.script"),
                         os.path.join(stage, dst))
            os.chmod(os.path.join(stage, dst), 0o755)
        with open(os.path.join(stage, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(stage, "etc/group"), "w") as f:
            f.write("root:x:0:\n")
        with open(os.path.join(stage, "etc/hosts"), "w") as f:
            f.write("127.0.0.1 localhost guest\n::1 localhost\n")
        # A deterministic payload the host fetches through host forwards.
        with open(os.path.join(stage, "srv/hello.txt"), "w") as f:
            f.write("hello from the libvirt-slirp test guest\n")

        files = []
        for dirpath, dirnames, filenames in os.walk(stage):
            for n in dirnames + filenames:
                files.append(os.path.relpath(os.path.join(dirpath, n), stage))
        files.sort()
        target = os.path.join(out, "initramfs.gz")
        tmp = target + ".tmp"
        with open(tmp, "wb") as f:
            cpio = subprocess.Popen(["cpio", "--quiet", "-o", "-H", "newc",
                                     "--owner=0:0"], cwd=stage,
                                    stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-6", "-n"], stdin=cpio.stdout,
                                  stdout=f)
            cpio.stdout.close()
            cpio.stdin.write(("\n".join(files) + "\n").encode())
            cpio.stdin.close()
            if cpio.wait() != 0 or gz.wait() != 0:
                sys.exit("guest-build: cpio/gzip failed")
        os.rename(tmp, target)
        return names
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def build(out, force=False):
    os.makedirs(out, exist_ok=True)
    # Several test sessions may build at once (tests/qemu, tests/libvirt).
    lock = open(os.path.join(out, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        return _build(out, force)
    finally:
        lock.close()


def _build(out, force):
    ensure_tools()
    check_static("/bin/busybox")
    pkg = kernel_package()
    deb = download_kernel(out, pkg)
    stamp = input_stamp(deb)
    meta_path = os.path.join(out, "guest.json")
    outputs = [os.path.join(out, n) for n in ("vmlinuz", "initramfs.gz",
                                              "cmdline")]
    if not force and all(os.path.exists(p) for p in outputs) and \
            os.path.exists(meta_path):
        try:
            meta = json.load(open(meta_path))
        except ValueError:
            meta = {}
        if meta.get("stamp") == stamp:
            log("up to date: " + out)
            return out
    root = extract_kernel(out, deb)
    vmlinuz, kver, moddir = find_kernel(root)
    modules = module_order(moddir, WANTED_MODULES)
    log("kernel %s, modules: %s" % (kver, " ".join(
        os.path.basename(m) for m in modules)))
    shutil.copy2(vmlinuz, os.path.join(out, "vmlinuz.tmp"))
    os.rename(os.path.join(out, "vmlinuz.tmp"), os.path.join(out, "vmlinuz"))
    names = build_initramfs(out, moddir, modules)
    with open(os.path.join(out, "cmdline"), "w") as f:
        f.write(KERNEL_CMDLINE + "\n")
    meta = {"kernel_package": pkg, "deb": deb, "kernel_version": kver,
            "modules": names, "cmdline": KERNEL_CMDLINE, "stamp": stamp,
            "initramfs_sha256": file_sha(os.path.join(out, "initramfs.gz"))}
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    os.rename(meta_path + ".tmp", meta_path)
    # The unpacked package is ~400 MB; the .deb stays for rebuilds.
    shutil.rmtree(root, ignore_errors=True)
    log("built %s (initramfs %d KiB)" % (
        out, os.path.getsize(os.path.join(out, "initramfs.gz")) // 1024))
    return out


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("GUEST_DIR", DEFAULT_OUT))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    VERBOSE = not a.quiet
    print(build(os.path.abspath(a.out), a.force))


if __name__ == "__main__":
    main()
