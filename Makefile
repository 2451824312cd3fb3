# fer_kaggle: the pipeline as make targets. Every target installs the package first.
#   make demo                      synthetic data -> prepare -> folds -> train-all (no download needed)
#   make folds DATA=data/raw K=5   prepare the Kaggle files and write K folds
#   make train-all                 train every model of configs/experiment.yaml on every fold
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

DEMO_DATA     := data/synth/fer2013.csv
DEMO_PREPARED := data/demo
DEMO_FOLDS    := folds/demo.csv

.PHONY: setup synth prepare folds train-all demo bench test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"
	touch $@

synth: $(DEMO_DATA)

$(DEMO_DATA): | setup
	$(FER) synth --out $(dir $@)

prepare: setup
	$(FER) prepare $(DATA) --out $(PREPARED)

folds: prepare
	$(FER) folds --data $(PREPARED) --k $(K) --seed $(SEED) --out $(FOLDS)

train-all: setup
	$(FER) train-all --experiment $(EXPERIMENT) $(TRAIN_OPTS)

demo: $(DEMO_DATA)
	$(MAKE) --no-print-directory folds DATA=$(DEMO_DATA) PREPARED=$(DEMO_PREPARED) FOLDS=$(DEMO_FOLDS)
	$(MAKE) --no-print-directory train-all EXPERIMENT=configs/demo.yaml

bench: setup
	$(FER) bench

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf data/synth data/demo data/prepared folds/*.csv folds/*.json runs submissions/*.csv reports
