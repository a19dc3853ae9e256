"""The fork pipeline: fetch, prepare, export and build, including their failures.

Each test works on a scratch copy of libvirt/ (scripts, pins and series) in a
temporary directory, so the project checkout is never touched; the verified
tarball already downloaded into build/downloads is reused through a symlink.
The tests use the primary series (or $LIBVIRT_SERIES).
"""

import os
import shutil
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOWNLOADS = os.path.join(TOP, "build", "downloads")


def series():
    """The series under test: $LIBVIRT_SERIES, else the primary of series.sh."""
    if os.environ.get("LIBVIRT_SERIES"):
        return os.environ["LIBVIRT_SERIES"]
    with open(os.path.join(TOP, "libvirt", "series.sh")) as f:
        for line in f:
            if line.startswith("LIBVIRT_PRIMARY="):
                return line.split("=", 1)[1].strip()
    raise AssertionError("libvirt/series.sh names no LIBVIRT_PRIMARY")


SERIES = series()


def run(cmd, cwd, env=None):
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


def tarball_name():
    with open(os.path.join(TOP, "libvirt", SERIES, "upstream.env")) as f:
        for line in f:
            if line.startswith("LIBVIRT_TARBALL="):
                return line.split("=", 1)[1].strip()
    raise AssertionError("upstream.env has no LIBVIRT_TARBALL")


@pytest.fixture
def project(tmp_path):
    """A scratch project: libvirt/ and scripts/ copied, build/downloads linked to the real one."""
    assert os.path.exists(os.path.join(DOWNLOADS, tarball_name())), \
        "the libvirt tarball must have been fetched (make prepare) before these tests"
    root = tmp_path / "project"
    shutil.copytree(os.path.join(TOP, "libvirt"), root / "libvirt")
    shutil.copytree(os.path.join(TOP, "scripts"), root / "scripts")
    (root / "build").mkdir(parents=True)
    os.symlink(DOWNLOADS, root / "build" / "downloads")
    return root


def git(tree, *args):
    out = run(["git", *args], cwd=tree)
    assert out.returncode == 0, out.stdout
    return out.stdout.strip()


def test_checksum_mismatch_stops_fetch(tmp_path):
    bad = tmp_path / "downloads"
    bad.mkdir()
    (bad / tarball_name()).write_bytes(b"not the libvirt tarball\n")
    out = run([os.path.join(TOP, "libvirt", "fetch.sh"), str(bad), SERIES], cwd=TOP)
    assert out.returncode != 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    assert "checksum mismatch" in lines[0] and tarball_name() in lines[0]


def test_fetch_failure_is_one_line(project, tmp_path):
    """apt-get failing (no network, no registry) gives one line naming it.

    The scratch project has no private apt state yet, so fetch.sh must ask
    apt-get to read the suite's index first."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text("#!/bin/sh\necho 'E: Failed to fetch libvirt: network unreachable' >&2\nexit 100\n")
    (fake / "apt-get").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    out = run([str(project / "libvirt" / "fetch.sh"), str(tmp_path / "dl"), SERIES],
              cwd=project, env=env)
    assert out.returncode != 0
    errors = [line for line in out.stdout.splitlines() if "failed" in line]
    assert len(errors) == 1 and "network unreachable" in errors[0], out.stdout


def test_prepare_is_idempotent_and_reproduces_an_export(project):
    prepare = [str(project / "libvirt" / "prepare.sh"), SERIES]
    export = [str(project / "libvirt" / "export.sh"), SERIES]
    tree = project / "build" / f"libvirt-{SERIES}"

    out = run(prepare, cwd=project)
    assert out.returncode == 0, out.stdout
    out = run(prepare, cwd=project)
    assert out.returncode == 0 and "up to date" in out.stdout, out.stdout

    # edit and commit in the tree, export, then a fresh prepare gives the same tree
    with open(tree / "README.rst", "a") as f:
        f.write("\nA line added by the pipeline test.\n")
    git(tree, "commit", "-q", "-a", "-m", "docs: a test edit\n\nSigned-off-by: Test <t@t.invalid>")
    edited = git(tree, "rev-parse", "HEAD^{tree}")
    out = run(export, cwd=project)
    assert out.returncode == 0, out.stdout
    series = (project / "libvirt" / SERIES / "patches" / "series").read_text().split()
    assert series[-1].endswith("-docs-a-test-edit.patch"), series

    shutil.rmtree(tree)
    out = run(prepare, cwd=project)
    assert out.returncode == 0, out.stdout
    assert git(tree, "rev-parse", "HEAD^{tree}") == edited
    assert "A line added by the pipeline test." in (tree / "README.rst").read_text()


def test_export_refuses_a_dirty_tree(project):
    assert run([str(project / "libvirt" / "prepare.sh"), SERIES], cwd=project).returncode == 0
    before = (project / "libvirt" / SERIES / "patches" / "series").read_text()
    with open(project / "build" / f"libvirt-{SERIES}" / "README.rst", "a") as f:
        f.write("uncommitted\n")
    out = run([str(project / "libvirt" / "export.sh"), SERIES], cwd=project)
    assert out.returncode != 0
    assert "uncommitted changes" in out.stdout and len(out.stdout.strip().splitlines()) == 1
    assert (project / "libvirt" / SERIES / "patches" / "series").read_text() == before


def test_prepare_refuses_to_drop_unexported_work(project):
    prepare = [str(project / "libvirt" / "prepare.sh"), SERIES]
    tree = project / "build" / f"libvirt-{SERIES}"
    assert run(prepare, cwd=project).returncode == 0
    with open(tree / "README.rst", "a") as f:
        f.write("work in progress\n")
    git(tree, "commit", "-q", "-a", "-m", "wip")
    # the series changes underneath (as after a pull)
    with open(project / "libvirt" / SERIES / "patches" / "series", "a") as f:
        f.write("# a comment\n")
    out = run(prepare, cwd=project)
    assert out.returncode != 0 and "not exported" in out.stdout, out.stdout
    assert git(tree, "log", "-1", "--format=%s") == "wip"


def test_a_patch_that_does_not_apply_is_named(project):
    patches = project / "libvirt" / SERIES / "patches"
    (patches / "9999-broken.patch").write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Test <t@t.invalid>\nDate: Mon, 16 Jan 2023 00:00:00 +0000\n"
        "Subject: [PATCH] broken\n\n---\n"
        " README.rst | 1 +\n 1 file changed, 1 insertion(+)\n\n"
        "diff --git a/README.rst b/README.rst\n--- a/README.rst\n+++ b/README.rst\n"
        "@@ -1,1 +1,2 @@\n-this line is not in libvirt's README\n+nor this one\n+x\n"
        "-- \n2.39.5\n\n")
    with open(patches / "series", "a") as f:
        f.write("9999-broken.patch\n")
    out = run([str(project / "libvirt" / "prepare.sh"), SERIES], cwd=project)
    assert out.returncode != 0
    last = out.stdout.strip().splitlines()[-1]
    assert "9999-broken.patch does not apply" in last, out.stdout


def test_build_names_a_missing_dependency(project, tmp_path):
    """With meson absent from PATH, build.sh says so instead of failing later."""
    assert run([str(project / "libvirt" / "prepare.sh"), SERIES], cwd=project).returncode == 0
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "dirname", "ninja", "pkg-config", "rpcgen", "xmllint", "xsltproc"):
        path = shutil.which(tool)
        assert path, tool
        os.symlink(path, bindir / tool)
    out = run(["bash", str(project / "libvirt" / "build.sh"), SERIES], cwd=project,
              env=dict(os.environ, PATH=str(bindir)))
    assert out.returncode != 0
    assert out.stdout.strip() == "build: missing build dependency 'meson'; run 'make deps'"


def test_unknown_series_is_named(project):
    out = run([str(project / "libvirt" / "prepare.sh"), "8.0.0"], cwd=project)
    assert out.returncode != 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "unknown libvirt series '8.0.0'" in lines[0], out.stdout
    assert SERIES in lines[0], out.stdout
