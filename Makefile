# rvemu: `make run` boots the demo app, `make test` runs every test. Both install what is
# missing first: Debian packages (when root) and a .venv with the Python dependencies.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc gdb-multiarch \
                device-tree-compiler opensbi python3-venv libslirp0 apache2-utils curl
# One Numba cache for every process (rvemu keys a subfolder on its compiled sources).
export RVEMU_CACHE_DIR ?= $(CURDIR)/.cache/rvemu

.PHONY: run test deps packages venv apps apps-sv39 warm lint format bench riscv-tests fuzz mutate \
        xv6-usertests tier2-modes clean

run: deps apps
	$(PY) -m rvemu boot build/unikernel/hello.elf --stats

test: deps apps apps-sv39 warm lint
	$(PY) -m pytest -n 2 -q -rs

deps: packages venv

packages:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(APT_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install $(APT_PACKAGES)"; exit 1; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

apps: packages
	$(MAKE) -C unikernel all

# The same apps with main in S-mode under Sv39 paging (libos -DLIBOS_SV39), for rvemu bench.
apps-sv39: packages
	$(MAKE) -C unikernel all OUT=$(CURDIR)/build/unikernel-sv39 EXTRA_CFLAGS=-DLIBOS_SV39

# Compile the core once, so parallel test workers load it from the cache: the native
# libraries every run loads, and Numba's own copy (the fallback, and what tests call).
warm: venv
	$(PY) -c "import rvemu; rvemu.Machine(memory='1M').hart.warm_up()"
	RVEMU_NATIVE_CORE=0 $(PY) -c "import rvemu; rvemu.Machine(memory='1M').hart.warm_up()"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Every official test found (all 368 when built as riscv-tests/README.md says), looked up
# where tests/test_official_suite.py looks.
RISCV_TESTS := $(firstword $(RVEMU_RISCV_TESTS) $(wildcard riscv-tests/isa) /opt/riscv-tests/isa)
riscv-tests: deps warm
	$(PY) -m rvemu test $(RISCV_TESTS) -j 2

# The compliance and system tests again with the second tier as hot as it gets (every jump
# target compiled: RVEMU_HOT_THRESHOLD=1), with the code cache off and on, and at the
# default threshold with the cache off (`make test` runs the default: the cache on). At
# threshold 1 regions are compiled in the background, as `rvemu boot` does (tests compile
# them at once otherwise): compiling every jump target of Linux's boot with the guest
# waiting takes longer than its test allows.
SYSTEM_TESTS := tests/test_official_suite.py tests/test_xv6.py tests/test_linux.py \
                tests/test_dev_opensbi.py tests/test_dev_guests.py tests/test_apps.py \
                tests/test_snapshot.py tests/test_native.py tests/test_tier2.py
tier2-modes: deps apps warm
	RVEMU_HOT_THRESHOLD=1 RVEMU_CODE_CACHE=0 RVEMU_BACKGROUND_COMPILE=1 $(PY) -m pytest -n 2 -q -rs $(SYSTEM_TESTS)
	RVEMU_HOT_THRESHOLD=1 RVEMU_CODE_CACHE=1 RVEMU_BACKGROUND_COMPILE=1 $(PY) -m pytest -n 2 -q -rs $(SYSTEM_TESTS)
	RVEMU_CODE_CACHE=0 $(PY) -m pytest -n 2 -q -rs $(SYSTEM_TESTS)

bench: deps apps apps-sv39 warm
	$(PY) -m rvemu bench
	$(PY) -m rvemu bench --only guests

# Long fuzzing campaigns (make test runs short ones): mutated images through the loader;
# every harness of tests/test_fuzz_inputs.py with FUZZ_SCALE times its make-test inputs,
# random ones (failures are kept in .hypothesis/); then each harness coverage-guided under
# atheris for FUZZ_RUNS inputs (its corpus grows in build/fuzz-corpus/).
FUZZ_SCALE ?= 20
FUZZ_RUNS ?= 20000
FUZZ_HARNESSES := elf cli registers guest-mmio virtqueues frames
fuzz: deps apps warm
	$(PY) -m pip install -q -e '.[dev,fuzz]'
	$(PY) tests/fuzz_elf.py 100000
	RVEMU_FUZZ_SCALE=$(FUZZ_SCALE) $(PY) -m pytest -q tests/test_fuzz_inputs.py \
	  -p no:cacheprovider --hypothesis-show-statistics
	for h in $(FUZZ_HARNESSES); do $(PY) tests/fuzz_atheris.py $$h $(FUZZ_RUNS) || exit 1; done

# Mutation testing (mutmut; what it may mutate and which tests it runs: [tool.mutmut] in
# pyproject.toml) of the mutants named by MUTATE against their unit tests: the devices take
# ~20 minutes of both cores; MUTATE='rvemu.cpu.hart.*' mutates the hart's Python-level
# helpers (slow: every one of them runs the debug, board and guest tests). Prints every
# mutant that survived, timed out or had no test.
MUTATE ?= rvemu.devices.*
mutate: deps apps warm
	$(PY) -m pip install -q -e '.[dev,mutate]'
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2 '$(MUTATE)'
	$(VENV)/bin/mutmut results

# xv6-riscv's whole `usertests -q` on rvemu, timed, and on QEMU beside it when installed.
# xv6 is not in this repository: build and install it as README.md ("xv6-riscv") says.
xv6-usertests: deps warm
	$(PY) tests/xv6.py "usertests -q"

clean:
	rm -rf build .cache mutants .hypothesis
