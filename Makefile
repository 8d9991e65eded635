# SPDX-License-Identifier: MIT
# The Makefile only drives CMake; every flag lives on a CMake target.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CMAKE_FLAGS ?=

HOST_DIR := $(BUILD)/host
EMBEDDED_DIR := $(BUILD)/embedded
COVERAGE_DIR := $(BUILD)/coverage
ARMHF_DIR := $(BUILD)/armhf
ARM64_DIR := $(BUILD)/arm64

# The shipped gateway build, cross-compiled: <build dir>, <toolchain file>.
cross_configure = cmake -S . -B $(1) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/toolchains/$(2).cmake \
	-DTETHER_EMBEDDED=ON -DCMAKE_BUILD_TYPE=MinSizeRel $(CMAKE_FLAGS)

SOURCES = $(shell git ls-files --cached --others --exclude-standard \
                '*.cpp' '*.h' 2>/dev/null)

.PHONY: all deps build build-embedded test test-unit coverage format format-check clean demo demo-fleet bench \
	deb footprint soak cross-deps cross-armhf cross-arm64 test-cross

all: build

deps:
	@tools/install-deps test coverage format integration faults package bench

build: deps
	cmake -S . -B $(HOST_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(HOST_DIR) -j $(JOBS)

build-embedded: deps
	cmake -S . -B $(EMBEDDED_DIR) -DCMAKE_BUILD_TYPE=MinSizeRel -DTETHER_EMBEDDED=ON $(CMAKE_FLAGS)
	cmake --build $(EMBEDDED_DIR) -j $(JOBS)

# The embedded (no exceptions, no RTTI) unit suite, the coverage floor, the
# ARM unit suites under qemu, the whole suite under ASan+UBSan and a short fuzz
# run come first; the full host suite runs last so its ctest summary ends the
# output. The ARM builds are completed before it: integration.packages.armhf
# and .arm64 package their programs (cpack would build them one file at a time).
test: deps format-check build-embedded coverage test-cross test-asan fuzz-smoke build
	ctest --test-dir $(EMBEDDED_DIR) -L unit --output-on-failure -j $(JOBS)
	$(HOST_DIR)/tests/crash_points/tether-crash-points
	cmake --build $(ARMHF_DIR) -j $(JOBS)
	cmake --build $(ARM64_DIR) -j $(JOBS)
	ctest --test-dir $(HOST_DIR) --output-on-failure -j $(JOBS)

# tether side by side with libwebsockets, Python websockets, Node ws and a
# raw-socket bound; link figures; the reconnect storm. Prints the ratios and
# writes docs/BENCHMARKS.md and the storm plots (see tools/bench). About 15
# minutes; `ctest -R bench.smoke` runs the same harness with tiny sizes.
bench: deps build
	/usr/bin/python3 tools/bench --build-dir $(HOST_DIR) --docs-dir docs

# The main job: tetherd and tether-server on this machine through every fault,
# ending with a tally read from the server's store (see tools/demo).
demo: deps build
	/usr/bin/python3 tools/demo

# The fleet: two tether-server instances on one local Redis, tetherd with both
# as endpoints, the serving instance killed; the tally is read from Redis
# (see tools/demo-fleet).
demo-fleet: deps build
	/usr/bin/python3 tools/demo-fleet

# Debian packages (tetherd, tether-server, libtether-dev) from build/host into
# build/host/packages, and from build/armhf and build/arm64 too when the cross
# targets have configured them (their toolchain gives the architecture).
deb: build
	@tools/install-deps package
	cd $(HOST_DIR) && cpack -G DEB
	@for arch in armhf arm64; do \
		if [ -f $(BUILD)/$$arch/CPackConfig.cmake ]; then \
			cmake --build $(BUILD)/$$arch -j $(JOBS) && (cd $(BUILD)/$$arch && cpack -G DEB) || exit 1; \
		fi; \
	done
	@ls -1 $(BUILD)/*/packages/*.deb

# Code size, static RAM and peak RSS of libtether and tetherd, written to
# docs/FOOTPRINT.md (see tools/footprint). amd64 from the embedded build
# (MinSizeRel, no exceptions/RTTI); armhf and arm64 when those builds exist.
footprint: build-embedded
	@tools/install-deps package
	cmake --build $(EMBEDDED_DIR) -j $(JOBS) --target tether-sizes
	/usr/bin/python3 tools/footprint --build-dir $(BUILD)

cross-deps:
	@tools/install-deps build cross

# Everything (libraries, apps, unit tests) for the gateways' two ABIs.
cross-armhf: cross-deps
	$(call cross_configure,$(ARMHF_DIR),arm-linux-gnueabihf)
	cmake --build $(ARMHF_DIR) -j $(JOBS)

cross-arm64: cross-deps
	$(call cross_configure,$(ARM64_DIR),aarch64-linux-gnu)
	cmake --build $(ARM64_DIR) -j $(JOBS)

# The unit suite of each ABI under qemu-user (the toolchains' emulator): only
# the test binary and the libraries it links are built. 32-bit armhf is where
# size_t, time_t and off_t differ from the host.
test-cross: cross-deps
	$(call cross_configure,$(ARMHF_DIR),arm-linux-gnueabihf)
	cmake --build $(ARMHF_DIR) -j $(JOBS) --target tether_unit_tests
	$(call cross_configure,$(ARM64_DIR),aarch64-linux-gnu)
	cmake --build $(ARM64_DIR) -j $(JOBS) --target tether_unit_tests
	ctest --test-dir $(ARMHF_DIR) -L unit --output-on-failure -j $(JOBS)
	ctest --test-dir $(ARM64_DIR) -L unit --output-on-failure -j $(JOBS)

test-unit: build
	ctest --test-dir $(HOST_DIR) -L unit --output-on-failure -j $(JOBS)

coverage: deps
	cmake -S . -B $(COVERAGE_DIR) -DCMAKE_BUILD_TYPE=Debug -DTETHER_COVERAGE=ON $(CMAKE_FLAGS)
	cmake --build $(COVERAGE_DIR) -j $(JOBS)
	find $(COVERAGE_DIR) -name '*.gcda' -delete
	ctest --test-dir $(COVERAGE_DIR) -L unit --output-on-failure -j $(JOBS) > $(COVERAGE_DIR)/ctest.log \
		|| { cat $(COVERAGE_DIR)/ctest.log; exit 1; }
	gcovr --root . --filter 'src/' --object-directory $(COVERAGE_DIR) \
		--exclude-unreachable-branches --exclude-throw-branches \
		--print-summary --fail-under-line 90 --fail-under-branch 80 \
		--html-details $(COVERAGE_DIR)/coverage.html -o $(COVERAGE_DIR)/coverage.html

format:
	clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES) && echo "format-check: $(words $(SOURCES)) files clean"

clean:
	rm -rf $(BUILD)

# Fault injection soak: tetherd and tether-server in two network namespaces
# through at least 1000 faults per hour of every kind (tests/fault), ending
# with the table. Needs root. SOAK_SECONDS=300 make soak for a short one.
SOAK_SECONDS ?= 3600
soak: deps build
	/usr/bin/python3 tests/fault/run_faults.py --build-dir $(HOST_DIR) \
		--duration $(SOAK_SECONDS) --min-rate 1000 $(if $(SOAK_SEED),--seed $(SOAK_SEED))

# libFuzzer targets (tests/fuzz) built with clang, ASan and UBSan in
# $(BUILD)/fuzz; each runs FUZZ_SECONDS on a scratch copy of its seed corpus.
# A finding fails the run and names the input (see tools/run-fuzz).
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= $(JOBS)

.PHONY: fuzz fuzz-smoke fuzz-build test-asan test-valgrind

fuzz-build:
	@tools/install-deps build fuzz
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTETHER_FUZZ=ON \
		-DTETHER_BUILD_TESTS=OFF -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 $(CMAKE_FLAGS)
	cmake --build $(FUZZ_DIR) -j $(JOBS)

fuzz: fuzz-build
	tools/run-fuzz $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS)

fuzz-smoke: fuzz-build
	tools/run-fuzz $(FUZZ_DIR) 5 $(FUZZ_JOBS)

# The whole suite (unit + integration) built with gcc's ASan and UBSan in
# $(BUILD)/asan; any report aborts the process that made it. Reports from
# every process, the daemons the integration tests start included, also go to
# $(ASAN_DIR)/sanitizer-logs, and one there fails the run even when the test
# that started the process did not notice.
ASAN_DIR := $(BUILD)/asan
SANITIZER_LOGS := $(abspath $(ASAN_DIR))/sanitizer-logs

test-asan: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DTETHER_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	rm -rf $(SANITIZER_LOGS) && mkdir -p $(SANITIZER_LOGS)
	ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$(SANITIZER_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZER_LOGS)/ubsan \
		ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS) -E '^integration[.]faults[.]' 
	@if [ -n "$$(ls -A $(SANITIZER_LOGS))" ]; then \
		echo "test-asan: sanitizer reports in $(SANITIZER_LOGS):" >&2; \
		head -n 40 $(SANITIZER_LOGS)/* >&2; exit 1; fi
	@echo "test-asan: no sanitizer report"

# The unit suite under valgrind's memcheck. CppUTest's replacement new and
# delete are switched off for the run (TETHER_UNIT_UNDER_VALGRIND, see
# tests/support/main.cpp): valgrind tracks the heap itself. CppUTest's library
# still pairs its malloc-backed operator new with the C++ runtime's delete,
# which valgrind would report as mismatched, hence --show-mismatched-frees=no.
# nouserintercepts leaves the test binary's own malloc (AllocationCounter,
# tests/support/alloc_counter.cpp) in place; it forwards to the C library's,
# which valgrind does replace, so the allocation-counting tests still count.
VALGRIND_DIR := $(BUILD)/valgrind

test-valgrind: deps
	@tools/install-deps integration
	cmake -S . -B $(VALGRIND_DIR) -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(VALGRIND_DIR) -j $(JOBS) --target tether_unit_tests
	TETHER_UNIT_UNDER_VALGRIND=1 valgrind --leak-check=full --error-exitcode=1 \
		--show-mismatched-frees=no --errors-for-leak-kinds=definite,indirect,possible \
		--soname-synonyms=somalloc=nouserintercepts \
		$(VALGRIND_DIR)/tests/tether_unit_tests
