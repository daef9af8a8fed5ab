#!/usr/bin/env bash
# One prepared check of the diffusion model for a lent CUDA GPU (issue 16; docs/diffusion.md): the
# issue's set, a VDM trained on the GPU for a fixed time, and bench_vdm's figures with their peers.
#   1. simulate the issue's set: 5 CV boxes of 128^3 particles on 64^3 voxels, 25 Mpc/h, COLA 10 and PM
#      20 steps, tng-like (`galaxygen simulate`; CV_4 is held out by bench_vdm);
#   2. a probe: bench_vdm trains the two-phase network (two-phase-small.yaml, its own schedule: the
#      cascade's rates and the Poisson peer), fits the HOD and trains the VDM 20 steps, whose logged
#      throughput gives the VDM steps per second on this GPU;
#   3. the VDM (GPU_VDM_CONFIG, default vdm-2d: slices normal to z, width 48, 4 levels; or vdm-full)
#      as a cascade on the two-phase rates (`baseline: point`) for 0.85 x the steps that fit in
#      GPU_VDM_TRAIN_S seconds (default 420: the issue's <= 8 minutes; validation and checkpoints
#      take the rest), warm-up 5 % of them, EMA decay
#      0.999 (the config's 0.9999 would not move in a few thousand steps), then 4 samples of the
#      held-out box with GPU_VDM_SAMPLE_STEPS ancestral steps (default 100) and bench_vdm's figures:
#      counts, P(k) band, r(k) against the HOD, PIT, recall/precision against the Poisson peer.
# The JSON of each bench_vdm run is printed; the exit status is that of the worst part.
#
# Usage: benchmarks/gpu_vdm.sh              (on the GPU machine, from anywhere; about 12 minutes)
# CPU smoke mode, to know the script runs where there is no GPU (tiny boxes and budget):
#   GPU_VDM_DEVICE=cpu GPU_VDM_SMOKE=1 benchmarks/gpu_vdm.sh
set -uo pipefail
source "$(dirname "$0")/gpu_common.sh"  # PY, the repository root, require_cuda
DEVICE=${GPU_VDM_DEVICE:-cuda}
CONFIG=${GPU_VDM_CONFIG:-vdm-2d}
BUDGET=${GPU_VDM_TRAIN_S:-420}
SAMPLE_STEPS=${GPU_VDM_SAMPLE_STEPS:-100}
WORK=${GPU_VDM_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_vdm.XXXXXX")}
PARTICLES=128 GRID=64 PROBE=20
SIM=(--cola-steps 10 --pm-steps 20) VDM_SET=() TP_SET=()
if [ "${GPU_VDM_SMOKE:-0}" = 1 ]; then
  PARTICLES=32 GRID=16 PROBE=2 BUDGET=${GPU_VDM_TRAIN_S:-20} SAMPLE_STEPS=2 SIM=(--cola-steps 4 --pm-steps 4)
  VDM_SET=(--set data.crop=16 --set model.width=8 --set model.mults=[1,2] --set validation_crops=1)
  TP_SET=(--two-phase-set classifier.train.steps=4 --two-phase-set regressor.train.steps=4
          --two-phase-set data.crop=8 --two-phase-set data.pad=4 --two-phase-set infer.tile=16)
fi

if [ "$DEVICE" = cuda ]; then
  require_cuda gpu_vdm "set GPU_VDM_DEVICE=cpu GPU_VDM_SMOKE=1"
else
  export CUDA_VISIBLE_DEVICES=""  # the configs' device: auto then picks the CPU
fi
status=0
note() { [ "$1" -gt "$status" ] && status=$1; return 0; }

echo "gpu_vdm: work folder $WORK"
t0=$SECONDS
if [ "$(ls "$WORK/boxes"/*.h5 2>/dev/null | wc -l)" -lt 5 ]; then
  "$PY" -m galaxygen simulate "$WORK/boxes" --boxes 5 --particles "$PARTICLES" --grid "$GRID" --box-size 25 \
    --set cv "${SIM[@]}" --power-spectrum eh --device "$DEVICE" --overwrite -q
  rc=$?; note $rc
  [ $rc -ne 0 ] && { echo "gpu_vdm: simulate failed (exit $rc)" >&2; exit $rc; }
fi
echo "gpu_vdm: simulate took $((SECONDS - t0)) s"

bench() {  # bench NAME ARGS...: one bench_vdm.py run on the set, JSON into WORK/NAME.json
  local name=$1; shift
  "$PY" benchmarks/bench_vdm.py --boxes "$WORK/boxes" --work "$WORK/bench" --config "configs/$CONFIG.yaml" \
    --cascade --set model.baseline=point --set train.ema_decay=0.999 "${VDM_SET[@]}" "${TP_SET[@]}" \
    --vdm-run "$name" "$@" > "$WORK/$name.json"
  local rc=$?; note $rc
  [ $rc -ne 0 ] && echo "gpu_vdm: $name failed (exit $rc)" >&2
  return $rc
}

t0=$SECONDS
bench probe --samples 2 --sample-steps 1 --set train.steps=$PROBE --set train.warmup_steps=1 \
  --set train.eval_every=$PROBE --set train.checkpoint_every=$PROBE --set train.log_every=1 || exit $status
echo "gpu_vdm: probe (two-phase training, HOD, $PROBE VDM steps) took $((SECONDS - t0)) s"
# steps = 0.85 x budget x the probe's training throughput (median over its steps after the first,
# from train_log.csv: the rate of the optimiser steps alone), in steps per second
STEPS=$("$PY" - "$WORK/bench/probe" "$BUDGET" <<'EOF'
import csv, json, sys
import numpy as np
run, budget = sys.argv[1], float(sys.argv[2])
rows = list(csv.DictReader(open(f"{run}/vdm/train_log.csv")))
rate = float(np.median([float(r["samples_per_s"]) for r in rows[1:] or rows]))
batch = json.load(open(f"{run}/config.json"))["train"]["batch_size"]
print(max(1, int(0.85 * budget * rate / batch)))
EOF
)
WARM=$(( STEPS / 20 > 0 ? STEPS / 20 : 1 ))
EVERY=$(( STEPS / 4 > 0 ? STEPS / 4 : 1 ))
echo "gpu_vdm: $CONFIG for $STEPS steps (budget $BUDGET s)"
t0=$SECONDS
bench vdm --sample-steps "$SAMPLE_STEPS" --set train.steps=$STEPS --set train.warmup_steps=$WARM \
  --set train.eval_every=$EVERY --set train.checkpoint_every=$EVERY --set train.log_every=$EVERY
echo "gpu_vdm: $CONFIG trained and sampled in $((SECONDS - t0)) s"
cat "$WORK/vdm.json" 2>/dev/null
echo "gpu_vdm: done in $SECONDS s, exit $status (runs and JSON kept in $WORK)"
exit $status
