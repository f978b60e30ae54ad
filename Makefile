# gust — the two set-up commands of the README are `make demo` and `make test`.
# Every target installs what is missing first (scripts/install-deps is idempotent).

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
# make fuzz: seconds per target; make test-fuzz: seconds of fuzzing per target
# after its corpus and regressions replay (12 targets: about a minute in all).
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 3
CLANG_CC ?= clang-16
CLANG_CXX ?= clang++-16
PYTHON := /usr/bin/python3
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache when present (a developer convenience; CI builds from scratch either way).
CCACHE := $(shell command -v ccache 2>/dev/null)
ifneq ($(CCACHE),)
CMAKE_FLAGS += -DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE) -DCMAKE_C_COMPILER_LAUNCHER=$(CCACHE)
endif

.PHONY: all deps build bench-build asan fuzz-build fuzz test test-cc test-py test-slow test-lithops test-cluster test-asan test-fuzz lint-py typecheck format-check tidy demo bench bench-events bench-web bench-map bench-zygote bench-shuffle demo-shuffle format clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

# The product only (gust, the sandbox init, the zygote module); tests and benchmark
# binaries are separate targets (CMakeLists.txt: gust_tests, gust_benches).
build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

bench-build: build
	cmake --build $(BUILD_DIR) -j $(JOBS) --target gust_benches

# The one clang build (docs/FUZZING.md): ASan + UBSan, -Wthread-safety -Werror
# (the GUARDED_BY annotations, enforced), everything ctest runs and the libFuzzer
# targets, with coverage instrumentation throughout. It replaced a g++ ASan build
# and a separate clang fuzz build (cost compared in docs/FUZZING.md).
$(ASAN_DIR)/build.ninja: CMakeLists.txt tests/fuzz/CMakeLists.txt
	CC=$(CLANG_CC) CXX=$(CLANG_CXX) cmake -S . -B $(ASAN_DIR) -G Ninja -DGUST_SANITIZE=ON \
	  -DGUST_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

asan: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS) --target all gust_tests

fuzz-build: asan

# Every target for FUZZ_SECONDS (make fuzz FUZZ_SECONDS=60); prints executions per target.
fuzz: fuzz-build
	tests/fuzz/run_fuzz.sh --build $(ASAN_DIR) --seconds $(FUZZ_SECONDS)

# The smoke in `make test`: corpora + regressions, then a few seconds each; fails on a crash.
test-fuzz: fuzz-build
	tests/fuzz/run_fuzz.sh --build $(ASAN_DIR) --smoke --seconds $(FUZZ_SMOKE_SECONDS)

# The unit tests in the release build (a developer's quick run); `make test` runs
# them once, under ASan + UBSan (test-asan), and tests the release build end to end.
test-cc: build
	cmake --build $(BUILD_DIR) -j $(JOBS) --target gust_tests
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# tests/cluster in a second pytest, two files at a time (pytest-xdist, --dist loadfile: a
# module's fixtures stay in one worker): its tests mostly wait (leases, heartbeats, sleeping
# tasks), and each worker has its own PostgreSQL, schemas, ports and state dirs. Half its
# wall time (bench/RESULTS.md, "CI time"). The rest stays serial: rootless engines share
# one user's process limit, and the memory and exhaustion suites want the machine.
CLUSTER_PYTEST_JOBS ?= 2
# Both run whatever the first's outcome (every failure is reported), and either fails it.
test-py: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" \
	  runtimes/python/tests tests/python tests/e2e; rc=$$?; \
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" \
	  -n $(CLUSTER_PYTEST_JOBS) --dist loadfile tests/cluster || rc=1; exit $$rc

# The cases marked slow (setup.cfg): minutes each (a 20-minute map task).
test-slow: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) -m pytest -q -p no:cacheprovider -m slow tests/e2e

# Lithops' own executor tests, unchanged, against gust.lithops (issue 13); needs a
# Lithops git repository (LITHOPS_REPO or the mirror), so not part of `make test`.
test-lithops: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) tests/compat/run_lithops_tests.py

# Cluster mode (docs/CLUSTER.md): core e2e files against engines that are clusters of one
# (`gust up --cluster`, each on a database of its own in the PostgreSQL scripts/pg-temp keeps
# in $(BUILD_DIR)/tests/pg-e2e; tests/e2e/gust_e2e.py). A subset, to bound CI time.
CLUSTER_E2E ?= tests/e2e/test_lambda_api.py tests/e2e/test_async.py tests/e2e/test_schedules.py \
  tests/e2e/test_map.py tests/e2e/test_web_cli.py
test-cluster: build
	GUST_E2E_CLUSTER=$(CURDIR)/$(BUILD_DIR)/tests/pg-e2e GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin \
	  $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" $(CLUSTER_E2E); \
	  rc=$$?; scripts/pg-temp stop $(BUILD_DIR)/tests/pg-e2e; exit $$rc

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS)

# Python lint (setup.cfg [flake8]; ~4 s): pycodestyle, pyflakes and blind excepts,
# and every `# noqa` names its codes and says why (`# noqa: E402 -- why`).
PY_DIRS := python runtimes tests bench examples
lint-py: deps
	$(PYTHON) -m flake8 $(PY_DIRS)
	@if grep -rnP --include='*.py' '# noqa(?!: [A-Z]+[0-9]+(,[A-Z]+[0-9]+)* -- \S)' $(PY_DIRS); then \
	  echo "lint-py: a noqa names its codes and says why: # noqa: E402 -- why"; exit 1; fi

# mypy over the client and the runtime (setup.cfg [mypy]; ~4 s without its cache).
typecheck: deps
	$(PYTHON) -m mypy

# The cheap checks first: a lint or type error fails in seconds, before any build.
test: format-check lint-py typecheck test-asan test-py test-cluster test-fuzz

demo: build
	$(PYTHON) examples/demo.py --gust $(CURDIR)/$(BUILD_DIR)/bin/gust

# Benchmarks want a quiet machine; figures go into bench/RESULTS.md by hand.
bench: bench-build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/engine/bench_engine.py --out bench/out/engine.json

# Issue 5: async accept rate (fsync + group commit, and peers), drain rate, schedule
# jitter, recovery after kill -9. Writes bench/out/events.json and prints a table.
bench-events: bench-build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/events/bench_events.py --out bench/out/events.json

# Web apps (issue 4): gust's gateway vs gunicorn on the same Flask app; bench/out/web.json.
bench-web: bench-build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/web/bench_web.py --out bench/out/web.json

# Issue 3: gust's map against multiprocessing, concurrent.futures, joblib and
# Dask in one run (several minutes); writes bench/out/map.json, prints a table.
bench-map: bench-build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/map/bench_map.py --out bench/out/map.json

# The zygote's interpreter speed: one pure-Python loop in /usr/bin/python3 and in
# sandboxes of both zygotes (--zygote python|embedded), interleaved; bench/out/zygote.json.
bench-zygote: bench-build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/zygote/bench_zygote.py --out bench/out/zygote.json

# Issue 16: the shuffle examples (examples/shuffle: a 1 GB word count, a 4096x4096 blocked
# multiply over stored blocks) on gust against multiprocessing.Pool(2), 3 runs each (~10 min
# on 2 cores); bench/out/shuffle.json, a table. demo-shuffle: each once at a small size.
bench-shuffle: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/storage/bench_shuffle.py --out bench/out/shuffle.json

demo-shuffle: build
	GUST_BIN=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) bench/storage/bench_shuffle.py --runs 1 \
	  --size 64M --n 1024 --block 256

# clang-tidy-16 with .clang-tidy over every source in src/ (the release build's
# compile_commands.json); fails on any finding. Not part of `make test`: about
# 10 s of CPU per file (Boost and nlohmann parsed each time), some 20 minutes of
# CPU for src/'s 125 files, over 10 minutes on CI's 2 cores. Run it before a merge.
tidy: deps $(BUILD_DIR)/build.ninja
	run-clang-tidy-16 -p $(BUILD_DIR) -j $(JOBS) -quiet '$(CURDIR)/src/.*\.cc$$'

# C++ formatting (.clang-format; Debian's clang-format, 14): `make format` rewrites,
# `make format-check` (in `make test`, ~2 s) fails on any diff and prints it.
CXX_SOURCES = find src tests/fuzz -name '*.h' -o -name '*.cc'
format: deps
	$(CXX_SOURCES) | xargs clang-format -i

format-check: deps
	$(CXX_SOURCES) | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
