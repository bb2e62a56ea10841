#!/usr/bin/env bash
# The checks that need a GPU, as one script (a lent GPU machine has minutes, not hours):
#   bash solvers/benchmarks/gpu_check.sh OUTDIR
# 1. the CUDA tests (tests/test_cuda.py: every kernel path, the Gauss–Newton step, training and
#    an exact resume on the GPU against the CPU) and the oracle tests;
# 2. the NTK benchmark on CUDA (structured against Jacobian, side by side);
# 3. Gauss–Newton accuracy targets trained on CUDA;
# 4. the whole suite with CUDA present (the CPU-only checks skip themselves), and the DeepXDE
#    bridge's tests with CUDA as torch's default device (as DeepXDE sets it on import).
# NTK=0 skips the benchmark; ACC="NAME ..." and ACC_LIMIT=SECONDS choose the accuracy targets.
# Packages the machine lacks (deepxde, meshio, ...) are installed from wheels in .whl/ if
# present. Each step has its own time limit; logs go to OUTDIR.
set -u
out=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl \
        2>&1 | tail -2
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -2 \
    || export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, pinnk; print('torch', torch.__version__, torch.cuda.get_device_name())"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: rc=$rc in $((SECONDS - t0)) s"
    tail -n 6 "$out/$name.log"
}

step tests-cuda 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    tests/test_kernel_oracle.py tests/test_gauss_newton.py
# the DeepXDE bridge as a DeepXDE user on a GPU runs it: CUDA as torch's default device
step interop-cuda-default 80 env PINNK_TEST_DEFAULT_DEVICE=cuda python3 -m pytest -q \
    -p no:cacheprovider tests/interop
# -v: each result is logged as it comes, so a run cut by its limit still names its failures
step suite 130 python3 -m pytest -v -rfE --tb=line -p no:cacheprovider -n 14
if [ "${NTK:-1}" = 1 ]; then
    step ntk-cuda 100 python3 -m pinnk.benchmarks.ntk --device cuda --repeats 5
fi
step accuracy-cuda "${ACC_LIMIT:-150}" python3 -m solvers.benchmarks.accuracy --device cuda \
    --only ${ACC:-poisson-1d-gn euler-smooth-gn} --md "$out/accuracy-cuda.md" --out /tmp/acc
