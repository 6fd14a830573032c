#!/usr/bin/env bash
# ESS at GPU scale (issue 18) in one script: `ess demo` at 128x128 with ResNet-18 on the GPU, the dataset rendered
# by the Mitsuba backend (the GPU machine has no Open3D), every stage timed, results packed into $OUT.
#
#   bash benchmarks/ess_gpu_run.sh                   on the GPU machine, through the device tool:
#       run(command="bash benchmarks/ess_gpu_run.sh", carry=[".whl"], timeout_s=590)
#   bash benchmarks/ess_gpu_run.sh --cpu-rehearsal   here: the same chain on tiny sizes, `import open3d` blocked
# Options: --out DIR (default $OUT; rehearsal /tmp/ess-gpu-rehearsal), --budget SECONDS (the demo's time limit,
# default 510), --epochs N (default 8: size it from the training images/s the first run prints), --houses N,
# --views N, --seeds N, --methods "moco ess-mb ess-mw".
# Brings back ess_gpu.log and ess_gpu.tgz (benchmarks/results/ess_gpu: comparison, demo.json, each run's bench
# report); unpack it here with `tar xzf ess_gpu.tgz -C benchmarks/results`, then
# `ess bench --results benchmarks/results/ess_gpu`. An interrupted run resumes: rerun on the warm machine.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
MODE=device BUDGET=510 EPOCHS=8 HOUSES=30 VIEWS=1000 SEEDS=3 METHODS="moco ess-mb ess-mw"
OUTDIR=${OUT:-}
while [ $# -gt 0 ]; do
  case $1 in
    --cpu-rehearsal) MODE=rehearsal ;;
    --out) OUTDIR=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --houses) HOUSES=$2; shift ;;
    --views) VIEWS=$2; shift ;;
    --seeds) SEEDS=$2; shift ;;
    --methods) METHODS=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "ess_gpu_run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
WORK=${ESS_GPU_WORK:-/tmp/ess_gpu_work}
export PYTHONUNBUFFERED=1
if [ -z "$OUTDIR" ]; then
  [ "$MODE" = rehearsal ] && OUTDIR=/tmp/ess-gpu-rehearsal || { echo "ess_gpu_run.sh: set OUT or --out" >&2; exit 2; }
fi
mkdir -p "$OUTDIR" "$WORK"
exec > >(tee -a "$OUTDIR/ess_gpu.log") 2>&1
echo "ess_gpu_run.sh $MODE, $(date -u +%FT%TZ), budget ${BUDGET}s, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

if [ "$MODE" = rehearsal ]; then
  mkdir -p "$WORK/no-open3d"
  echo "import sys; sys.modules['open3d'] = None  # as on the GPU machine" > "$WORK/no-open3d/sitecustomize.py"
  export PYTHONPATH="$WORK/no-open3d${PYTHONPATH:+:$PYTHONPATH}"
  SIZE=(--houses 2 --views 40 --epochs 1 --seeds 1 --batch-size 16 --arch resnet18-cifar-quarter)
  DEVICE=cpu RENDER=(--render-backend mitsuba --render-batch 16)
else
  if [ ! -d /tmp/site/mitsuba ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  fi
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  for lib in libcuda.so.1:DRJIT_LIBCUDA_PATH libnvoptix.so.1:DRJIT_LIBOPTIX_PATH; do  # Dr.Jit looks for other names
    p=$({ ldconfig -p 2>/dev/null | awk -v n="${lib%%:*}" '$1 == n {print $NF}'; ls /usr/local/nvidia/lib64/"${lib%%:*}"; } \
        2>/dev/null | head -1)
    [ -z "$p" ] || export "${lib##*:}=$p"
  done
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  SIZE=(--full --houses "$HOUSES" --views "$VIEWS" --epochs "$EPOCHS" --seeds "$SEEDS")
  DEVICE=cuda RENDER=(--render-backend mitsuba --render-batch 1024)
fi
# shellcheck disable=SC2086  # METHODS is a list of names
timeout -k 15 "$BUDGET" "$PY" -m ess demo "${SIZE[@]}" --methods $METHODS "${RENDER[@]}" --device "$DEVICE" \
  --out "$WORK/demo" --results "$WORK/ess_gpu" --no-progress
rc=$?
echo "ess demo exit $rc ($( [ $rc = 124 ] && echo 'budget spent: rerun to resume' || echo done))"
"$PY" - "$WORK/demo/demo.json" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["steps"]:
    print(f"{s['name']:<28} {s['seconds'] if s['seconds'] is not None else '-':>8} s")
print("device:", d.get("device"), "| machine:", d.get("machine", {}).get("cpu"), d.get("machine", {}).get("gpu", ""))
PY
if [ -d "$WORK/ess_gpu" ]; then
  tar czf "$OUTDIR/ess_gpu.tgz" -C "$WORK" ess_gpu && ls -l "$OUTDIR/ess_gpu.tgz"
else
  tar czf "$OUTDIR/ess_gpu.tgz" -C "$WORK/demo" demo.json 2>/dev/null  # at least the stage times
fi
exit $rc
