"""The fork's AppArmor rules: a domain profile built from its libvirt-qemu
abstraction lets the bundled slirp-helper and the per-domain dbus-daemon run.

These machines have no AppArmor LSM, so the rules are compiled with
apparmor_parser against its own feature set, never enforced: what is proven
is that the profile virt-aa-helper would write from the patched tree
compiles, alone and together with the slirp-helper package's rules
(packaging/debian/apparmor), and contains the transitions and the child
profile.  Whether the rules are enough for a helper to run confined by them
is not proven here.  The tree is build/libvirt-SERIES of the primary series
(make libvirt).
"""

import os
import shutil
import subprocess

import pytest

from test_pipeline import SERIES, TOP

APPARMOR = os.path.join(TOP, "build", f"libvirt-{SERIES}", "src", "security", "apparmor")
PACKAGE_RULES = os.path.join(TOP, "packaging", "debian", "apparmor", "slirp-helper")
FEATURES = "/usr/share/apparmor-features/features"
DOMAIN = "libvirt-00000000-0000-0000-0000-000000000000"


@pytest.fixture
def base(tmp_path):
    """An AppArmor base directory: the host's abi, tunables and
    abstractions with the fork's libvirt-qemu abstraction, and a domain
    profile written from the fork's TEMPLATE.qemu; returns its path and
    the profile's."""
    assert shutil.which("apparmor_parser"), "apparmor_parser is missing (scripts/packages.txt: apparmor)"
    assert os.path.isdir(APPARMOR), f"no patched tree at {APPARMOR}: run 'make libvirt' first"
    for d in ("abi", "tunables", "abstractions"):
        shutil.copytree(os.path.join("/etc/apparmor.d", d), tmp_path / d)
    shutil.copy(os.path.join(APPARMOR, "libvirt-qemu"), tmp_path / "abstractions" / "libvirt-qemu")
    (tmp_path / "libvirt").mkdir()
    profile = tmp_path / "libvirt" / DOMAIN
    with open(os.path.join(APPARMOR, "TEMPLATE.qemu")) as f:
        profile.write_text(f.read().replace("LIBVIRT_TEMPLATE", DOMAIN))
    return tmp_path, profile


def parse(base_dir, profile, *extra):
    return subprocess.run(["apparmor_parser", "-Q", "-K", "--features-file", FEATURES,
                           "--base", str(base_dir), *extra, str(profile)],
                          capture_output=True, text=True)


def split_child(text, opening):
    """The block of @text that starts at @opening, through its closing
    brace, and the rest of @text."""
    start = text.index(opening)
    depth, i = 0, text.index("{", start)
    while True:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i + 1], text[:start] + text[i + 1:]
        i += 1


def test_domain_profile_lets_the_helper_and_the_bus_run(base):
    base_dir, profile = base
    pre = parse(base_dir, profile, "-p")
    assert pre.returncode == 0, pre.stderr
    text = pre.stdout
    assert "/usr/{lib/libvirt,libexec,libexec/libvirt}/slirp-helper Cx -> libvirt_slirp_helper" in text
    assert text.count("profile libvirt_slirp_helper") == 1
    # the domain's own profile runs the per-domain bus
    assert "/{usr/,}bin/dbus-daemon rmix" in text
    assert "@{run}/libvirt/qemu/dbus/*-dbus.{pid,sock,conf} rwk" in text
    # what the helper's sandbox needs lives in its child profile only,
    # not in the domain's (nor does passt's, in its own child profile)
    child, rest = split_child(text, "profile libvirt_slirp_helper")
    assert "pivot_root," in child and "capability sys_admin," in child
    while "\n  profile " in rest:
        _, rest = split_child(rest, "\n  profile ")
    assert "pivot_root" not in rest and "mount," not in rest, \
        "the domain profile itself allows mounts or pivot_root"
    comp = parse(base_dir, profile)
    assert comp.returncode == 0, comp.stderr


def test_domain_profile_compiles_with_the_package_rules(base):
    """A host with the fork and the slirp-helper package for stock libvirt:
    both child profiles, each once, and the profile still compiles."""
    base_dir, profile = base
    (base_dir / "abstractions" / "libvirt-qemu.d").mkdir(exist_ok=True)
    shutil.copy(PACKAGE_RULES, base_dir / "abstractions" / "libvirt-qemu.d" / "slirp-helper")
    pre = parse(base_dir, profile, "-p")
    assert pre.returncode == 0, pre.stderr
    assert pre.stdout.count("profile libvirt_slirp_helper") == 1
    assert pre.stdout.count("profile slirp_helper") == 1
    comp = parse(base_dir, profile)
    assert comp.returncode == 0, comp.stderr
