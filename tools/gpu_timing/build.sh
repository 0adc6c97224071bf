#!/usr/bin/env bash
# Builds the kernel trace library and the latency probe on a machine with the CUDA toolkit (CUPTI, nvcc):
#   tools/gpu_timing/build.sh [output folder, default /tmp]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-/tmp}"
cuda="${CUDA_HOME:-/usr/local/cuda}"
include="$(dirname "$(find "$cuda/" -name cupti_activity.h | head -1)")"
lib="$(dirname "$(find "$cuda/" -name 'libcupti.so' | head -1)")"
# The newest kernel and copy record types of this CUPTI.
kernel="$(grep -o '} CUpti_ActivityKernel[0-9]*;' "$include/cupti_activity.h" | grep -o 'CUpti_ActivityKernel[0-9]*' | tail -1)"
copy="$(grep -o '} CUpti_ActivityMemcpy[0-9]*;' "$include/cupti_activity.h" | grep -o 'CUpti_ActivityMemcpy[0-9]*' | tail -1)"
gcc -O2 -shared -fPIC -DKERNEL_RECORD="$kernel" -DCOPY_RECORD="$copy" -I"$include" -I"$cuda/include" \
    "$here/kernel_trace.c" -o "$out/libkernel_trace.so" -L"$lib" -lcupti -Wl,-rpath,"$lib"
"$cuda/bin/nvcc" -O3 -arch=native -o "$out/latency_probe" "$here/latency_probe.cu"
echo "built $out/libkernel_trace.so and $out/latency_probe"
