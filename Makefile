# litquant: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The full MNIST for tests and benchmarks, when it lies beside the checkout; the product itself finds or
# downloads its data (see README).
SHARED_DATA ?= $(abspath ../shared/data)
# Test processes running side by side (pytest-xdist); each uses one thread.
TEST_WORKERS ?= 2
DATA_ARG := $(if $(wildcard $(SHARED_DATA)/MNIST/raw/*.gz),--data.data_dir $(SHARED_DATA),)
# What make demo says after using that folder: how every other command finds it too.
ifneq ($(DATA_ARG),)
DATA_HINT = echo "The demo read MNIST from $(SHARED_DATA); its checkpoints and models remember that folder."; \
	echo "For every other command, set it once in your shell (make shell does so):"; \
	echo "  export LITQUANT_DATA=$(SHARED_DATA)"
endif

.PHONY: demo shell test lint bench bench-reproduce clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/litquant demo --out demo $(DATA_ARG) $(DEMO_ARGS)
	@echo
	@echo "Done: the report is demo/report.md. litquant is installed in $(VENV); to type litquant commands:"
	@echo "  source $(VENV)/bin/activate     (or: make shell)"
	@$(DATA_HINT)
	@echo "Then try:"
	@echo "  litquant --help"
	@echo "  litquant evaluate demo/ptq.pt2"
	@echo "  litquant predict --model demo/ptq.pt2 demo/samples"
	@echo "  litquant fit --trainer.max_epochs 3"
	@echo "The README's Tour and docs/index.md walk through the rest."

# A shell with .venv on PATH (litquant, python, pytest), and $LITQUANT_DATA at the data make demo used;
# leave it with exit.
shell: $(STAMP)
	@echo "litquant is on PATH in this shell; type exit to leave it."
	@VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" \
		$(if $(DATA_ARG),LITQUANT_DATA="$${LITQUANT_DATA:-$(SHARED_DATA)}") $${SHELL:-bash}

test: $(STAMP)
	LITQUANT_TEST_DATA=$(SHARED_DATA) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/run_quick.py $(DATA_ARG)

# Three seeds of the 15-epoch reproduction, one after the other (add --workers N on a machine with cores to
# spare: two 1-thread workers on 2 cores trained 3x slower than one 2-thread run).
REPRODUCE_ARGS ?= --seeds 42 43 44

bench-reproduce: $(STAMP)
	$(BIN)/python benchmarks/reproduce_tutorial_table.py $(DATA_ARG) $(REPRODUCE_ARGS)

clean:
	rm -rf $(VENV) demo runs .pytest_cache
