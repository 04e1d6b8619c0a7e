# Synaps — the two commands a newcomer needs: `make run` and `make test`.
# Every target first installs what is missing (scripts/install-deps is idempotent), then builds.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
SYNAPS := $(BUILD_DIR)/src/synaps
DEMO_TEXT ?= Hello from Synaps: this text went through the API, PostgreSQL, NATS, a worker and the object store.
CTEST_JOBS ?= 2

.PHONY: all deps build run demo test clean help

all: build

help:
	@echo "make run    start the embedded stack (PostgreSQL, NATS, API, worker) and run a demo command"
	@echo "make demo   the same, but exit after printing the succeeded run"
	@echo "make test   build and run every test (unit, integration, e2e)"
	@echo "make build  build $(SYNAPS)"

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

clean:
	rm -rf $(BUILD_DIR)
