# `make demo` and `make test` each create .venv if missing and install the project with the pinned
# constraints (torch 2.13.0 CPU build; see constraints.txt), then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.taskgrouping-installed
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest

# A small real search: taskonomy-mini (rendered on first use, ~10 s), the paper's five tasks, the early-stopping
# approximation (36 trainings at 20% of the schedule) on a local Ray; reruns reuse the stored trainings.
demo: install
	$(BIN)/taskgroup search --dataset taskonomy-mini --tasks s,d,n,k,e --approx esa --budgets 1:5:0.5 \
		--finalize 2 --db sqlite:///demo.db -o demo-grouping.json
	$(BIN)/taskgroup export "$$($(BIN)/python -c 'import json; print(json.load(open("demo-grouping.json"))["job_id"])')" \
		--budget 2 -o demo-bundle.zip --db sqlite:///demo.db

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
