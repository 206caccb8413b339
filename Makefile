# Two entry points, each of which sets everything up on a fresh machine first:
#   make demo   - install, then train LeNet-5 on the built-in digits (the main job)
#   make test   - install, then run the whole test suite
#   make fuzz   - install, then fuzz the compiler for MINUTES minutes (default 10), findings in
#                 FUZZ_OUT (default fuzz-out/): each failing input and summary.{json,md}
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system demo test bench fuzz

setup: system $(STAMP)

# Debian's graphviz gives `archdsl draw` its `dot` binary.
system:
	@command -v dot >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/archdsl check specs/lenet5.arch
	$(VENV)/bin/archdsl train specs/lenet5.arch digits

# the tests run on every core (pytest-xdist), each taking the next test when it is free
test: setup
	$(PY) -m pytest -q -n auto --dist worksteal

bench: setup
	$(PY) benchmarks/check_speed.py

MINUTES  ?= 10
FUZZ_OUT ?= fuzz-out
fuzz: setup
	$(PY) tools/fuzz.py --minutes $(MINUTES) --out $(FUZZ_OUT)
