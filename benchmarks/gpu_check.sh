#!/usr/bin/env bash
# One prepared check for a lent CUDA GPU (issue 15, item 7; docs/generate.md), about 8 minutes at most:
#   1. COLA of 256^3 particles, 10 steps (mesh 512^3): ms per step beside pmwd's 8 ms per PM step at
#      256^3 on an H100 (arXiv:2211.09815);
#   2. `generate` 256^3 particles -> 128^3 voxels end to end, the expensive path (ICs, COLA, FoF, PM,
#      FoF, surrogate) for the same box timed beside it;
#   3. training throughput of the full two-phase networks (configs/two-phase-full.yaml: crop, pad and
#      batch size of the config).
# Each part prints its JSON (benchmarks/bench_generate.py) and has its own time limit; a part that
# fails or runs out of time is reported and the next one still runs; the exit status is that of the
# worst part.
#
# Usage: benchmarks/gpu_check.sh            (on the GPU machine, from anywhere)
# CPU smoke mode, to know the script runs where there is no GPU:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_PARTICLES=32 GPU_CHECK_SMOKE=1 benchmarks/gpu_check.sh
# GPU_CHECK_SMOKE=1 also shrinks the crops (generate's network: crop 8, tile 16; the throughput of the
# full networks: crop 16, pad 8, batch 1) and gives each part 4x its time limit, so that the CPU copes.
set -uo pipefail
source "$(dirname "$0")/gpu_common.sh"  # PY, the repository root, require_cuda
DEVICE=${GPU_CHECK_DEVICE:-cuda}
N=${GPU_CHECK_PARTICLES:-256}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

[ "$DEVICE" = cuda ] && require_cuda gpu_check "set GPU_CHECK_DEVICE=cpu GPU_CHECK_PARTICLES=32 GPU_CHECK_SMOKE=1"
GEN_SET=() TRAIN_SET=() SCALE=1
if [ "${GPU_CHECK_SMOKE:-0}" = 1 ]; then
  SCALE=4  # the CPU is slower than the GPU the limits are made for
  GEN_SET=(--set data.crop=8 --set infer.tile=16)
  TRAIN_SET=(--set data.crop=16 --set data.pad=8 --set classifier.train.batch_size=1
             --set regressor.train.batch_size=1)
fi

status=0
part() {  # part NAME SECONDS ARGS...: one bench_generate.py run under its own time limit
  local name=$1 limit=$(($2 * SCALE)); shift 2
  local t0=$SECONDS
  echo "gpu_check: $name (limit ${limit} s)"
  timeout "$limit" "$PY" benchmarks/bench_generate.py --skip-accuracy --device "$DEVICE" --power eh \
    --work "$WORK/$name" "$@"
  local rc=$?
  if [ $rc -eq 124 ]; then echo "gpu_check: $name: ran past its ${limit} s limit" >&2
  elif [ $rc -ne 0 ]; then echo "gpu_check: $name: failed (exit $rc)" >&2; fi
  echo "gpu_check: $name took $((SECONDS - t0)) s"
  [ $rc -gt $status ] && status=$rc
  return 0
}

part cola 90 --skip-speed --cola "$N"
part generate 270 --speed "$N" "${GEN_SET[@]}"
part training 120 --skip-speed --throughput two-phase-full.yaml "${TRAIN_SET[@]}"
echo "gpu_check: done in $SECONDS s, exit $status"
exit $status
