# Every target bootstraps its own virtual environment in .venv from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHECK  := $(VENV)/.installed-cuda-check
PYTEST := $(PY) -m pytest --hypothesis-profile=ci -n 2 -q

# One BLAS thread per process: our matrices are small, and two OpenBLAS threads per process on
# two cores (pytest runs two workers) made them up to 20x slower in measurements here.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
# minidiff's own threads (minidiff/parallel.py) for the long single-process jobs: every core.
# The tests stay at one thread per worker, as pytest already runs two workers.
THREADS ?= $(shell $(PYTHON) -c "import os; print(os.cpu_count() or 1)")

.PHONY: help venv test test-gpu test-slow book exercises lint bench bench-gpu bench-dist demo study toy clean

help:
	@echo "make demo       run the main example (see README)"
	@echo "make test       run the whole test suite on the CPU"
	@echo "make test-gpu   run the same suite on CuPy (MINIDIFF_DEVICE=cuda)"
	@echo "make test-slow  run the heavy checks kept out of 'make test'"
	@echo "make book       build the Jupyter Book into book/_build/html"
	@echo "make exercises  regenerate the student notebooks from exercises/src, then run each"
	@echo "                 both ways (every student check fails, every solution check passes)"
	@echo "make lint       ruff"
	@echo "make bench      speed and memory benchmarks (writes benchmarks/results/)"
	@echo "make bench-gpu  the same on a CUDA GPU against PyTorch CUDA (writes gpu.md)"
	@echo "make bench-dist data-parallel training over 2 MPI processes and the all-reduce's"
	@echo "                 cost model (writes cpu_distributed.md)"
	@echo "make study NAME=baseline [ARGS='--seconds 480']  train and measure a named variant"
	@echo "                 (writes studies/NAME/; make study alone lists the studies)"
	@echo "make toy        2-D diffusion: DDPM vs DDIM vs flow matching (writes runs/toy/)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,book,dist]"
	touch $@

# The tests compile every CUDA kernel with NVRTC, which needs no GPU: CuPy and NVRTC (about
# 230 MB to download) come with the test targets only, and MINIDIFF_CUDA_CHECK=1 makes their
# absence a failure rather than a skip.
$(CHECK): $(STAMP)
	$(PY) -m pip install -q -e ".[cuda-check]"
	touch $@

test: $(CHECK)
	MINIDIFF_NUM_THREADS=1 MINIDIFF_CUDA_CHECK=1 $(PYTEST)

test-gpu: $(CHECK)
	$(PY) -m pip install -q -e ".[gpu]" || true
	MINIDIFF_NUM_THREADS=1 MINIDIFF_CUDA_CHECK=1 MINIDIFF_DEVICE=cuda $(PYTEST)

test-slow: $(STAMP)
	MINIDIFF_NUM_THREADS=1 $(PYTEST) -m slow

book: $(STAMP)
	rm -rf book/_build
	MINIDIFF_NUM_THREADS=$(THREADS) $(VENV)/bin/jupyter-book build book -W --keep-going

exercises: $(STAMP)
	$(PY) -m exercises.build
	MINIDIFF_NUM_THREADS=1 $(PY) -m exercises.run

lint: $(STAMP)
	$(VENV)/bin/ruff check minidiff tests exercises benchmarks

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.run

bench-gpu: $(STAMP)
	$(PY) -m pip install -q -e ".[bench,gpu]" || true
	$(PY) -m benchmarks.run gpu

bench-dist: $(STAMP)
	$(PY) -m benchmarks.run dist

demo: $(STAMP)
	MINIDIFF_NUM_THREADS=$(THREADS) $(PY) -m minidiff demo --out runs/demo

study: $(STAMP)
	MINIDIFF_NUM_THREADS=$(THREADS) $(PY) -m minidiff study $(if $(NAME),$(NAME) $(ARGS),--list)

toy: $(STAMP)
	$(PY) -m minidiff toy --out runs/toy

clean:
	rm -rf book/_build runs .pytest_cache .hypothesis
