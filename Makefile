# entitylabel — every target installs what it needs into .venv first (a fresh machine needs only python3).
PYTHON ?= python3
# CPU wheel on these machines; on a GPU machine `make setup TORCH=torch` takes your CUDA build.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?=
MODEL ?=
OUT ?=
RUN_FLAGS = $(if $(DATA),--data $(DATA)) $(if $(MODEL),--model $(MODEL)) $(if $(OUT),--out $(OUT))

.PHONY: setup test demo bench lint browser-deps tno roadscene m3fd msrs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch in the same pip command as the rest, or a dependency drags in a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[test]"
	touch $@

# Headless Chromium + ChromeDriver from Debian for the review-page browser test (skipped where absent).
browser-deps:
	@if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium + chromium-driver (Debian)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	    || echo "WARNING: apt-get could not install chromium: the browser test will be skipped"; \
	else echo "chromium/chromedriver not installed and not root: the browser test will be skipped"; fi

test: setup browser-deps
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/entitylabel run pipelines/demo.yaml $(RUN_FLAGS)

# bench_fusion_screen.py is a pack / run / analyse tool for recipe screens (a GPU machine), run by hand
BENCHES = $(filter-out tests/bench/bench_fusion_screen.py,$(wildcard tests/bench/bench_*.py))

bench: setup
	@set -e; for f in $(BENCHES); do echo "== $$f"; $(BIN)/python $$f; done

lint: setup
	$(BIN)/ruff check entitylabel tests
	$(BIN)/ruff format --check entitylabel tests

tno roadscene m3fd msrs: setup
	$(BIN)/entitylabel run pipelines/$@.yaml $(RUN_FLAGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
