#!/usr/bin/env bash
# Run the CPU profile (configs/experiment-cpu.yaml) on the real FER2013, end to end, and
# append each stage's wall time to stages.csv beside this script.
#
#   bash benchmarks/fer2013-cpu/run.sh        # from the repository root, after `make setup`
#
# Rerun it after an interruption: prepare and folds are skipped when their outputs exist,
# and train-all continues the interrupted fold from its last epoch and skips finished ones.
# FER_KAGGLE_DATA overrides the data folder (default ../shared/data/fer2013).
set -euo pipefail
cd "$(dirname "$0")/../.."

RECORD=benchmarks/fer2013-cpu
FER=.venv/bin/fer-kaggle
DATA=${FER_KAGGLE_DATA:-../shared/data/fer2013}
EXPERIMENT=configs/experiment-cpu.yaml
STAGES=$RECORD/stages.csv

[[ -f $STAGES ]] || echo "started_utc,stage,seconds,exit_code" > "$STAGES"

stage() {
  local name=$1
  shift
  local started rc=0 t0=$SECONDS
  started=$(date -u +%FT%TZ)
  echo "== $name: $*"
  "$@" || rc=$?
  echo "$started,$name,$((SECONDS - t0)),$rc" >> "$STAGES"
  return "$rc"
}

if [[ -f data/prepared/manifest.json ]]; then
  echo "== prepare: data/prepared exists, skipped"
else
  stage prepare "$FER" prepare "$DATA" --out data/prepared
fi
if [[ -f folds/folds.csv ]]; then
  echo "== folds: folds/folds.csv exists, skipped"
else
  stage folds "$FER" folds --data data/prepared --k 5 --seed 0 --out folds/folds.csv
fi
stage train-all "$FER" train-all --experiment "$EXPERIMENT"
stage ensemble "$FER" ensemble --experiment "$EXPERIMENT" --method weighted
stage submission "$FER" submission --experiment "$EXPERIMENT" --out "$RECORD/submissions"
stage compare "$FER" compare --experiment "$EXPERIMENT" --submissions "$RECORD/submissions" --reports "$RECORD"
stage analyze "$FER" analyze --experiment "$EXPERIMENT" --reports "$RECORD"
