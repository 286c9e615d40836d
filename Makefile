# make run: the app at http://127.0.0.1:8501 ; make test: the whole suite.
# MALLOC_ARENA_MAX=2: glibc's per-thread memory arenas kept the server's memory growing after sessions closed
# (benchmarks/load.py: after-close RSS flat at 955-1021 MiB over five rounds with it, rising without it).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test test-orders lint bench train-shortrun train-evaluator clean-venv

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	MALLOC_ARENA_MAX=2 $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

test: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m pytest

# The suite with torch summing in another order (oneDNN off, 1 thread in tests, 2 in the app): what fails here
# compares a live value with a stored one too tightly for another CPU (tests/conftest.py, tests/tolerances.py).
test-orders: $(VENV)/.dev
	EBMVIZ_TEST_MKLDNN=0 EBMVIZ_TEST_THREADS=1 EBMVIZ_TORCH_THREADS=2 $(PY) -m pytest

lint: $(VENV)/.dev
	$(PY) -m ruff check .

bench: $(VENV)/.runtime
	$(PY) benchmarks/sampler.py
	$(PY) benchmarks/quality.py

train-evaluator: $(VENV)/.runtime
	$(PY) -m training evaluator

train-shortrun: $(VENV)/.runtime
	$(PY) -m training shortrun

clean-venv:
	rm -rf $(VENV)
