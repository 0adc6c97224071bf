extension KernelSource {
    /// RMSNorm, alone and fused with the per-token int8 quantization of its output, for one row or many.
    static let normSource = #"""
        // 1 / sqrt(mean(x^2) + eps) as the CPU reference computes it, from each thread's share of the squares
        // summed in double.
        __device__ __forceinline__ float rms_inverse_of_squares(double sum, int width, float eps) {
            sum = block_sum(sum);
            return 1.0f / sqrtf((float)(sum / (double)width) + eps);
        }

        // rms_inverse_of_squares of a row read in strided passes.
        __device__ float rms_inverse(const float *row, int width, float eps) {
            double sum = 0.0;
            for (int i = threadIdx.x; i < width; i += blockDim.x) sum += (double)row[i] * (double)row[i];
            return rms_inverse_of_squares(sum, width, eps);
        }

        // Values of its row each thread of rms_norm holds where the row fits.
        #define RMS_VALUES 16

        // One block per token. Rows of at most RMS_VALUES * blockDim.x elements are read once, all at once, into
        // registers, the norm's weights before the wait (no kernel writes them). The final norm before the head so
        // takes 2.2 us of an H200's single-token step instead of 6.9 as two strided passes over memory (2.9 instead
        // of 6.3 at 64 sequences). The squares are summed in the same order either way.
        extern "C" __global__ void rms_norm(const float *x, const float *weight, float eps, int width, float *y) {
            const float *row = x + (size_t)blockIdx.x * width;
            float *out = y + (size_t)blockIdx.x * width;
            const int n = blockDim.x;
            if (width <= RMS_VALUES * n) {
                float g[RMS_VALUES], v[RMS_VALUES];
        #pragma unroll
                for (int k = 0; k < RMS_VALUES; k++) {
                    const int i = threadIdx.x + k * n;
                    g[k] = i < width ? weight[i] : 0.0f;
                }
                AWAIT_PREVIOUS();
                RELEASE_NEXT();
        #pragma unroll
                for (int k = 0; k < RMS_VALUES; k++) {
                    const int i = threadIdx.x + k * n;
                    v[k] = i < width ? row[i] : 0.0f;
                }
                double sum = 0.0;
        #pragma unroll
                for (int k = 0; k < RMS_VALUES; k++) sum += (double)v[k] * (double)v[k];
                const float inv = rms_inverse_of_squares(sum, width, eps);
        #pragma unroll
                for (int k = 0; k < RMS_VALUES; k++) {
                    const int i = threadIdx.x + k * n;
                    if (i < width) out[i] = g[k] * (v[k] * inv);
                }
                return;
            }
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float inv = rms_inverse(row, width, eps);
            for (int i = threadIdx.x; i < width; i += blockDim.x) out[i] = weight[i] * (row[i] * inv);
        }

        // RMSNorm then per-token int8 of one row by the whole block: s = 127 / max(max|y|, 1e-5),
        // q = clamp(rint(y * s)); the bytes of q past `width` stay zero.
        __device__ void norm_quantize_row(const float *row, const float *weight, float eps, int width, i8 *q,
                                          float *scale) {
            const float inv = rms_inverse(row, width, eps);
            float largest = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x)
                largest = fmaxf(largest, fabsf(weight[i] * (row[i] * inv)));
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            for (int i = threadIdx.x; i < width; i += blockDim.x) {
                const float v = rintf(weight[i] * (row[i] * inv) * s);
                q[i] = (i8)fminf(127.0f, fmaxf(-128.0f, v));
            }
            if (threadIdx.x == 0) *scale = s;
        }

        // One block per token; rows of q are `stride` bytes apart.
        extern "C" __global__ void rms_norm_quantize(const float *x, const float *weight, float eps, int width,
                                                     int stride, i8 *q, float *scales) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            norm_quantize_row(x + (size_t)blockIdx.x * width, weight, eps, width, q + (size_t)blockIdx.x * stride,
                              scales + blockIdx.x);
        }

        // RMSNorm then per-token int8 as rms_norm_quantize, for rows of at most 8 * blockDim.x elements: the row
        // is read once into registers, so the three passes cost one trip to memory. Before it, as the kernel that
        // would otherwise run first does it, `mode` ROW_ADD adds `other` into x (add_rows), ROW_RELU2 and ROW_SILU
        // make x the gated activation of x and `other` (relu2_mul, silu_mul), and write x back. ROW_ADD_PRODUCT first
        // makes `other` from the summed integers of a split product (`sums`, whose token scales are `sum_scales` and
        // weight scale w_scale[0]) as finish_products does, then adds it. ROW_RELU2_PRODUCT and ROW_SILU_PRODUCT
        // first make x and the up projection so from the split gate and up product (a token's gate sums, then its up
        // sums; weight scales w_scale[0] and other_scale[0]), then gate them; `other` is not read or written.
        #define WIDE_VALUES \#(wideNormValues)
        #define ROW_KEEP 0
        #define ROW_ADD 1
        #define ROW_RELU2 2
        #define ROW_SILU 3
        #define ROW_ADD_PRODUCT 4
        #define ROW_RELU2_PRODUCT 5
        #define ROW_SILU_PRODUCT 6
        // The row of block blockIdx.x, for one `mode` (MODE) and, where FULL, rows of exactly WIDE_VALUES * blockDim.x
        // elements: the mode's tests and the bounds checks are compiled out, since each one is a branch per value in
        // a kernel whose instructions, not its few bytes, set its time.
        template <int MODE, bool FULL>
        __device__ __forceinline__ void wide_norm_row(float *x, const float *weight, float eps, int width, int stride,
                                                      i8 *q, float *scales, float *other, int *sums,
                                                      const float *sum_scales, const float *w_scale,
                                                      const float *other_scale) {
            const int n = blockDim.x;
            const auto valid = [&](int k) { return FULL || (int)threadIdx.x + k * n < width; };
            float v[WIDE_VALUES], g[WIDE_VALUES];
            // The norm's weights are no kernel's output: requested before waiting for the kernel before, they come
            // from memory while it ends.
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) g[k] = valid(k) ? weight[threadIdx.x + k * n] : 0.0f;
            // The mean of the squares is taken with this reciprocal, worked out while the kernel before ends, and not
            // with a division after the sum: a double division is a long chain on the norm's critical path (on an
            // H200 a 64-sequence step ran 2.4% faster). The product differs from the quotient by about one unit in
            // the last place of a double, far below the float it is rounded to.
            const double inverse_width = 1.0 / (double)width;
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const size_t first = (size_t)blockIdx.x * width + threadIdx.x;
            float *row = x + first;
            constexpr bool gated_product = MODE == ROW_RELU2_PRODUCT || MODE == ROW_SILU_PRODUCT;
            // Every load is issued before any store, which could alias the rows, so they all wait on memory at once.
            if (!gated_product) {
        #pragma unroll
                for (int k = 0; k < WIDE_VALUES; k++) v[k] = valid(k) ? row[k * n] : 0.0f;
            }
            if (MODE != ROW_KEEP) {
                float o[WIDE_VALUES];
                float *other_row = other + first;
                if (gated_product) {
                    int *gate_row = sums + (size_t)blockIdx.x * 2 * width + threadIdx.x, *up_row = gate_row + width;
                    int gate_sums[WIDE_VALUES], up_sums[WIDE_VALUES];
        #pragma unroll
                    for (int k = 0; k < WIDE_VALUES; k++) {
                        gate_sums[k] = valid(k) ? gate_row[k * n] : 0;
                        up_sums[k] = valid(k) ? up_row[k * n] : 0;
                    }
                    const float token_scale = sum_scales[blockIdx.x], gate_scale = w_scale[0], up_scale = other_scale[0];
                    const float inverse = __frcp_rn(token_scale);
        #pragma unroll
                    for (int k = 0; k < WIDE_VALUES; k++) {
                        v[k] = divide_by((float)gate_sums[k], token_scale, inverse) * gate_scale;
                        o[k] = divide_by((float)up_sums[k], token_scale, inverse) * up_scale;
                        if (!valid(k)) continue;
                        gate_row[k * n] = 0;
                        up_row[k * n] = 0;
                    }
                } else if (MODE == ROW_ADD_PRODUCT) {
                    int *sum_row = sums + first;
                    const float token_scale = sum_scales[blockIdx.x], matrix_scale = w_scale[0];
                    const float inverse = __frcp_rn(token_scale);
        #pragma unroll
                    for (int k = 0; k < WIDE_VALUES; k++)
                        o[k] = valid(k) ? divide_by((float)sum_row[k * n], token_scale, inverse) * matrix_scale : 0.0f;
        #pragma unroll
                    for (int k = 0; k < WIDE_VALUES; k++) {
                        if (!valid(k)) continue;
                        sum_row[k * n] = 0;
                        other_row[k * n] = o[k];
                    }
                } else {
        #pragma unroll
                    for (int k = 0; k < WIDE_VALUES; k++) o[k] = valid(k) ? other_row[k * n] : 0.0f;
                }
        #pragma unroll
                for (int k = 0; k < WIDE_VALUES; k++) {
                    if (MODE == ROW_ADD || MODE == ROW_ADD_PRODUCT) {
                        v[k] += o[k];
                    } else if (MODE == ROW_RELU2 || MODE == ROW_RELU2_PRODUCT) {
                        v[k] = relu2_gated(v[k], o[k]);
                    } else {
                        v[k] = silu_gated(v[k], o[k]);
                    }
                    if (valid(k)) row[k * n] = v[k];
                }
            }
            double sum = 0.0;
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) sum += (double)v[k] * (double)v[k];
            sum = block_sum(sum);
            const float inv = 1.0f / sqrtf((float)(sum * inverse_width) + eps);
            float largest = 0.0f;
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) {
                v[k] = g[k] * (v[k] * inv);
                largest = fmaxf(largest, fabsf(v[k]));
            }
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            i8 *q_row = q + (size_t)blockIdx.x * stride + threadIdx.x;
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++)
                if (valid(k)) q_row[k * n] = (i8)fminf(127.0f, fmaxf(-128.0f, rintf(v[k] * s)));
            if (threadIdx.x == 0) scales[blockIdx.x] = s;
        }

        template <int MODE>
        __device__ __forceinline__ void wide_norm_row(float *x, const float *weight, float eps, int width, int stride,
                                                      i8 *q, float *scales, float *other, int *sums,
                                                      const float *sum_scales, const float *w_scale,
                                                      const float *other_scale) {
            if (width == WIDE_VALUES * (int)blockDim.x)
                wide_norm_row<MODE, true>(x, weight, eps, width, stride, q, scales, other, sums, sum_scales, w_scale,
                                          other_scale);
            else
                wide_norm_row<MODE, false>(x, weight, eps, width, stride, q, scales, other, sums, sum_scales, w_scale,
                                           other_scale);
        }

        extern "C" __global__ void __launch_bounds__(\#(wideNormThreads))
            rms_norm_quantize_wide(float *x, const float *weight, float eps, int width, int stride, i8 *q,
                                   float *scales, float *other, int mode, int *sums, const float *sum_scales,
                                   const float *w_scale, const float *other_scale) {
        #define WIDE_NORM_ROW(MODE) \
            wide_norm_row<MODE>(x, weight, eps, width, stride, q, scales, other, sums, sum_scales, w_scale, other_scale)
            switch (mode) {
            case ROW_KEEP: WIDE_NORM_ROW(ROW_KEEP); break;
            case ROW_ADD: WIDE_NORM_ROW(ROW_ADD); break;
            case ROW_RELU2: WIDE_NORM_ROW(ROW_RELU2); break;
            case ROW_SILU: WIDE_NORM_ROW(ROW_SILU); break;
            case ROW_ADD_PRODUCT: WIDE_NORM_ROW(ROW_ADD_PRODUCT); break;
            case ROW_RELU2_PRODUCT: WIDE_NORM_ROW(ROW_RELU2_PRODUCT); break;
            default: WIDE_NORM_ROW(ROW_SILU_PRODUCT);
            }
        #undef WIDE_NORM_ROW
        }
        // RMSNorm then per-token int8 as rms_norm_quantize, for rows wider than rms_norm_quantize_wide takes, up to
        // LONG_QUADS * 4 * blockDim.x elements, a multiple of 4: a block per token holds its row in shared memory.
        // Every thread requests all its quads of the row before it uses any, so the row comes from memory in one
        // round trip, and the passes after the first read shared memory. A block of 256 threads walking the row
        // three times took 55-75 us a norm on an H200 for Falcon3-10B's 23,040-wide rows at one token. `mode` is
        // rms_norm_quantize_wide's ROW_KEEP ... ROW_SILU; the split-product modes are not taken.
        #define LONG_QUADS \#(longNormQuads)
        // Calls FUNCTION<MODE>(...) for `mode`, one of ROW_KEEP ... ROW_SILU.
        #define GATED_ROW_MODES(FUNCTION, mode, ...)                                                                  \
            switch (mode) {                                                                                       \
            case ROW_KEEP: FUNCTION<ROW_KEEP>(__VA_ARGS__); break;                                                \
            case ROW_ADD: FUNCTION<ROW_ADD>(__VA_ARGS__); break;                                                  \
            case ROW_RELU2: FUNCTION<ROW_RELU2>(__VA_ARGS__); break;                                              \
            default: FUNCTION<ROW_SILU>(__VA_ARGS__);                                                             \
            }

        // x after mode MODE (ROW_ADD, ROW_RELU2 or ROW_SILU) with the other row's y.
        template <int MODE> __device__ __forceinline__ float gated_value(float x, float y) {
            if (MODE == ROW_ADD) return x + y;
            return MODE == ROW_RELU2 ? relu2_gated(x, y) : silu_gated(x, y);
        }

        // The long and split norms' steps for a quad of a row, each element as the scalar steps take it.
        template <int MODE> __device__ __forceinline__ float4 gated_quad(float4 v, float4 o) {
            return make_float4(gated_value<MODE>(v.x, o.x), gated_value<MODE>(v.y, o.y), gated_value<MODE>(v.z, o.z),
                               gated_value<MODE>(v.w, o.w));
        }
        __device__ __forceinline__ double add_squares(double sum, float4 v) {
            sum += (double)v.x * (double)v.x + (double)v.y * (double)v.y;
            return sum + ((double)v.z * (double)v.z + (double)v.w * (double)v.w);
        }
        __device__ __forceinline__ float4 normalised_quad(float4 g, float4 v, float inv) {
            return make_float4(g.x * (v.x * inv), g.y * (v.y * inv), g.z * (v.z * inv), g.w * (v.w * inv));
        }
        __device__ __forceinline__ float largest_magnitude(float largest, float4 y) {
            return fmaxf(largest, fmaxf(fmaxf(fabsf(y.x), fabsf(y.y)), fmaxf(fabsf(y.z), fabsf(y.w))));
        }
        __device__ __forceinline__ char4 quad_levels(float4 y, float s) {
            const auto level = [s](float v) { return (i8)fminf(127.0f, fmaxf(-128.0f, rintf(v * s))); };
            return make_char4(level(y.x), level(y.y), level(y.z), level(y.w));
        }

        template <int MODE>
        __device__ __forceinline__ void long_norm_row(float *x, const float *weight, float eps, int width, int stride,
                                                      i8 *q, float *scales, const float *other) {
            extern __shared__ __align__(16) float long_row[];
            const int n = blockDim.x;
            const auto valid = [&](int k) { return 4 * ((int)threadIdx.x + k * n) < width; };
            const double inverse_width = 1.0 / (double)width;
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            float4 *row = (float4 *)(x + (size_t)blockIdx.x * width) + threadIdx.x;
            const float4 *other_row = (const float4 *)(other + (size_t)blockIdx.x * width) + threadIdx.x;
            const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float4 v[LONG_QUADS];
        #pragma unroll
            for (int k = 0; k < LONG_QUADS; k++) v[k] = valid(k) ? row[k * n] : zero;
            if (MODE != ROW_KEEP) {
                float4 o[LONG_QUADS];
        #pragma unroll
                for (int k = 0; k < LONG_QUADS; k++) o[k] = valid(k) ? other_row[k * n] : zero;
        #pragma unroll
                for (int k = 0; k < LONG_QUADS; k++) {
                    v[k] = gated_quad<MODE>(v[k], o[k]);
                    if (valid(k)) row[k * n] = v[k];
                }
            }
            double sum = 0.0;
        #pragma unroll
            for (int k = 0; k < LONG_QUADS; k++) {
                sum = add_squares(sum, v[k]);
                if (valid(k)) ((float4 *)long_row)[threadIdx.x + k * n] = v[k];
            }
            sum = block_sum(sum);
            const float inv = 1.0f / sqrtf((float)(sum * inverse_width) + eps);
            const float4 *g = (const float4 *)weight + threadIdx.x;
            float largest = 0.0f;
        #pragma unroll
            for (int k = 0; k < LONG_QUADS; k++) {
                if (!valid(k)) continue;
                const float4 y = normalised_quad(g[k * n], ((const float4 *)long_row)[threadIdx.x + k * n], inv);
                largest = largest_magnitude(largest, y);
                ((float4 *)long_row)[threadIdx.x + k * n] = y;
            }
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            char4 *q_row = (char4 *)(q + (size_t)blockIdx.x * stride) + threadIdx.x;
        #pragma unroll
            for (int k = 0; k < LONG_QUADS; k++)
                if (valid(k)) q_row[k * n] = quad_levels(((const float4 *)long_row)[threadIdx.x + k * n], s);
            if (threadIdx.x == 0) scales[blockIdx.x] = s;
        }

        extern "C" __global__ void __launch_bounds__(\#(longNormThreads))
            rms_norm_quantize_long(float *x, const float *weight, float eps, int width, int stride, i8 *q,
                                   float *scales, const float *other, int mode) {
            GATED_ROW_MODES(long_norm_row, mode, x, weight, eps, width, stride, q, scales, other);
        }

        // The same norm with a row shared out over a thread block cluster of SPLIT_BLOCKS blocks (sm_90), for steps of
        // few tokens, where a block a row leaves most of the GPU idle and each row's time is one block's chain of
        // loads and reductions: block r of a row's cluster takes its r-th share of the quads, SPLIT_QUADS a thread,
        // with the norm's weights for them read before the wait. The blocks' sums and maxima meet through
        // distributed shared memory, each block adding them up in the same order, so all agree.
        #define SPLIT_BLOCKS \#(splitNormBlocks)
        #define SPLIT_QUADS \#(splitNormQuads)
        template <int MODE>
        __device__ __forceinline__ void split_norm_row(float *x, const float *weight, float eps, int width, int stride,
                                                       i8 *q, float *scales, const float *other) {
            __shared__ double block_squares;
            __shared__ float block_largest;
            const int n = blockDim.x, rank = blockIdx.x, quads = width / 4;
            const int share = (quads + SPLIT_BLOCKS - 1) / SPLIT_BLOCKS, first = rank * share;
            const int end = min(quads, first + share);
            const auto index = [&](int k) { return first + (int)threadIdx.x + k * n; };
            const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float4 g[SPLIT_QUADS], v[SPLIT_QUADS];
        #pragma unroll
            for (int k = 0; k < SPLIT_QUADS; k++) g[k] = index(k) < end ? ((const float4 *)weight)[index(k)] : zero;
            const double inverse_width = 1.0 / (double)width;
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            float4 *row = (float4 *)(x + (size_t)blockIdx.y * width);
            const float4 *other_row = (const float4 *)(other + (size_t)blockIdx.y * width);
        #pragma unroll
            for (int k = 0; k < SPLIT_QUADS; k++) v[k] = index(k) < end ? row[index(k)] : zero;
            if (MODE != ROW_KEEP) {
                float4 o[SPLIT_QUADS];
        #pragma unroll
                for (int k = 0; k < SPLIT_QUADS; k++) o[k] = index(k) < end ? other_row[index(k)] : zero;
        #pragma unroll
                for (int k = 0; k < SPLIT_QUADS; k++) {
                    v[k] = gated_quad<MODE>(v[k], o[k]);
                    if (index(k) < end) row[index(k)] = v[k];
                }
            }
            double sum = 0.0;
        #pragma unroll
            for (int k = 0; k < SPLIT_QUADS; k++) sum = add_squares(sum, v[k]);
            sum = block_sum(sum);
            if (threadIdx.x == 0) block_squares = sum;
            cluster_sync();
            sum = 0.0;
        #pragma unroll
            for (int r = 0; r < SPLIT_BLOCKS; r++) sum += cluster_load(&block_squares, r);
            const float inv = 1.0f / sqrtf((float)(sum * inverse_width) + eps);
            float largest = 0.0f;
        #pragma unroll
            for (int k = 0; k < SPLIT_QUADS; k++) {
                v[k] = normalised_quad(g[k], v[k], inv);
                largest = largest_magnitude(largest, v[k]);
            }
            largest = block_max(largest);
            if (threadIdx.x == 0) block_largest = largest;
            cluster_sync();
        #pragma unroll
            for (int r = 0; r < SPLIT_BLOCKS; r++) largest = fmaxf(largest, cluster_load(&block_largest, r));
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            char4 *q_row = (char4 *)(q + (size_t)blockIdx.y * stride);
        #pragma unroll
            for (int k = 0; k < SPLIT_QUADS; k++)
                if (index(k) < end) q_row[index(k)] = quad_levels(v[k], s);
            if (rank == 0 && threadIdx.x == 0) scales[blockIdx.y] = s;
            // No block leaves while another may still read its shared memory.
            cluster_sync();
        }

        extern "C" __global__ void __launch_bounds__(\#(splitNormThreads))
            rms_norm_quantize_split(float *x, const float *weight, float eps, int width, int stride, i8 *q,
                                    float *scales, const float *other, int mode) {
            GATED_ROW_MODES(split_norm_row, mode, x, weight, eps, width, stride, q, scales, other);
        }
        """#
}
