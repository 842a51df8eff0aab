# Hotline: the two commands users need are `make demo` and `make test`.
# Each installs what is missing (Debian packages, .venv), builds, then runs.

PYTHON      ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
DURATION    ?=
PYTEST_ARGS ?=
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)

# Build and media tooling (libopus, clang + its sanitizer/fuzzer runtime), and
# the audio tools the quality tests and the demo use to make speech prompts.
DEB_BUILD   := build-essential pkg-config libopus-dev clang libclang-rt-14-dev
DEB_AUDIO   := espeak-ng sox libsox-fmt-all opus-tools
# Graphviz lays out `hotline ivr graph` (flows have cycles and labelled edges);
# Chromium and its driver test the wallboard headless.
DEB_TOOLS   := graphviz chromium chromium-driver
# Real third-party peers the interop tests and benchmarks drive on loopback
# (../shared/peers/RECIPES.md): SIPp, tshark, baresip, linphone, rtpengine, Kamailio.
DEB_PEERS   := sip-tester tshark baresip baresip-core linphone-cli rtpengine-daemon rtpengine-utils kamailio
# A real PostgreSQL server for the store's tests (started privately by tests/pg.py).
DEB_DB      := postgresql
DEB_PACKAGES := $(DEB_BUILD) $(DEB_AUDIO) $(DEB_TOOLS) $(DEB_PEERS) $(DEB_DB)

.PHONY: media-demo all deps system-deps venv build ivr-prompts test test-fast native demo bench clean distclean

all: build

system-deps:
	@tools/ensure-debian-packages.sh $(DEB_PACKAGES)

$(VENV)/.requirements.stamp: requirements.txt
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt
	@touch $@

venv: $(VENV)/.requirements.stamp

deps: system-deps venv

# Editable install through setup.py's CMake shim; CMake rebuilds incrementally
# in build/. Our own code is built with warnings as errors here.
build: deps
	CMAKE_ARGS="-DHOTLINE_WERROR=ON $(CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
	  $(VPY) -m pip install -q --no-build-isolation --no-deps -e .

# The IVR prompts are synthesized from ivr/prompts.toml (espeak-ng + sox), not
# shipped; incremental.
ivr-prompts: deps
	$(VPY) ivr/build_prompts.py

test: build ivr-prompts
	$(VPY) -m pytest -q $(PYTEST_ARGS)

# Everything but the slow and peer tests, for a quick edit-run loop.
test-fast: build ivr-prompts
	$(VPY) -m pytest -q -m "not slow and not peers and not native" $(PYTEST_ARGS)

# Sanitizer (ASan+UBSan) self-checks and bounded fuzzing only.
native: build
	$(VPY) -m pytest -q tests/native $(PYTEST_ARGS)

# The embedded call centre (CONTRACT.md): SIP 127.0.0.1:5060, wallboard http://127.0.0.1:8080/,
# simulated agents and callers; DURATION=60 runs 60 s and prints the summary.
demo: build ivr-prompts
	$(VPY) -m orchestrator.cli demo $(if $(DURATION),--duration $(DURATION))

# The media core alone: a prompt through G.711, jitter, loss and our playout, scored with PESQ.
media-demo: build ivr-prompts
	$(VPY) -m mediacore.demo

# Every suite (hotline bench): JSON under bench/results/, PNG plots, docs/PERFORMANCE.md refilled.
# One suite: make bench SUITES="relay capacity"; a one-minute smoke run: make bench SUITES=--quick.
# The pytest benchmarks alone: .venv/bin/python -m pytest -q bench
bench: build ivr-prompts
	$(VPY) -m orchestrator.cli bench $(SUITES)

clean:
	rm -rf build demo-out src/mediacore/_*.so
distclean: clean
	rm -rf $(VENV) var
