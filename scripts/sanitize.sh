#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the C++ core, then the core-heavy tests
# under it. Any report fails the run (halt_on_error). Usage:  bash scripts/sanitize.sh [pytest args]
# The build lives in build/asan and its own virtualenv in build/asan-venv (incremental on re-runs).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/asan-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q scikit-build-core pybind11 cmake ninja cmeel-eigen==3.4.1 \
      onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0
fi
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"
"$venv/bin/pip" install -q --no-build-isolation -Cbuild-dir=build/asan \
    -Ccmake.build-type=RelWithDebInfo \
    "-Ccmake.define.CMAKE_CXX_FLAGS=$flags" \
    "-Ccmake.define.CMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" \
    "-Ccmake.define.CMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined" \
    ".[test]"
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
# Python itself is not instrumented: leaks are reported for the interpreter's own allocations, so
# leak checking is off; every memory error and undefined behaviour in the core stops the run.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export PYTHONMALLOC=malloc
tests=${*:-tests/test_kernels.py tests/test_gradients.py tests/test_lstm_kernel.py tests/test_recurrent_layers.py
 tests/test_attention_layers.py tests/test_spatial_layers.py tests/test_preprocessing_layers.py tests/test_explain_core.py
 tests/test_losses.py tests/test_optimizers.py tests/test_saving_fuzz.py tests/test_threads_determinism.py}
cd build  # import the installed package, not the source tree
LD_PRELOAD="$asan $ubsan" "../$venv/bin/python" -m pytest -q -p no:cacheprovider -x $(for t in $tests; do echo "../$t"; done)
