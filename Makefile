# Coffer: the two commands are `make run` and `make check` (see README.md).
# This Makefile is a thin front end over CMake/CTest; the build lives in CMakeLists.txt.
SHELL := /bin/bash
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GEN := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")
CMAKE_ARGS ?=
FUZZ_SECONDS ?= 30

.PHONY: all deps build build-asan check test test-asan bench fuzz run demo clean

all: build

deps:
	@scripts/install-deps.sh --check 2>/dev/null || scripts/install-deps.sh

build/CMakeCache.txt:
	cmake -S . -B build -G "$(GEN)" -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: deps build/CMakeCache.txt
	cmake --build build -j $(JOBS)

build-asan/CMakeCache.txt:
	cmake -S . -B build-asan -G "$(GEN)" -DCOFFER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)

build-asan: deps build-asan/CMakeCache.txt
	cmake --build build-asan -j $(JOBS)

test: build
	cd build && ctest -j $(JOBS) --output-on-failure

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j $(JOBS) --output-on-failure

# Every unit test, integration test and fuzz-corpus replay, then all of it again
# under AddressSanitizer + UndefinedBehaviorSanitizer.
check: test test-asan
	@echo "make check: all suites passed (plain and ASan+UBSan)"

bench: deps build/CMakeCache.txt
	cmake --build build -j $(JOBS) --target benches
	scripts/bench.sh build

# Coverage-guided fuzzing with libFuzzer (clang); corpora grow in fuzz/corpus/.
fuzz: deps
	cmake -S . -B build-fuzz -G "$(GEN)" -DCMAKE_C_COMPILER=clang -DCOFFER_FUZZ=ON \
	  -DCOFFER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS)
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

run: build
	scripts/run.sh build

# Runs the platform, a request per demo job, an attestation and an audit verification, then stops.
demo: build
	scripts/demo.sh build

clean:
	rm -rf build build-asan build-fuzz
