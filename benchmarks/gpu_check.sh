#!/usr/bin/env bash
# The GPU check of issue 17 in one script (docs/GPU_CHECK.md): installs the carried wheels, prints the device,
# holds the Mitsuba backend on CUDA against Open3D's carried output, runs the cuda test cases, measures the GPU
# render table (128x128, then 256x256) and the training section, and leaves every log and JSON in one folder.
#
#   bash benchmarks/gpu_check.sh --prepare         here (CPU, Open3D): Open3D's reference -> build/gpu_check/
#   bash benchmarks/gpu_check.sh                   on the GPU machine: results -> $OUT (the device tool's folder)
#   bash benchmarks/gpu_check.sh --cpu-rehearsal   here: the same steps on Mitsuba's LLVM variant, small sizes,
#                                                  with `import open3d` blocked as on the GPU machine
# Options: --out DIR (default $OUT; rehearsal /tmp/gpu-check-rehearsal), --budget SECONDS (whole script, default
# 450), --steps a,b,... (a subset of: install info parity render128 training render256 cudatests; a rerun on a
# warm machine merges with the render table its earlier run left in $GPU_CHECK_WORK).
# Every step runs under `timeout`, cut to the budget left; a failed step does not stop the next ones.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
MODE=device
STEPS=all
BUDGET=450
OUTDIR=${OUT:-}
while [ $# -gt 0 ]; do
  case $1 in
    --prepare) MODE=prepare ;;
    --cpu-rehearsal) MODE=rehearsal ;;
    --out) OUTDIR=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
REF=build/gpu_check/reference
WHEELS=${WHEELS:-.whl}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check_work}
export PYTHONUNBUFFERED=1

if [ "$MODE" = prepare ]; then
  rm -rf "$REF" && mkdir -p "$REF" && "$PY" -m tests.device_reference "$REF" || exit 1
  ls -l "$REF"
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then ls -l "$WHEELS"/*.whl; else
    echo "no wheels in $WHEELS: run /work/shared/hooks/device-wheels.sh (or see docs/GPU_CHECK.md)"; fi
  tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk 'END {print $1}')
  carried=$(du -cb "$WHEELS" build/gpu_check 2>/dev/null | awk 'END {print $1}')
  echo "travels: tree $((tree / 1048576)) MiB + carried $((carried / 1048576)) MiB (limit 64 MiB)"
  [ $((tree + carried)) -lt $((62 * 1048576)) ] || { echo "too big to travel"; exit 1; }
  exit 0
fi

if [ -z "$OUTDIR" ]; then
  [ "$MODE" = rehearsal ] && OUTDIR=/tmp/gpu-check-rehearsal || { echo "gpu_check.sh: set OUT or --out" >&2; exit 2; }
fi
mkdir -p "$OUTDIR" "$WORK"
LOG=$OUTDIR/gpu_check.log
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
START=$(date +%s)
RESERVE=25  # seconds kept for the merge and the summary
RESULTS=()
echo "gpu_check.sh $MODE, $(date -u +%FT%TZ), budget ${BUDGET}s, steps $STEPS, out $OUTDIR, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

selected() { [ "$STEPS" = all ] || [[ ",$STEPS," == *",$1,"* ]]; }

# run_step NAME MAX_SECONDS COMMAND...: run under timeout (at most what the budget leaves), record the outcome
run_step() {
  local name=$1 max=$2 limit left t0 rc status
  shift 2
  selected "${name%%-*}" || return 0  # parity-reference runs with parity
  left=$((START + BUDGET - RESERVE - $(date +%s)))
  limit=$((max < left ? max : left))
  if [ "$limit" -lt 15 ]; then RESULTS+=("$name: not run (budget spent)"); return 0; fi
  echo; echo "=== [$name] $(date +%T), at most ${limit}s: $*"
  t0=$(date +%s)
  timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@"  # through bash: the shell functions below are exported
  rc=$?
  case $rc in 0) status=ok ;; 124|137) status="TIMEOUT after ${limit}s" ;; *) status="FAILED (exit $rc)" ;; esac
  RESULTS+=("$name: $status, $(($(date +%s) - t0))s")
  echo "=== [$name] $status"
}

# --- the environment: wheels, driver libraries, no Open3D -------------------------------------------------------
if [ "$MODE" = rehearsal ]; then
  # Open3D's reference first (Open3D is here), then block open3d as the GPU machine lacks it.
  run_step parity-reference 120 bash -c "rm -rf $REF && mkdir -p $REF && $PY -m tests.device_reference $REF"
  mkdir -p "$WORK/no-open3d"
  echo "import sys; sys.modules['open3d'] = None  # gpu_check.sh --cpu-rehearsal: as on the GPU machine" \
    > "$WORK/no-open3d/sitecustomize.py"
  export PYTHONPATH="$WORK/no-open3d${PYTHONPATH:+:$PYTHONPATH}"
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then  # the carried wheels install for Python 3.12 (not used here: 3.11)
    rm -rf "$WORK/site312"
    run_step install 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --only-binary=:all: \
      --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --target "$WORK/site312" "$WHEELS"/*.whl
  else
    RESULTS+=("install: not rehearsed (no wheels in $WHEELS)")
  fi
else
  if selected install || [ ! -d /tmp/site/mitsuba ]; then  # a fresh machine needs them whatever --steps says
    STEPS=all run_step install 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$WHEELS"/*.whl
  fi
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  # Dr.Jit dlopens libcuda.so (no .1) and libnvoptix.so.1 by name: point it at the driver's own files.
  find_lib() {
    { ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF}'
      ls /usr/local/nvidia/lib64/"$1" /usr/local/nvidia/lib/"$1" /usr/lib/x86_64-linux-gnu/"$1" /usr/lib64/"$1"; } \
      2>/dev/null | head -1
  }
  [ -n "${DRJIT_LIBCUDA_PATH:-}" ] || { p=$(find_lib libcuda.so.1); [ -z "$p" ] || export DRJIT_LIBCUDA_PATH=$p; }
  [ -n "${DRJIT_LIBOPTIX_PATH:-}" ] || { p=$(find_lib libnvoptix.so.1); [ -z "$p" ] || export DRJIT_LIBOPTIX_PATH=$p; }
fi
export ESS_DEVICE_REFERENCE=$ROOT/$REF

# --- the steps ----------------------------------------------------------------------------------------------------
info() {
  nvidia-smi 2>&1 | head -20 || true
  echo "DRJIT_LIBCUDA_PATH=${DRJIT_LIBCUDA_PATH:-} DRJIT_LIBOPTIX_PATH=${DRJIT_LIBOPTIX_PATH:-}"
  ls /usr/local/nvidia/lib64 2>/dev/null | grep -iE 'optix|rtcore|libcuda\.' | tr '\n' ' '; echo
  echo "reference ($ESS_DEVICE_REFERENCE):"; ls -l "$ESS_DEVICE_REFERENCE" 2>&1
  "$PY" - <<'PY'
import platform
import torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| available", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
for name in ("numpy", "numba", "scipy", "h5py", "trimesh", "PIL", "tqdm"):
    try:
        print(name, __import__(name).__version__)
    except Exception as e:  # noqa: BLE001 - report every package, then go on
        print(name, "NOT IMPORTABLE:", type(e).__name__, e)
import drjit as dr, mitsuba as mi
print("mitsuba", mi.__version__, "| drjit", dr.__version__, "| variants", mi.variants())
print("drjit backends: cuda", dr.has_backend(dr.JitBackend.CUDA), "| llvm", dr.has_backend(dr.JitBackend.LLVM))
from envsim.render.raycast import available_backends, mitsuba_variant
print("envsim: mitsuba_variant()", mitsuba_variant(), "| available_backends()", available_backends())
try:
    import open3d
    print("open3d importable (it must not be needed):", open3d.__version__)
except ImportError as e:
    print("open3d: not importable, as on the GPU machine (", e, ")")
PY
}

merge_render() {  # the 128 and 256 tables -> one gpu_render.json + .md in $OUTDIR
  "$PY" - "$WORK" "$OUTDIR" <<'PY'
import json, shutil, subprocess, sys
from pathlib import Path
from benchmarks.perf.gpu_render import to_markdown
from benchmarks.perf.suite import library_versions
work, out = Path(sys.argv[1]), Path(sys.argv[2])
parts = [json.loads(p.read_text()) for p in sorted(work.glob("render*/gpu_render.json"), key=lambda p: int(p.parent.name[6:]))]
if not parts:
    sys.exit("no gpu_render.json was written")
report = parts[0]
for other in parts[1:]:
    report["results"] += other["results"]
    report["figures"] += other["figures"]
report["command"] = "bash benchmarks/gpu_check.sh (" + "; ".join(p.get("command", "?") for p in parts) + ")"
report["versions"] = library_versions()  # mitsuba, drjit, CUDA and the GPU too
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                     text=True) if shutil.which("nvidia-smi") else None
report["driver"] = smi.stdout.strip() if smi is not None and smi.returncode == 0 else None
(out / "gpu_render.json").write_text(json.dumps(report, indent=1) + "\n")
(out / "gpu_render.md").write_text(to_markdown(report))
print(to_markdown(report))
PY
}

render_table() {  # render_table SIZE VIEWS BATCH REPEATS TRIANGLES
  rm -rf "$WORK/render$1" && mkdir -p "$WORK/render$1"
  local cmd=(-m ess bench-perf --table gpu-render --sizes "$1" --views "$2" --batch "$3" --repeats "$4"
             --triangles-min "$5" --out "$WORK/render$1" --allow-dirty)
  "$PY" "${cmd[@]}" && "$PY" - "$WORK/render$1/gpu_render.json" "python ${cmd[*]}" <<'PY'
import json, sys
p = sys.argv[1]
r = json.load(open(p))
r["command"] = sys.argv[2]
open(p, "w").write(json.dumps(r, indent=1) + "\n")
PY
}

export PY WORK OUTDIR
export -f info merge_render render_table
if [ "$MODE" = device ]; then
  SMALL=(128 4096 1024 3 1000000); LARGE=(256 4096 1024 3 1000000); QUICK=()
  PYTEST_K=(-k "cuda")
else
  SMALL=(32 48 16 1 20000); LARGE=(48 32 16 1 20000); QUICK=(--quick)
  PYTEST_K=()
fi
run_step info 45 info
run_step parity 120 "$PY" -m pytest -p no:cacheprovider -q -rfEs "${PYTEST_K[@]}" tests/test_device_parity.py
run_step render128 150 render_table "${SMALL[@]}"
run_step training 90 "$PY" -m ess bench-perf --only training "${QUICK[@]}" --allow-dirty --out "$OUTDIR/training"
run_step render256 120 render_table "${LARGE[@]}"
if selected render128 || selected render256; then
  STEPS=all run_step merge 60 merge_render
fi
# The cuda cases of the CPU suite: most compare with Open3D, which the GPU machine lacks (informational).
run_step cudatests 45 "$PY" -m pytest -p no:cacheprovider -q --tb=line -k cuda tests/test_shade_torch.py \
  tests/test_mitsuba.py

# --- summary --------------------------------------------------------------------------------------------------------
echo; echo "=== summary ($(($(date +%s) - START))s of ${BUDGET}s)"
printf '  %s\n' "${RESULTS[@]}"
"$PY" - "$OUTDIR" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for path in (out / "gpu_render.json", out / "training" / "perf.json"):
    if not path.is_file():
        print(f"  {path.name}: missing")
        continue
    report = json.loads(path.read_text())
    figures = report.get("figures") or [f for s in report.get("sections", {}).values() for f in s.get("figures", [])]
    for f in figures:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[f.get("pass")]
        print(f"  {f['figure']}: {f['value']:,.0f} {f['unit']}, ratio {f['ratio']:.2f} to {f['reference_value']:,.0f}"
              f" ({f['reference'][:40]}), target {f.get('target') or '-'}: {verdict}")
    for name, s in report.get("sections", {}).items():
        if s.get("status") != "ok":
            print(f"  section {name}: {s.get('status')} {s.get('error') or s.get('reason') or ''}")
PY
echo "=== files in $OUTDIR:"; find "$OUTDIR" -type f | sort
exec >&- 2>&-
wait "$TEE_PID"
