# Quick start: `make run` (set-up + an edge node on the defaults) and `make test` (set-up + suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VIEWER_STAMP := build/ohif/.mekong-viewer.json
APT_RUN := fonts-dejavu-core libzbar0
APT_TEST := dcmtk dicom3tools chromium ffmpeg poppler-utils slapd ldap-utils rsyslog rsyslog-gnutls systemd
APT_FIRMWARE := debootstrap fdisk dosfstools mtools e2fsprogs udev systemd
APT_FIRMWARE_BOOT := qemu-system-x86 ovmf
# the single binary the appliance targets install (make binary builds it)
MEKONG_BINARY ?= dist/mekong
MODE ?= edge
APT_BENCH := orthanc
APT_BUILD := gcc ccache patchelf time
BUILD_STAMP := $(VENV)/.build-installed
APT_BENCH_WEB := orthanc orthanc-dicomweb
export TCP_NODELAY := 1

.PHONY: run test setup setup-test install firmware test-firmware test-firmware-boot lint bench bench-web \
	bench-console bench-sync lock messages clean setup-build binary binary-dist test-binary bench-binary

run: setup
	$(BIN)/mekong serve --mode edge --data ./data

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/pytest

setup: $(STAMP) $(VIEWER_STAMP)
	tools/apt-ensure.sh $(APT_RUN)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || tools/apt-ensure.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# The OHIF viewer (npm @ohif/app, pinned and integrity-checked), fetched without node/npm.
$(VIEWER_STAMP): tools/fetch_viewer.py
	$(PYTHON) tools/fetch_viewer.py
	touch $@

setup-test: setup
	tools/apt-ensure.sh $(APT_TEST)

# Binary, hardened unit, user mekong and a default config into /; then systemctl enable --now.
install: setup
	$(BIN)/mekong install --mode $(MODE) --binary $(MEKONG_BINARY)

# The edge box image (root needed): build/firmware/rootfs and build/firmware/mekong-edge-amd64.img.
firmware: setup
	tools/apt-ensure.sh $(APT_FIRMWARE)
	firmware/build.sh --binary $(MEKONG_BINARY) --image

# A rootfs without kernel, then the test of its contents (for CI, after make binary).
test-firmware: setup-test
	tools/apt-ensure.sh $(APT_FIRMWARE)
	firmware/build.sh --binary $(MEKONG_BINARY) --no-kernel --out build/firmware-test
	MEKONG_ROOTFS=build/firmware-test/rootfs $(BIN)/pytest -q tests/test_firmware_rootfs.py

# The image booted in a VM (UEFI; KVM if present) with a stand-in binary and a USB enrollment
# stick: read-only root, data partition, first boot, the sandboxed edge unit under its watchdog.
test-firmware-boot: setup
	tools/apt-ensure.sh $(APT_FIRMWARE) $(APT_FIRMWARE_BOOT)
	firmware/boot-test/run.sh

# The single binary (docs/binary.md): Nuitka, pinned in requirements-build.lock; C compiler
# caches in build/ so rebuilds are fast.
setup-build: setup $(BUILD_STAMP)
	tools/apt-ensure.sh $(APT_BUILD)

$(BUILD_STAMP): requirements-build.lock $(STAMP)
	$(BIN)/pip install -q -r requirements-build.lock
	touch $@

# One file to copy onto a box: dist/mekong (compressed; unpacks once into ~/.cache/mekong/).
binary: setup-build
	$(BIN)/python -m tools.binary.build onefile

# The same build as a folder (no compression step): dist/mekong.dist/mekong.bin.
binary-dist: setup-build
	$(BIN)/python -m tools.binary.build standalone

# The binary's smoke test, the archive core's DIMSE + DICOMweb integration tests, the upgrade to
# it and its sd_notify, all against the folder build in a clean environment (tests/nodeproc.py).
BINARY_TESTS := tests/test_binary.py tests/test_dimse_dcmtk.py tests/test_dicomweb_errors.py \
	tests/test_dicomweb_frames.py tests/test_dicomweb_qido.py tests/test_dicomweb_rendered.py \
	tests/test_dicomweb_stow.py tests/test_dicomweb_wado.py tests/test_crash_safety.py \
	tests/test_workers.py tests/test_charsets.py tests/test_bad_input.py tests/test_viewer.py \
	tests/test_upgrade.py tests/test_sdnotify.py tests/test_install.py tests/test_backup.py
test-binary: setup-test binary-dist
	MEKONG_BINARY=$(CURDIR)/dist/mekong.dist/mekong.bin $(BIN)/pytest $(BINARY_TESTS)

bench-binary: setup-build
	$(BIN)/python -m tools.bench.binary

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup-test
	tools/apt-ensure.sh $(APT_BENCH)
	$(BIN)/python -m tools.bench.dimse

bench-web: setup-test
	tools/apt-ensure.sh $(APT_BENCH_WEB)
	$(BIN)/python -m tools.bench.dicomweb

# 200 signed-in console users, 100k studies; no peer to compare with (Orthanc has no console).
bench-console: setup
	$(BIN)/python -m tools.bench.console

bench-sync: setup-test
	tools/apt-ensure.sh $(APT_BENCH)
	$(BIN)/python -m tools.bench.uplink

# Re-pin every dependency after changing pyproject.toml.
lock: setup
	$(BIN)/pip freeze --exclude-editable | grep -v '^mekong' > requirements.lock

# Console strings: extract from the code and templates, add new ones to both catalogs
# (shared/console/locales/{vi,en}); then translate the empty Vietnamese entries.
CONSOLE := shared/console
messages: setup
	$(BIN)/pybabel extract -F $(CONSOLE)/babel.cfg -k N_ --no-location --sort-output \
		--project Mekong --omit-header -o $(CONSOLE)/locales/messages.pot $(CONSOLE)
	for lang in vi en; do $(BIN)/pybabel update --no-fuzzy-matching --no-wrap \
		-i $(CONSOLE)/locales/messages.pot -d $(CONSOLE)/locales -l $$lang; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build/ohif build/nuitka build/binary-src dist
