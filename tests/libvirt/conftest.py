"""pytest fixtures of the libvirt-level system tests.

Session-wide: one run directory under build/systest, the built guest, a host
HTTP server, and private libvirt instances created on first use (one per
slirp_helper setting) that are always stopped at the end, leftovers killed
by PID.  On a failing test the report gets the console tail, the QEMU log
and the virtqemud log tail of every VM the test used.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libvirt_harness as H  # noqa: E402
from libvirt_harness import guest  # noqa: E402

# Which helper a parametrized scenario runs: ours (or $SLIRP_HELPER) and the
# Debian reference.  Test ids read test_x[ours] / test_x[reference].
HELPERS = {
    "ours": H.default_helper,
    "reference": lambda: H.REFERENCE_HELPER,
}


class Instances:
    """Private libvirt instances of this session, created on demand."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.by_key = {}

    def get(self, key, helper, **kw):
        """The running instance named @key, started with @helper if new.

        @kw goes to LibvirtInstance, e.g. mode="dac" or mode="session"
        (libvirt_harness.MODES); an existing @key is returned as it is.
        """
        lv = self.by_key.get(key)
        if lv is None:
            lv = H.LibvirtInstance(self.run_dir, key, helper=helper, **kw)
            self.by_key[key] = lv
            lv.start()
        return lv

    def stop_all(self):
        leftovers = {}
        for key, lv in self.by_key.items():
            left = lv.stop()
            if left:
                leftovers[key] = left
        self.by_key.clear()
        return leftovers


@pytest.fixture(scope="session")
def run_dir():
    return H.new_run_dir("pytest")


@pytest.fixture(scope="session")
def guest_artifacts():
    # Built (incrementally) if missing: a missing guest is a failure, never a skip.
    return guest.artifacts(build=True)


@pytest.fixture(scope="session")
def instances(run_dir, guest_artifacts):
    if os.geteuid() != 0:
        pytest.fail("the libvirt system tests start privileged daemons: run them as root",
                    pytrace=False)
    reg = Instances(run_dir)
    yield reg
    leftovers = reg.stop_all()
    if leftovers:
        # Reported, not raised: the test that leaked them has its own assertions.
        print("\nharness: leftover processes killed at teardown: %r" % leftovers)


def require_helper(path):
    """Fail (not skip) when the helper binary under test does not exist."""
    if not os.access(path, os.X_OK):
        pytest.fail("slirp helper %s is not an executable file: build it (helper/) "
                    "or point SLIRP_HELPER at one" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def our_helper():
    """Path of the helper under test (ours, or $SLIRP_HELPER); fails if missing."""
    return require_helper(H.default_helper())


@pytest.fixture(scope="session")
def lv(instances, our_helper):
    """The instance running our helper (or $SLIRP_HELPER)."""
    return instances.get("ours", our_helper)


@pytest.fixture(scope="session", params=sorted(HELPERS))
def lv_any(request, instances):
    """Parametrized over our helper and the Debian reference helper."""
    return instances.get(request.param, require_helper(HELPERS[request.param]()))


@pytest.fixture(scope="session")
def http():
    with guest.HttpFileServer(size=1024 * 1024, host="127.0.0.1") as srv:
        yield srv


@pytest.fixture
def vm_factory(request):
    """make(lv, name, nics) -> defined (not started) VM; destroyed and undefined after the test."""
    made = []

    def make(lv, name, nics, **kw):
        vm = H.VM(H.Domain(lv, name, nics, **kw).define())
        made.append(vm)
        request.node.used_vms = made
        return vm
    yield make
    for vm in made:
        vm.disconnect()
        if vm.lv.qemud is not None and vm.lv.qemud.poll() is None:
            vm.lv.virsh("destroy", vm.dom.name, check=False)
            vm.lv.virsh("undefine", vm.dom.name, "--managed-save", check=False)


# Outcomes of the scenarios parametrized over both helpers, for the
# side-by-side table printed at the end of the session.
SIDE_BY_SIDE = {}


def _outcome(report):
    if hasattr(report, "wasxfail"):
        if report.passed:       # a non-strict expected failure that did not happen
            return "passed"
        reason = report.wasxfail.replace("reason: ", "")
        for sep in (";", ":"):
            reason = reason.split(sep)[0]
        return "xfail (%s)" % (reason[:70] + ("..." if len(reason) > 70 else ""))
    return report.outcome


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "lv_any" in params and (report.when == "call" or not report.passed):
        if report.when == "call" or (item.originalname, params["lv_any"]) not in SIDE_BY_SIDE:
            SIDE_BY_SIDE[(item.originalname, params["lv_any"])] = _outcome(report)
    if report.when != "call" or not report.failed:
        return
    vms = list(getattr(item, "used_vms", []))
    for value in item.funcargs.values():
        if isinstance(value, H.VM) and value not in vms:
            vms.append(value)
    for vm in vms:
        try:
            report.sections.append(("diagnostics of %s" % vm.dom.name, vm.diagnostics()))
        except Exception as e:  # diagnostics must never hide the real failure
            report.sections.append(("diagnostics of %s" % vm.dom.name, "unavailable: %r" % e))
    if not vms:
        insts = item.funcargs.get("instances")
        for key in ("lv", "lv_any"):
            lvi = item.funcargs.get(key)
            if lvi is not None:
                report.sections.append(("virtqemud log of %s" % lvi.name, lvi.log_tail()))
        if insts is not None:
            for lvi in insts.by_key.values():
                report.sections.append(("virtqemud log of %s" % lvi.name, lvi.log_tail()))


def pytest_terminal_summary(terminalreporter):
    if not SIDE_BY_SIDE:
        return
    tr = terminalreporter
    tr.section("libvirt scenarios: our helper vs Debian's libslirp-helper")
    names = sorted({name for name, _ in SIDE_BY_SIDE})
    tr.write_line("%-28s %-10s %s" % ("scenario", "ours", "reference (%s)" % H.REFERENCE_HELPER))
    for name in names:
        tr.write_line("%-28s %-10s %s" % (name, SIDE_BY_SIDE.get((name, "ours"), "-"),
                                          SIDE_BY_SIDE.get((name, "reference"), "-")))
