# Quickstart: `make demo` (the whole pipeline on Amazon 2014 Beauty) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= beauty
# Real data: SEMID_DATA_DIR when set, else ../shared/data when it exists, else data/ (downloaded).
SEMID_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
export SEMID_DATA_DIR

.PHONY: install demo test lint bench compare rank-study results results-compare results-pipeline results-curves experiments report report-inputs clean

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

# `semid run` with its defaults on Beauty, one seed (→ results/beauty/tiger-pipeline.json): needs a committed tree
results-pipeline: install
	$(BIN)/semid run --dataset beauty --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty-main
	$(BIN)/semid evaluate --out runs/beauty-main --record results --setting pipeline

# every record under results/ (results/README.md lists them), then the README's tables
results: results-compare results-pipeline rank-study
	$(BIN)/semid results --update-readme README.md

# the study's recipes (configs/experiments/*.yaml) → results/experiments/<recipe>/; finished cells are reused
RECIPES ?= ids-vs-random id-methods sid-gru-search sid-gru-schedule sid-gru-ndcg sid-gru-cf sid-gru-ensemble sid-gru-ensemble-test ids-categories ids-categories-tiger ids-beauty-tiger tiger-levers-categories tiger-cpu-beauty tiger-epochs tiger-epochs-test tiger-levers tiger-width-test tiger-long tiger-long-test tiger-reencode collisions codebooks codebooks-tiger levels history beam beam-tiger cold-start cold-start-codes categories-office categories-scientific categories-sports categories-beauty
experiments: install
	for r in $(RECIPES); do $(BIN)/semid experiment $$r --data-dir "$(SEMID_DATA_DIR)" --record results || exit 1; done

# docs/results.md (+ docs/img/results/) from the run folders that exist and the records under results/:
# runs/beauty (`make demo`, or the comparison of `make results-compare`), runs/beauty-ids and
# runs/beauty-serve (`make report-inputs`), runs/office-temporal (`make rank-study`)
REPORT_RUNS = runs/beauty runs/beauty-ids runs/office-temporal runs/beauty-serve
report: install
	$(BIN)/semid report $(wildcard $(REPORT_RUNS)) results --out docs --name results --title 'semid results' --format md --id-figures '*-3x256'

# the report's own run folders, by the commands their manifests name (finished stages are reused;
# about 1.5 h on a 2-core CPU): every ID method at 3 × 256 with its quality report, each with
# collisions re-encoded to stay at 3 codes too (runs/beauty-ids), and a run with TIGER and SASRec-CE
# evaluated and compared user by user (runs/beauty-serve, also what `semid serve` and the load test use);
# one thread per training, as in the comparison: the same numbers on any core count, and no
# oversubscription beside other jobs (two threads beside two busy cells trained TIGER at 390 examples/s)
ID_METHODS ?= random rqkmeans rqkmeans_balanced rqvae rqvae_cf
report-inputs: install
	$(BIN)/semid prepare --dataset $(DATASET) --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty-ids
	$(BIN)/semid embed --out runs/beauty-ids
	for m in $(ID_METHODS); do \
	  $(BIN)/semid ids train --out runs/beauty-ids method=$$m && $(BIN)/semid ids analyze --out runs/beauty-ids method=$$m || exit 1; \
	  [ $$m = random ] || { $(BIN)/semid ids train --out runs/beauty-ids method=$$m collisions=reencode name=$$m-3x256-l && \
	    $(BIN)/semid ids analyze --out runs/beauty-ids name=$$m-3x256-l tsne_sample=0; } || exit 1; \
	done
	$(BIN)/semid run --dataset $(DATASET) --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty-serve tiger.threads=1
	$(BIN)/semid train sasrec --out runs/beauty-serve max_epochs=8 val_every=2 val_users=2000 threads=1
	$(BIN)/semid evaluate --out runs/beauty-serve model=sasrec-ce
	$(BIN)/semid analyze runs/beauty-serve --models tiger,sasrec-ce --users 20 --seed 0

# time to quality on Beauty (results/beauty/time_to_quality.{png,json}): validation Recall@10 against
# training thread-minutes of TIGER (the cpu preset, 40 epochs and cpu-long), SID-GRU (one network and
# an ensemble of 3) and SASRec-CE, one thread each; the TIGER and SID-GRU models are the seed-0 cells
# of `make experiments` (recipes tiger-epochs, tiger-cpu-beauty, sid-gru-ndcg, sid-gru-ensemble),
# SASRec-CE is trained here at the comparison's chosen point
M = runs/beauty/models
results-curves: install
	$(BIN)/semid prepare --dataset beauty --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty-curves
	test -f runs/beauty-curves/models/sasrec-ce/config.json || $(BIN)/semid train sasrec --out runs/beauty-curves \
	  loss=ce lr=0.003 max_epochs=30 val_every=2 patience=3 val_users=10000 threads=1 seed=0
	$(BIN)/semid curves runs/beauty-curves/models/sasrec-ce "$(M)/sid-gru@sid-gru-ndcg.max_epochs=45,label_smoothing=0.0,max_items=20" \
	  "$(M)/sid-gru@sid-gru-ensemble.max_epochs=45,members=3" \
	  "$(M)/tiger@tiger-epochs.max_epochs=26" "$(M)/tiger@tiger-cpu-beauty" "$(M)/tiger@tiger-epochs.max_epochs=80" \
	  --label "SASRec-CE (lr 0.003, early stopping)" --label "SID-GRU on rqvae_cf IDs, 45 epochs" \
	  --label "SID-GRU ensemble of 3 (45 epochs each)" \
	  --label "TIGER cpu preset (26 epochs)" --label "TIGER cpu, 40 epochs" --label "TIGER cpu-long (80 epochs)" --record results

# the SID ranking study on Beauty (held-out items) and Office (temporal split) → results/*/rank_study.json
rank-study: install
	$(BIN)/semid rank study --config configs/rank_beauty.yaml --data-dir "$(SEMID_DATA_DIR)" --out runs/beauty-holdout --results results
	$(BIN)/semid rank study --config configs/rank_office.yaml --data-dir "$(SEMID_DATA_DIR)" --out runs/office-temporal --results results

bench: install
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf $(VENV) runs .pytest_cache
