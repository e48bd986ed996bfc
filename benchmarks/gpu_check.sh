#!/usr/bin/env bash
# The GPU check (issue 9): the whole test suite with the CuPy backend, then the GPU
# benchmarks, then a short table. Meant for the lent GPU machine, run from the repo root:
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine (~5 min on an H100)
#   GPU_BACKEND=numpy TORCH_DEVICE=cpu QUICK=1 bash benchmarks/gpu_check.sh   # CPU dry run
#
# The GPU machine has CuPy, NumPy, typer, rich, pytest, Pillow and PyTorch but no internet:
# pure-Python wheels it lacks (hypothesis and its dependencies) travel in .gpu-wheels/ and
# Fashion-MNIST in .gpu-data/fashion-mnist/ (both ignored by git; see benchmarks/README.md).
# Results go to $OUT (the device tool's folder) or /tmp/gpu-check. TEST_ARGS narrows the
# suite (e.g. TEST_ARGS='-k cupy' runs only the CuPy cases); the default is the whole suite,
# whose CuPy cases include tests/test_device.py (CNN fit, Adam/momentum vs NumPy, dropout,
# transforms, save/load, kNN, augmentation, NMS on the device).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
GPU_BACKEND=${GPU_BACKEND:-cupy}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
QUICK=${QUICK:-}
TEST_LIMIT=${TEST_LIMIT:-300}
TEST_ARGS=${TEST_ARGS:-}
BENCH_LIMIT=${BENCH_LIMIT:-180}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
python - <<'PY'
import importlib
for name in ("numpy", "cupy", "torch", "typer", "rich", "PIL", "pytest", "hypothesis", "scipy", "sklearn", "pycocotools", "matplotlib"):
    try:
        print(f"{name:12s}", getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as exc:
        print(f"{name:12s} missing ({type(exc).__name__})")
PY

if [ -d .gpu-wheels ]; then
  python -m pip install --quiet --no-index --find-links .gpu-wheels .gpu-wheels/*.whl 2>&1 | tail -2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -d .gpu-data/fashion-mnist ]; then export CVTOOL_FASHION_DIR=$PWD/.gpu-data/fashion-mnist; fi
export CVTOOL_BACKEND=$GPU_BACKEND

echo "== auto's choice (backend.describe)"
python - <<'PY'
from cvtool import backend
for what, macs in (("MLP 784-30-10, batch 10", 10 * 23_820), ("MLP 784-100-10, batch 128", 128 * 79_400),
                   ("nielsen-ch6, batch 128", 128 * 1_633_000), ("kNN / augment", None)):
    print(f"{what:28s}", backend.describe("auto", macs_per_step=macs))
PY

echo "== tests (CVTOOL_BACKEND=$GPU_BACKEND)"
# shellcheck disable=SC2086  # TEST_ARGS is a list of words
timeout "$TEST_LIMIT" python -m pytest -q -p no:cacheprovider -rs -o addopts= $TEST_ARGS \
  --junitxml="$OUT/tests.xml" > "$OUT/tests.txt" 2>&1
test_rc=$?
tail -n 25 "$OUT/tests.txt"
grep "^strict backend:" "$OUT/tests.txt" || echo "strict backend: no count printed"
python - "$OUT/tests.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as exc:
    sys.exit(f"no junit report ({exc})")
ran = skipped = failed = 0
for case in root.iter("testcase"):
    if "[cupy" in case.get("name", "") or "-cupy" in case.get("name", ""):
        if case.find("skipped") is not None:
            skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        else:
            ran += 1
print(f"cupy-parametrised cases: {ran} passed, {failed} failed, {skipped} skipped")
PY

echo "== benchmarks"
args=(--backend "$GPU_BACKEND" --device "$TORCH_DEVICE" --json "$OUT/bench_gpu.json")
[ -n "$QUICK" ] && args+=(--quick --repeat 1)
timeout "$BENCH_LIMIT" python benchmarks/bench_gpu.py "${args[@]}" 2>&1 | tee "$OUT/bench.txt"
bench_rc=${PIPESTATUS[0]}

echo "== summary: tests rc=$test_rc, benchmarks rc=$bench_rc (results in $OUT)"
[ "$test_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
