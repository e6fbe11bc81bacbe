# Two entry points for a fresh machine: `make demo` and `make test`.
# Each step leaves a stamp in .venv so re-running installs nothing twice.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.stamps

.PHONY: demo test test-quick setup bench clean

setup: $(STAMP)/lava

$(STAMP)/venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	mkdir -p $(STAMP) && touch $@

# torch first: the pinned version is the CPU wheel on disk; a looser pin
# would pull a multi-GB CUDA build.
$(STAMP)/torch: $(STAMP)/venv
	$(PIP) install --quiet torch==2.13.0
	touch $@

$(STAMP)/package: $(STAMP)/torch pyproject.toml
	$(PIP) install --quiet -e ".[test]"
	touch $@

# Lava declares Python <3.11 and pins old torch/numpy: `spikedeploy install-lava`
# installs it without its declared dependencies, plus what it really needs (the
# same command users run; see README).
$(STAMP)/lava: $(STAMP)/package
	$(VENV)/bin/spikedeploy install-lava --quiet
	touch $@

# Test-only tools: neurobench and sinabs for the energy cross-checks; sinabs,
# Norse and Rockpool as foreign NIR producers; nengo-loihi for the Loihi core-split
# cross-check of the resource map. sinabs pins nir<=1.0.4,
# neurobench pulls torchaudio/numba, Norse pulls a CUDA torch: all go in
# without their dependencies (their real needs are listed), so torch, numpy
# and nir stay as installed above.
$(STAMP)/crosscheck: $(STAMP)/lava
	$(PIP) install --quiet --no-deps neurobench==2.3.0 sinabs==3.1.3
	$(PIP) install --quiet tqdm pbr nirtorch==2.6 matplotlib
	$(PIP) install --quiet --no-deps norse==1.1.0 rockpool==3.1.0
	$(PIP) install --quiet --no-deps nengo==4.1.0 nengo-loihi==1.1.0
	touch $@

# Debian's Chromium for the report's headless-browser test (skips, saying so, where apt-get
# cannot install it).
$(STAMP)/browser:
	command -v chromium >/dev/null 2>&1 || apt-get install -y -q chromium >/dev/null 2>&1 || \
		echo "no chromium: tests/energy/test_html_in_browser.py will skip"
	mkdir -p $(STAMP) && touch $@

demo: setup
	$(VENV)/bin/spikedeploy demo

test: setup $(STAMP)/crosscheck $(STAMP)/browser
	$(PY) -m pytest -q

test-quick: setup $(STAMP)/crosscheck
	$(PY) -m pytest -q -m "not lava and not slow"

bench: setup $(STAMP)/crosscheck     # Norse is one of the peers bench_peers.py times
	$(PY) benchmarks/bench_peers.py
	$(PY) benchmarks/bench_peers.py --memory --batches 1024
	$(PY) benchmarks/bench_simulators.py
	$(PY) benchmarks/bench_scale_out.py
	$(PY) benchmarks/bench_lava_readback.py
	$(PY) benchmarks/bench_demo.py

clean:
	rm -rf $(VENV) spikedeploy_out
