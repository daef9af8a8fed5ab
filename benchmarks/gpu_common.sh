# Shared by the prepared GPU scripts (gpu_check.sh, gpu_vdm.sh); sourced, not run.
# Sets PY (the project's .venv python, else python3, or $PYTHON), runs from the repository root with
# src/ on the path and progress bars off, and defines `require_cuda NAME HINT`: on a machine where
# torch sees no CUDA GPU it stops the script with one line naming NAME and HINT (the smoke mode), exit 2;
# otherwise it prints torch's version and the GPU's name.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" GALAXYGEN_NO_PROGRESS=1

require_cuda() {
  local name=$1 hint=$2
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "$name.sh: no CUDA GPU: torch.cuda.is_available() is False for $PY ($hint for the CPU smoke mode)" >&2
    exit 2
  fi
  "$PY" -c "import torch; print('$name: torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
}
