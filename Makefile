# Synaps — the two commands a newcomer needs: `make run` and `make test`.
# Every target first installs what is missing (scripts/install-deps is idempotent), then builds.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
SYNAPS := $(BUILD_DIR)/src/synaps
DEMO_TEXT ?= Hello from Synaps: this text went through the API, PostgreSQL, NATS, a worker and the object store.
CTEST_JOBS ?= 2
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build run demo test schema fuzz clean help test-asan test-tsan chaos

all: build

help:
	@echo "make run    start the embedded stack (PostgreSQL, NATS, API, worker) and run a demo command"
	@echo "make demo   the same, but exit after printing the succeeded run"
	@echo "make test   build and run every test (unit, integration, e2e)"
	@echo "make schema regenerate db/schema.sql (the effective schema) from db/migrations"
	@echo "make test-asan  build in $(ASAN_BUILD_DIR) with ASan + UBSan and run the tests (SAN_LABELS)"
	@echo "make test-tsan  build in $(TSAN_BUILD_DIR) with ThreadSanitizer and run the tests (SAN_LABELS)"
	@echo "make chaos  kill, stop and freeze processes and servers under 5,000 tasks; report in docs/reliability.md"
	@echo "make fuzz   fuzz the API's request parsing for FUZZ_SECONDS (default 60) with libFuzzer"
	@echo "make build  build $(SYNAPS)"
	@echo "make bench  run the benchmarks and write docs/benchmarks.md (BENCH_QUICK=1: a short run)"

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR)

run: build
	$(SYNAPS) dev --demo "$(DEMO_TEXT)"

demo: build
	$(SYNAPS) dev --state-dir .synaps/demo --listen 127.0.0.1:0 --demo "$(DEMO_TEXT)" --exit-after-demo

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(CTEST_JOBS) $(CTEST_ARGS)

# db/schema.sql: the effective schema and functions after every migration (scripts/schema-dump).
# Run after adding a migration; `make test` (schema_test) fails while it is stale.
schema: build
	scripts/schema-dump $(SYNAPS) db/schema.sql

# libFuzzer over the API's request parsing and validation (tests/fuzz/README.md), built with
# clang-19 and ASan + UBSan in $(FUZZ_DIR), apart from the main g++ build. Fails on the first
# crash, leaving the input in $(FUZZ_DIR)/crashes/. New corpus entries stay in $(FUZZ_DIR)/corpus.
fuzz:
	@scripts/install-deps --fuzz
	cmake -S tests/fuzz -B $(FUZZ_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_DIR)
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	ASAN_SYMBOLIZER_PATH=$$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer || true) \
	UBSAN_OPTIONS=print_stacktrace=1 \
	$(FUZZ_DIR)/request_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  -max_len=8192 -dict=tests/fuzz/request.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	  -print_final_stats=1 $(FUZZ_DIR)/corpus tests/fuzz/corpus
	@echo "fuzz: 1 passed, 0 failed"

# The tests under the sanitizers (docs/reliability.md, "Sanitizers"), each in its own build
# directory, without the web console. SAN_LABELS is a ctest label regex (empty: every test).
# Every process a test starts (synaps api/worker too) inherits the options below and writes its
# reports to <build>/sanitizer-logs/; scripts/sanitizer-ctest fails the run when any report exists,
# so a finding in a child process fails the run even when the test itself passed.
ASAN_BUILD_DIR ?= build-asan
TSAN_BUILD_DIR ?= build-tsan
SAN_LABELS ?=
SAN_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNAPS_BUILD_CONSOLE=OFF $(CMAKE_ARGS)
# ASan + UBSan build at -Og: UBSan's checks under -O1 cost 2.6x the compile time of ASan alone
# (providers/local_provider.cpp: 78 s at -O1, 38 s at -Og, 30 s ASan alone at -O1), and CI builds
# this configuration cold. TSan stays at -O1 (it is slow at run time without optimization).
ASAN_FLAGS = "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-Og -g1"
TSAN_FLAGS = "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1"

# With SAN_LABELS set, only the test binaries carrying those labels are built (their ctest names
# are their target names).
san_targets = $(if $(SAN_LABELS),--target $$(cd $(1) && ctest -N -L '$(SAN_LABELS)' | sed -n 's/^ *Test *\#[0-9]*: //p'))

test-asan: deps
	cmake -S . -B $(ASAN_BUILD_DIR) $(SAN_CMAKE) $(ASAN_FLAGS) -DSANITIZE=address,undefined
	cmake --build $(ASAN_BUILD_DIR) $(call san_targets,$(ASAN_BUILD_DIR))
	scripts/sanitizer-ctest asan $(ASAN_BUILD_DIR) "$(SAN_LABELS)" $(CTEST_JOBS)

test-tsan: deps
	cmake -S . -B $(TSAN_BUILD_DIR) $(SAN_CMAKE) $(TSAN_FLAGS) -DSANITIZE=thread
	cmake --build $(TSAN_BUILD_DIR) $(call san_targets,$(TSAN_BUILD_DIR))
	scripts/sanitizer-ctest tsan $(TSAN_BUILD_DIR) "$(SAN_LABELS)" $(CTEST_JOBS)

# The chaos test (tests/chaos/chaos_test.cpp): minutes long, not part of `make test`. Its report
# replaces the part of docs/reliability.md between the chaos markers. CHAOS_ENV passes knobs,
# e.g. CHAOS_ENV="SYNAPS_CHAOS_TASKS=500 SYNAPS_CHAOS_SEED=7".
CHAOS_ENV ?=
chaos: build
	cmake --build $(BUILD_DIR) --target chaos_test
	env SYNAPS_CHAOS_REPORT=$(BUILD_DIR)/chaos-report.md $(CHAOS_ENV) $(BUILD_DIR)/tests/chaos_test
	scripts/splice-report docs/reliability.md chaos $(BUILD_DIR)/chaos-report.md

# Benchmarks (docs/benchmarks.md): their own Release build in $(BENCH_BUILD_DIR), wrk and the npm
# peers from scripts/install-deps --bench. BENCH_QUICK=1 for a short run; BENCH_ARGS for more
# (e.g. BENCH_ARGS="--only drain,intake").
BENCH_BUILD_DIR ?= build-bench

.PHONY: bench
bench:
	@scripts/install-deps --bench
	cmake -S . -B $(BENCH_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -g -DNDEBUG" -DSYNAPS_BUILD_TESTS=OFF -DSYNAPS_BUILD_BENCH=ON
	cmake --build $(BENCH_BUILD_DIR) --target synaps_bench
	$(BENCH_BUILD_DIR)/bench/synaps_bench $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_DIR) $(ASAN_BUILD_DIR) $(TSAN_BUILD_DIR)
