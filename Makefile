# Set-up and everyday commands. `make test` and `make demo` install what they need on a fresh
# Debian/Ubuntu machine (apt packages, then a virtual environment in .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TORCH_VERSION := 2.13.0
DEMO_MODEL := tests/fixtures/parakeet-tdt-digits.nemo
DEMO_AUDIO := tests/fixtures/sample-digits.ogg

.PHONY: system-deps deps test lint demo

system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v espeak-ng >/dev/null \
	   || ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q ffmpeg espeak-ng python3-venv python3-pip; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first: an unpinned torch would pull gigabytes of CUDA packages.
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

deps: system-deps $(VENV)/.installed

test: deps
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

demo: deps
	PARAKEET_MODEL=$(DEMO_MODEL) $(PY) -m tools.transcribe_file $(DEMO_AUDIO) --timestamps
