# libvirt-slirp: entry points.  Everything is built under build/ (ignored).
#
#   make demo     build what is needed, boot a guest through the fork, show it working
#   make check    build everything and run every test suite; ends "N passed, N failed"
#   make bench    the benchmark against the other user-mode networking backends
#   make fuzz     run the helper's fuzz targets (FUZZ_SECONDS per target)
#   make prepare  unpack libvirt and apply the series into build/libvirt
#   make export   turn build/libvirt's commits back into libvirt/patches
#   make deb      the slirp-helper Debian package for this machine (Debian 12),
#                 for stock libvirt: build/deb/slirp-helper_VERSION_amd64.deb
#   make deb-trixie  the same package built in a clean Debian 13 chroot
#
# Python is Debian's: the tests use Debian's pytest, not a pyenv install.

PYTHON := /usr/bin/python3
BUILD := $(CURDIR)/build
HELPER_BUILD := $(BUILD)/helper
FUZZ_SECONDS ?= 300

.PHONY: all deps prepare libvirt helper guest check demo bench fuzz export deb deb-trixie clean

all: libvirt helper

deps:
	@scripts/deps.sh

prepare: deps
	@libvirt/prepare.sh

libvirt: prepare
	@libvirt/build.sh

helper: deps
	@test -f $(HELPER_BUILD)/build.ninja || meson setup $(HELPER_BUILD) helper >/dev/null
	@echo "helper: building slirp-helper (ninja -C $(HELPER_BUILD))"
	@ninja -C $(HELPER_BUILD) >/dev/null

guest: deps
	@tests/guest/build.sh

check: libvirt helper guest deb deb-trixie
	@$(PYTHON) tests/run_all.py

demo: libvirt helper guest
	@$(PYTHON) tests/libvirt/demo.py

bench: helper
	@$(PYTHON) bench/run.py

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) helper/tests/fuzz/run.sh

export:
	@libvirt/export.sh

deb: deps
	@packaging/build-deb.sh

deb-trixie: deps
	@packaging/build-deb.sh trixie

clean:
	rm -rf $(BUILD)
