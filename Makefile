# gust — the two set-up commands of the README are `make demo` and `make test`.
# Every target installs what is missing first (scripts/install-deps is idempotent).

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
PYTHON := /usr/bin/python3
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache when present (a developer convenience; CI builds from scratch either way).
CCACHE := $(shell command -v ccache 2>/dev/null)
ifneq ($(CCACHE),)
CMAKE_FLAGS += -DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE) -DCMAKE_C_COMPILER_LAUNCHER=$(CCACHE)
endif

.PHONY: all deps build asan test test-cc test-py test-asan demo bench bench-events bench-web bench-map bench-zygote format clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DGUST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)

test-cc: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-py: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) -m pytest -q -p no:cacheprovider runtimes/python/tests tests/python tests/e2e

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS)

test: test-cc test-asan test-py

demo: build
	$(PYTHON) examples/demo.py --gust $(CURDIR)/$(BUILD_DIR)/bin/gust

# Benchmarks want a quiet machine; figures go into bench/RESULTS.md by hand.
bench: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/engine/bench_engine.py --out bench/out/engine.json

# Issue 5: async accept rate (fsync + group commit, and peers), drain rate, schedule
# jitter, recovery after kill -9. Writes bench/out/events.json and prints a table.
bench-events: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/events/bench_events.py --out bench/out/events.json

# Web apps (issue 4): gust's gateway vs gunicorn on the same Flask app; bench/out/web.json.
bench-web: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/web/bench_web.py --out bench/out/web.json

# Issue 3: gust's map against multiprocessing, concurrent.futures, joblib and
# Dask in one run (several minutes); writes bench/out/map.json, prints a table.
bench-map: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/map/bench_map.py --out bench/out/map.json

# The zygote's interpreter speed: one pure-Python loop in /usr/bin/python3 and in
# sandboxes of both zygotes (--zygote python|embedded), interleaved; bench/out/zygote.json.
bench-zygote: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/zygote/bench_zygote.py --out bench/out/zygote.json

format:
	find src -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
