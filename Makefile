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

.PHONY: all deps build build-embedded test test-unit coverage format format-check clean demo \
	deb footprint soak cross-deps cross-armhf cross-arm64 test-cross

all: build

deps:
	@tools/install-deps test coverage format integration faults package

build: deps
	cmake -S . -B $(HOST_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(HOST_DIR) -j $(JOBS)

build-embedded: deps
	cmake -S . -B $(EMBEDDED_DIR) -DCMAKE_BUILD_TYPE=MinSizeRel -DTETHER_EMBEDDED=ON $(CMAKE_FLAGS)
	cmake --build $(EMBEDDED_DIR) -j $(JOBS)

# The embedded (no exceptions, no RTTI) unit suite, the coverage floor and the
# ARM unit suites run first; the full host suite runs last so its ctest summary
# ends the output.
test: deps format-check build-embedded coverage test-cross build
	ctest --test-dir $(EMBEDDED_DIR) -L unit --output-on-failure -j $(JOBS)
	ctest --test-dir $(HOST_DIR) --output-on-failure -j $(JOBS)

# The main job: tetherd and tether-server on this machine through every fault,
# ending with a tally read from the server's store (see tools/demo).
demo: deps build
	/usr/bin/python3 tools/demo

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
