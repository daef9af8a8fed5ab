# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# torch==2.13.0 is installed first: on the project's machines that version is a CPU build on local
# disk, while an open range would pull a multi-GB CUDA build. The project itself asks for torch>=2.3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.galaxygen-installed
TORCH  := torch==2.13.0

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/galaxygen demo --out demo-out --overwrite  # replaces only a previous demo (recorded in .galaxygen-outputs.json)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
