# libvirt-slirp: entry points.  Everything is built under build/ (ignored).
#
#   make demo     build what is needed, boot a guest through the fork, show it working
#   make check    build everything and run every test suite; ends "N passed, N failed"
#   make check-trixie  the lifecycle scenarios in a Debian 13 chroot (QEMU 10.0, libslirp 4.8)
#   make bench    the benchmark against the other user-mode networking backends
#   make fuzz     run the helper's fuzz targets (FUZZ_SECONDS per target)
#   make prepare  unpack libvirt and apply the series into build/libvirt-SERIES
#   make export   turn build/libvirt-SERIES's commits back into libvirt/SERIES/patches
#   make deb      the slirp-helper Debian package for this machine (Debian 12),
#                 for stock libvirt: build/deb/slirp-helper_VERSION_amd64.deb
#   make deb-trixie  the same package built in a clean Debian 13 chroot
#
# Two series: libvirt/11.3.0 (the primary, Debian 13) and libvirt/9.0.0 (the
# Debian 12 backport).  prepare, export and libvirt act on SERIES, the
# primary unless given (make prepare SERIES=9.0.0); check builds both.
#
# Python is Debian's: the tests use Debian's pytest, not a pyenv install.

PYTHON := /usr/bin/python3
BUILD := $(CURDIR)/build
HELPER_BUILD := $(BUILD)/helper
FUZZ_SECONDS ?= 300
PRIMARY := 11.3.0
BACKPORT := 9.0.0
SERIES ?= $(PRIMARY)

.PHONY: all deps prepare libvirt backport helper guest check check-trixie demo bench fuzz export deb deb-trixie clean

all: libvirt backport helper

deps:
	@scripts/deps.sh

prepare: deps
	@libvirt/prepare.sh $(SERIES)

libvirt: prepare
	@libvirt/build.sh $(SERIES)

# the Debian 12 backport, built beside the primary series
backport: deps
	@libvirt/prepare.sh $(BACKPORT)
	@libvirt/build.sh $(BACKPORT)

helper: deps
	@test -f $(HELPER_BUILD)/build.ninja || meson setup $(HELPER_BUILD) helper >/dev/null
	@echo "helper: building slirp-helper (ninja -C $(HELPER_BUILD))"
	@ninja -C $(HELPER_BUILD) >/dev/null

guest: deps
	@tests/guest/build.sh

check: libvirt backport helper guest deb deb-trixie
	@$(PYTHON) tests/run_all.py

# the lifecycle scenarios once more in a Debian 13 chroot (QEMU 10.0, libslirp 4.8)
check-trixie: prepare guest
	@scripts/check-trixie.sh

demo: libvirt helper guest
	@LIBVIRT_SERIES=$(SERIES) $(PYTHON) tests/libvirt/demo.py

bench: helper
	@$(PYTHON) bench/run.py

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) helper/tests/fuzz/run.sh

export:
	@libvirt/export.sh $(SERIES)

deb: deps
	@packaging/build-deb.sh

deb-trixie: deps
	@packaging/build-deb.sh trixie

# Debian's own libvirt source package with the series in debian/patches
# (build/debian-src-SERIES); SERIES is 9.0.0 unless given, the only series
# whose suite (bookworm) serves the source package
.PHONY: debian-source
debian-source:
	@libvirt/debian-source.sh $(if $(filter command line environment,$(origin SERIES)),$(SERIES),$(BACKPORT))

clean:
	rm -rf $(BUILD)
