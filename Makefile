# ocsscale: `make demo` runs the main job on the built-in lab, `make test` runs every test.
# Both create the virtual environment they need; system packages come from Debian (root).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEB_PACKAGES := openssh-server openssh-client bind9 bind9-utils bind9-dnsutils haproxy \
                iproute2 iputils-arping procps psmisc wrk iperf3 nginx-light python3-venv \
                chromium fonts-dejavu-core nftables keepalived

.PHONY: help deps venv demo test test-fast lint bench bench-quick clean

help:
	@echo "make demo   - the whole migration on the lab under a client load, rolled back (Linux FEs, then Windows FEs)"
	@echo "make test   - run the whole test suite (needs root for the lab tests)"
	@echo "make test-fast - every test but the lab ones (-m 'not lab'): no root, no network namespaces"
	@echo "make lint   - ruff, mypy --strict on the typed packages"
	@echo "make bench  - engine vs HAProxy benchmark (several minutes)"

# Installs the Debian packages the lab and the tests use, only when one is missing.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run as root or: sudo apt-get install $$missing)"; exit 2; fi; \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/ocsscale: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,lab]'
	@touch $@

venv: $(BIN)/ocsscale

demo: deps venv
	$(BIN)/python -m ocsscale_lab.demo

test: deps venv
	$(BIN)/python -m pytest -q -ra

# The lab tests (tests/lab/, and the LB contract) are marked `lab` (tests/markers.py).
test-fast: venv
	$(BIN)/python -m pytest -q -ra -m "not lab"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: deps venv
	$(BIN)/python bench/run.py

bench-quick: deps venv
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
