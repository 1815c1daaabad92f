#!/usr/bin/env bash
# train-default.sh — reproduces the shipped model (docs/MODEL.md) from the data
# in reach: ../shared/data (DFDC, FaceForensics++ crops, FFHQ) and the
# FaceForensics++ c23 videos of a FaceForensics++-layout folder (FFPP_ROOT:
# original_sequences/youtube/c23/videos, manipulated_sequences/<Method>/c23/videos).
#
#   scripts/train-default.sh FFPP_ROOT RUNS [PRESET]
#
# Steps (each resumable: run the script again after an interruption):
#   1. lvnet prepare: 16 face crops per FaceForensics++ video, with landmarks
#      (RUNS/ffpp-prep).
#   2. lvnet train --preset PRESET (default: default) on the training side of
#      every source split (subset=train: DFDC by original video,
#      FaceForensics++ by source pair), plus self-blended FFHQ and
#      FaceForensics++ reals (exact masks train the localisation map).
#   3. lvnet calibrate on the validation sides: temperature and threshold.
#   4. lvnet eval per validation set into RUNS/eval/*.json and a report.
# Then copy RUNS/$NAME/calibrated.safetensors to shipped/lvnet-default.safetensors.
#
# On a GPU with the whole of FaceForensics++, the same command with PRESET=paper
# (and DEVICE=cuda:0) trains the paper's network at 299 pixels.
set -euo pipefail
cd "$(dirname "$0")/.."
FFPP=${1:?usage: scripts/train-default.sh FFPP_ROOT RUNS [PRESET]}
RUNS=${2:?usage: scripts/train-default.sh FFPP_ROOT RUNS [PRESET]}
PRESET=${3:-default}
NAME=${NAME:-$PRESET}
S=${LVNET_SHARED:-../shared}/data
DEVICE=${DEVICE:-cpu}
LVNET=${LVNET:-./bin/lvnet}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} # libtorch's threads yield when the data loaders need the cores
mkdir -p "$RUNS"

[ -n "${SKIP_PREPARE:-}" ] || "$LVNET" prepare "$FFPP" --out "$RUNS/ffpp-prep" --frames 16 --size 256 --layout index

TRAIN="dfdc:$S/dfdc-faces?subset=train"
TRAIN+="+index:$RUNS/ffpp-prep?subset=train"
TRAIN+="+$S/ffpp-crops?subset=train"
TRAIN+="+sbi:$S/ffhq?subset=train&reals=1"
TRAIN+="+sbi:$RUNS/ffpp-prep?subset=train"
VAL="dfdc:$S/dfdc-faces?subset=val+index:$RUNS/ffpp-prep?subset=val+$S/ffpp-crops?subset=val"

RESUME=""
[ -f "$RUNS/$NAME/last.optim.safetensors" ] && RESUME=--resume
CMD=("$LVNET" train --preset "$PRESET" ${EPOCHS:+--epochs "$EPOCHS"} --device "$DEVICE" --data "$TRAIN" --val "$VAL" --out "$RUNS/$NAME" $RESUME)
"${CMD[@]}"

CAL="$VAL+sbi:$S/ffhq?subset=val&reals=1"
"$LVNET" calibrate --model "$RUNS/$NAME/best.safetensors" --val "$CAL" --out "$RUNS/$NAME/calibrated.safetensors" \
  --data-note "$TRAIN" --command "scripts/train-default.sh FFPP_ROOT RUNS $PRESET (${CMD[*]})" \
  --commit "$(git describe --always --dirty 2>/dev/null || echo unknown)" > "$RUNS/$NAME/calibration.json"

mkdir -p "$RUNS/eval"
M="$RUNS/$NAME/calibrated.safetensors"
ev() { "$LVNET" eval --model "$M" --json --data "$2" > "$RUNS/eval/$1.json"; echo "$1: $(cat "$RUNS/eval/$1.json")"; }
ev dfdc "dfdc:$S/dfdc-faces?subset=val"
ev ffpp-videos "index:$RUNS/ffpp-prep?subset=val"
for m in Deepfakes Face2Face FaceSwap; do
  # one method's fakes against the validation reals
  ev "ffpp-$m" "$(printf 'index:%s/ffpp-prep?subset=val' "$RUNS")&method=$m"
done
ev ffpp-crops "$S/ffpp-crops?subset=val"
ev ffhq-sbi "sbi:$S/ffhq?subset=val&reals=1"
ev utkface-sbi "sbi:$S/utkface?subset=val&reals=1&limit=400"
"$LVNET" eval --model "$M" --data "$VAL" --report "$RUNS/eval/report" > /dev/null
echo "model: $M; report: $RUNS/eval/report/index.html"
