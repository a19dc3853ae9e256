"""The series as Debian patches: libvirt/export-debian.sh and debian-source.sh's refusals.

The export runs on the 9.0.0 series (the one debian-source.sh builds) into a
temporary directory and needs no libvirt tree; only the last test downloads
Debian's libvirt source package, to apply the series on top of its patches.
"""

import email
import email.policy
import email.utils
import os
import re
import shutil
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERIES = "9.0.0"
PATCHES = os.path.join(TOP, "libvirt", SERIES, "patches")


def run(cmd, cwd=TOP):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


def series_entries(patchdir=PATCHES):
    with open(os.path.join(patchdir, "series")) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]


def debian_has():
    """{our patch: Debian's patch of the same fix} from libvirt/9.0.0/debian-has."""
    with open(os.path.join(TOP, "libvirt", SERIES, "debian-has")) as f:
        return dict(line.split() for line in f if line.strip() and not line.startswith("#"))


def exported_entries():
    """The series without the patches Debian's packaging already carries."""
    return [name for name in series_entries() if name not in debian_has()]


def expected_fields(raw):
    """What the DEP-3 header of one git patch must say, read with Python's mail parser."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    subject = re.sub(r"^\[PATCH[^]]*\]\s*", "", str(msg["Subject"]))
    text = raw.decode()
    message = text.split("\n\n", 1)[1].split("\n---\n", 1)[0].split("\n")
    while message and (not message[-1].strip() or message[-1].startswith("Signed-off-by: ")):
        message.pop()
    while message and not message[0].strip():
        message.pop(0)
    return {
        "description": [subject] + [" ." if not line.strip() else " " + line for line in message],
        "author": str(msg["From"]),
        "day": email.utils.parsedate_to_datetime(msg["Date"]).date().isoformat(),
    }


def test_export_gives_one_dep3_patch_per_patch_with_the_same_diff(tmp_path):
    out = tmp_path / "debian-patches"
    result = run([os.path.join(TOP, "libvirt", "export-debian.sh"), SERIES, str(out)])
    assert result.returncode == 0, result.stdout

    names = exported_entries()
    assert names, "the 9.0.0 series lists no patch"
    assert (out / "series").read_text().splitlines() == [f"slirp-helper/{n}" for n in names]
    for ours, theirs in debian_has().items():
        assert f"export-debian: {ours} left out: Debian carries it as {theirs}" in result.stdout
    assert sorted(os.listdir(out / "slirp-helper")) == sorted(names)

    for name in names:
        with open(os.path.join(PATCHES, name), "rb") as f:
            original = f.read()
        exported = (out / "slirp-helper" / name).read_bytes()
        want = expected_fields(original)

        header, sep, _ = exported.decode().partition("\n---\n")
        assert sep, f"{name}: no '---' line after the DEP-3 header"
        lines = header.split("\n")
        assert lines[0].startswith("Description: "), f"{name}: {lines[0]!r}"
        fields = {}
        description = [lines[0][len("Description: "):]]
        for line in lines[1:]:
            if line.startswith(" "):
                assert not fields, f"{name}: a continuation line after the Description: {line!r}"
                description.append(line)
            else:
                key, colon, value = line.partition(": ")
                assert colon and re.fullmatch(r"[A-Za-z-]+", key), f"{name}: not a DEP-3 field: {line!r}"
                fields[key] = value
        assert description == want["description"], name
        assert fields.get("Author") == want["author"], name
        assert fields.get("Forwarded") == "no", name
        assert fields.get("Last-Update") == want["day"], name

        start = original.find(b"\ndiff --git ")
        assert start > 0, f"{name}: the git patch has no diff"
        assert exported.find(b"\ndiff --git ") > exported.find(b"\n---\n"), name
        assert exported[exported.find(b"\ndiff --git "):] == original[start:], \
            f"{name}: the diff differs from the git patch"


def test_export_names_a_patch_that_is_not_git_format_patch_output(tmp_path):
    scratch = tmp_path / "project"
    (scratch / "libvirt" / SERIES).mkdir(parents=True)
    for script in ("series.sh", "export-debian.sh"):
        shutil.copy(os.path.join(TOP, "libvirt", script), scratch / "libvirt" / script)
    shutil.copy(os.path.join(TOP, "libvirt", SERIES, "upstream.env"), scratch / "libvirt" / SERIES)
    patches = scratch / "libvirt" / SERIES / "patches"
    shutil.copytree(PATCHES, patches)
    (patches / "9999-no-separator.patch").write_text(
        "From: Test <t@t.invalid>\nDate: Mon, 16 Jan 2023 00:00:00 +0000\n"
        "Subject: [PATCH] no separator\n\nA message and no diff.\n")
    with open(patches / "series", "a") as f:
        f.write("9999-no-separator.patch\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "series").write_text("an earlier export\n")

    result = run([str(scratch / "libvirt" / "export-debian.sh"), SERIES, str(out)], cwd=scratch)
    assert result.returncode != 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "9999-no-separator.patch" in lines[0], result.stdout
    assert (out / "series").read_text() == "an earlier export\n"


def test_debian_source_refuses_the_trixie_series_in_one_line():
    result = run([os.path.join(TOP, "libvirt", "debian-source.sh"), "11.3.0"])
    assert result.returncode != 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert "trixie" in lines[0] and "404" in lines[0] and "9.0.0" in lines[0], lines[0]


def test_the_series_applies_on_top_of_debians_patches():
    """dpkg-source -b applies every patch, without fuzz, after Debian 12's own.

    Downloads Debian's libvirt source package of the series (its .dsc and
    debian.tar.xz; the orig tarball is the pinned one of build/downloads)
    and builds the source package in build/debian-src-9.0.0.
    """
    result = run([os.path.join(TOP, "libvirt", "debian-source.sh"), SERIES])
    assert result.returncode == 0, result.stdout
    src = os.path.join(TOP, "build", "debian-src-" + SERIES)
    dsc = [name for name in os.listdir(src) if name.endswith("+slirphelper1.dsc")]
    assert len(dsc) == 1, os.listdir(src)
    with open(os.path.join(src, "libvirt-" + SERIES, "debian", "patches", "series")) as f:
        debian = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    ours = ["slirp-helper/" + name for name in exported_entries()]
    assert debian[-len(ours):] == ours
    assert len(debian) > len(ours), "none of Debian's own patches came first"
    # what the export leaves out, Debian applies itself
    for theirs in debian_has().values():
        assert theirs in debian[:-len(ours)], theirs
