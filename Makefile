# fer_kaggle: the pipeline as make targets. Every target installs the package first.
#   make demo                      synthetic data -> prepare -> folds -> train-all -> ensemble,
#                                  submission, compare (no download needed)
#   make folds DATA=data/raw K=5   prepare the Kaggle files and write K folds
#   make train-all                 train every model of configs/experiment.yaml on every fold
#   make tune MODEL=resnet_seed TRIALS=20   search configs/models/MODEL.yaml's hyperparameters;
#                                  the best go to configs/tuned/MODEL.yaml, which train-all uses
#   make ensemble submission compare   blend the trained models, write Kaggle CSVs to submissions/,
#                                  print the local leaderboard (reports/compare.md); METHOD=weighted
#   make analyze report            figures of the best single model (MODEL=, FOLD=, LAYER=, FACE=)
#                                  into reports/analysis/MODEL/, then the page reports/index.html
#   make fer2013-cpu               the CPU profile (configs/experiment-cpu.yaml) on the real FER2013,
#                                  end to end, about 2 hours on 2 cores; resumable
#   make bench                     training and inference speed of the model zoo
#   make test                      the test suite

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FER    := $(BIN)/fer-kaggle

DATA     ?= data/raw
PREPARED ?= data/prepared
FOLDS    ?= folds/folds.csv
K        ?= 5
SEED     ?= 0

EXPERIMENT ?= configs/experiment.yaml
EPOCHS     ?=
LIMIT      ?=
DEVICE     ?= auto
TRAIN_OPTS := $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(LIMIT),--limit $(LIMIT)) --device $(DEVICE)

MODEL     ?= resnet_seed
TRIALS    ?= 20
STORAGE   ?=
TUNE_OPTS := --trials $(TRIALS) $(if $(STORAGE),--storage $(STORAGE))

METHOD      ?= weighted
SUBMISSIONS ?= submissions

# analyze: MODEL picks the run only when given on the command line or in the environment, because
# its default above is tune's; without it the run with the best OOF accuracy is analysed.
FOLD  ?=
LAYER ?=
FACE  ?=
ANALYZE_OPTS := $(if $(filter command line environment,$(origin MODEL)),--model $(MODEL)) \
	$(if $(FOLD),--fold $(FOLD)) $(if $(LAYER),--layer $(LAYER)) $(if $(FACE),--face-id $(FACE))

DEMO_DATA     := data/synth/fer2013.csv
DEMO_PREPARED := data/demo
DEMO_FOLDS    := folds/demo.csv

.PHONY: setup synth prepare folds train-all tune ensemble submission compare analyze report demo fer2013-cpu bench test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"
	touch $@

synth: $(DEMO_DATA)

$(DEMO_DATA): | setup
	$(FER) synth --out $(dir $@) --n-train 2000 --n-public 400 --n-private 400

prepare: setup
	$(FER) prepare $(DATA) --out $(PREPARED)

folds: prepare
	$(FER) folds --data $(PREPARED) --k $(K) --seed $(SEED) --out $(FOLDS)

train-all: setup
	$(FER) train-all --experiment $(EXPERIMENT) $(TRAIN_OPTS)

tune: setup
	$(FER) tune --model $(MODEL) --data $(PREPARED) --folds $(FOLDS) $(TUNE_OPTS) $(TRAIN_OPTS)

ensemble: setup
	$(FER) ensemble --experiment $(EXPERIMENT) --method $(METHOD)

submission: setup
	$(FER) submission --experiment $(EXPERIMENT) --out $(SUBMISSIONS)

compare: setup
	$(FER) compare --experiment $(EXPERIMENT) --submissions $(SUBMISSIONS)

analyze: setup
	$(FER) analyze --experiment $(EXPERIMENT) $(ANALYZE_OPTS)

report: setup
	$(FER) report --experiment $(EXPERIMENT)

demo: $(DEMO_DATA)
	$(MAKE) --no-print-directory folds DATA=$(DEMO_DATA) PREPARED=$(DEMO_PREPARED) FOLDS=$(DEMO_FOLDS) K=3
	$(MAKE) --no-print-directory train-all EXPERIMENT=configs/demo.yaml
	$(MAKE) --no-print-directory ensemble submission compare EXPERIMENT=configs/demo.yaml SUBMISSIONS=submissions/demo
	$(MAKE) --no-print-directory analyze report EXPERIMENT=configs/demo.yaml

fer2013-cpu: setup
	bash benchmarks/fer2013-cpu/run.sh

bench: setup
	$(FER) bench

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf data/synth data/demo data/prepared folds/*.csv folds/*.json runs submissions/*.csv submissions/*.json reports
