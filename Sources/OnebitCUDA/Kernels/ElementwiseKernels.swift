extension KernelSource {
    /// Element-wise kernels: the gated activations, the residual add, and the copy the bench times.
    static let elementwiseSource = #"""
        extern "C" __global__ void relu2_mul(float *gate, const float *up, int n) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            gate[i] = relu2_gated(gate[i], up[i]);
        }

        extern "C" __global__ void silu_mul(float *gate, const float *up, int n) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            gate[i] = silu_gated(gate[i], up[i]);
        }

        extern "C" __global__ void add_rows(float *x, const float *delta, int n) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) x[i] += delta[i];
        }

        // dst[i] = src[i] for `count` 16-byte words, grid-stride: the device-to-device copy the bench times to
        // find the memory bandwidth.
        extern "C" __global__ void copy_words(const uint4 *src, uint4 *dst, int count) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) dst[i] = src[i];
        }
        """#
}
