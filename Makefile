# Set-up and everyday commands. `make test` and `make demo` install what they need on a fresh
# Debian/Ubuntu machine (apt packages, then a virtual environment in .venv). Python 3.11 or newer.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TORCH_VERSION := 2.13.0
# Where torch comes from. Empty: the default index, which on PyPI is a CUDA build of several GB (the
# build machines of this project serve a CPU build of the same pin). On a laptop without a GPU use
# PyTorch's CPU wheels: make deps TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
DEMO_MODEL := tests/fixtures/parakeet-tdt-digits.nemo
DEMO_AUDIO := tests/fixtures/sample-digits.ogg
DEMO_DIARIZER := tests/fixtures/sortformer-digits.nemo
# The model `make serve` serves: the bundled one; e.g. make serve SERVE_MODEL=nvidia/parakeet-tdt-0.6b-v3
SERVE_MODEL ?= $(DEMO_MODEL)

.PHONY: python-version system-deps deps test lint demo serve reference

python-version:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "Python 3.11 or newer is needed; $(PYTHON) is $$($(PYTHON) -V 2>&1). Install one and run make PYTHON=python3.11 ..." >&2; \
	  exit 1; }

system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v espeak-ng >/dev/null \
	   || ! $(PYTHON) -c "import ensurepip, venv" 2>/dev/null; then \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q ffmpeg espeak-ng python3-venv python3-pip; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned, from TORCH_INDEX when given: NeMo would otherwise pick a torch of its own.
	$(PY) -m pip install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

deps: python-version system-deps $(VENV)/.installed

test: deps
	$(PY) -m ruff check .
	$(PY) -m pytest

reference: deps
	$(PY) -m tools.reference

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

demo: deps
	PARAKEET_MODEL=$(DEMO_MODEL) $(PY) -m tools.transcribe_file $(DEMO_AUDIO) --timestamps

# The OpenAI-compatible HTTP server on PORT (default 8000), with the bundled models (ASR and, for the
# bundled ASR model, the diarizer) unless SERVE_MODEL names another.
serve: deps
	PARAKEET_MODEL=$(SERVE_MODEL) $(if $(filter $(DEMO_MODEL),$(SERVE_MODEL)),DIARIZER_MODEL=$(DEMO_DIARIZER)) \
	  $(PY) server.py
