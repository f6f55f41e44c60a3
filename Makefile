# Quickstart: `make demo` (the whole pipeline on Amazon 2014 Beauty) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= beauty
# Real data: SEMID_DATA_DIR when set, else ../shared/data when it exists, else data/ (downloaded).
SEMID_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
export SEMID_DATA_DIR

.PHONY: install demo test lint bench compare rank-study results results-compare experiments report clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: install
	$(BIN)/semid run --dataset $(DATASET) --data-dir "$(SEMID_DATA_DIR)" --download-missing

test: install
	$(BIN)/python -m pytest -q

# ruff: the linter and import-order check configured in pyproject.toml
lint: install
	$(BIN)/ruff check src tests benchmarks

# every model of the comparison table on Beauty (→ runs/beauty/compare/comparison.md), not recorded
compare: install
	$(BIN)/semid compare --config configs/compare_beauty.yaml --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty

# the recorded comparison (→ results/beauty/*.json, comparison.md): needs a committed tree
results-compare: install
	$(BIN)/semid compare --config configs/compare_beauty.yaml --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty --record results

# every record under results/ (results/README.md lists them), then the README's tables
results: results-compare rank-study
	$(BIN)/semid results --update-readme README.md

# the study's recipes (configs/experiments/*.yaml) → results/experiments/<recipe>/; finished cells are reused
RECIPES ?= ids-vs-random id-methods sid-gru-search sid-gru-schedule sid-gru-cf collisions codebooks codebooks-tiger levels history beam cold-start categories
experiments: install
	for r in $(RECIPES); do $(BIN)/semid experiment $$r --data-dir "$(SEMID_DATA_DIR)" --record results || exit 1; done

# docs/results.md (+ docs/img/results/) from the current runs and records
report: install
	$(BIN)/semid report runs/beauty runs/beauty-ids runs/office-temporal runs/beauty-serve results --out docs --name results --title 'semid results' --format md

# the SID ranking study on Beauty (held-out items) and Office (temporal split) → results/*/rank_study.json
rank-study: install
	$(BIN)/semid rank study --config configs/rank_beauty.yaml --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty-holdout --results results
	$(BIN)/semid rank study --config configs/rank_office.yaml --data-dir "$(SEMID_DATA_DIR)" --out runs/office-temporal --results results

bench: install
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf $(VENV) runs .pytest_cache
