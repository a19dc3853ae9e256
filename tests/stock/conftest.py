"""pytest set-up of the stock-libvirt chroot tests: import path, and each
test's outcome on its node (rep_call), so the guest fixture can print
diagnostics after a failure."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
