extension KernelSource {
    /// Most tokens a block of `int8_gemm` takes: the int8 head is read once for every this many.
    static let int8HeadTokens = 16
    /// Rows of the int8 head a block of `int8_gemm_mma` takes.
    static let int8TensorCoreRows = 128
    /// Most tokens a block of `int8_gemm_mma` takes.
    static let int8TensorCoreTokens = 64

    /// Dense products (the output head): GEMV and GEMM in the stored precision, the bf16 head on the tensor cores, and
    /// the opt-in int8 head.
    static let headSource = #"""
        // y[t][r] = dot(row r of w, token t's row of x), one warp per row, 16-byte loads when rows allow them, for
        // up to TILE tokens per pass over the weights: tokens t0 ..< t0 + TILE of `count` (t0 = blockIdx.y * TILE),
        // token t's row being x_rows[t] of x (rows x_width floats apart), or row t where x_rows is null. Every token
        // is summed in the same order whatever TILE is, so a row's logits do not depend on the batch.
        template <int KIND, int TILE>
        __device__ void dense_rows(const void *w, int rows, int cols, const float *x, int x_width, const int *x_rows,
                                   int count, float *y) {
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const int row = blockIdx.x * (blockDim.x >> 5) + warp;
            if (row >= rows) return;
            const int t0 = blockIdx.y * TILE, n = min(TILE, count - t0);
            const float *xs[TILE];
        #pragma unroll
            for (int t = 0; t < TILE; t++)
                xs[t] = x + (size_t)(t < n ? (x_rows ? x_rows[t0 + t] : t0 + t) : 0) * x_width;
            const int per = KIND == KIND_F32 ? 4 : 8;
            float sum[TILE];
        #pragma unroll
            for (int t = 0; t < TILE; t++) sum[t] = 0.0f;
            if (cols % per == 0) {
                const uint4 *r = (const uint4 *)((const char *)w + (size_t)row * cols * (KIND == KIND_F32 ? 4 : 2));
                for (int g = lane; g < cols / per; g += 32) {
                    const uint4 v = load_once(r + g);
                    const u32 words[4] = {v.x, v.y, v.z, v.w};
        #pragma unroll
                    for (int t = 0; t < TILE; t++) {
                        if (t >= n) break;
                        const float4 *xv = (const float4 *)(xs[t] + (size_t)g * per);
                        if (KIND == KIND_F32) {
                            const float4 a = xv[0];
                            sum[t] += __uint_as_float(v.x) * a.x + __uint_as_float(v.y) * a.y +
                                      __uint_as_float(v.z) * a.z + __uint_as_float(v.w) * a.w;
                        } else {
        #pragma unroll
                            for (int k = 0; k < 2; k++) {
                                const float4 a = xv[k];
                                const u32 lo = words[2 * k], hi = words[2 * k + 1];
                                if (KIND == KIND_BF16)
                                    sum[t] += bf16_value(lo & 0xffffu) * a.x + bf16_value(lo >> 16) * a.y +
                                              bf16_value(hi & 0xffffu) * a.z + bf16_value(hi >> 16) * a.w;
                                else
                                    sum[t] += f16_value(lo & 0xffffu) * a.x + f16_value(lo >> 16) * a.y +
                                              f16_value(hi & 0xffffu) * a.z + f16_value(hi >> 16) * a.w;
                            }
                        }
                    }
                }
            } else {
                for (int c = lane; c < cols; c += 32) {
                    const float e = element<KIND>(w, (size_t)row * cols + c);
        #pragma unroll
                    for (int t = 0; t < TILE; t++)
                        if (t < n) sum[t] += e * xs[t][c];
                }
            }
        #pragma unroll
            for (int t = 0; t < TILE; t++) {
                if (t >= n) break;
                const float total = warp_sum(sum[t]);
                if (lane == 0) y[(size_t)(t0 + t) * rows + row] = total;
            }
        }

        extern "C" __global__ void dense_gemv_f32(const void *w, int rows, int cols, const float *x, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            dense_rows<KIND_F32, 1>(w, rows, cols, x, 0, nullptr, 1, y);
        }
        extern "C" __global__ void dense_gemv_f16(const void *w, int rows, int cols, const float *x, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            dense_rows<KIND_F16, 1>(w, rows, cols, x, 0, nullptr, 1, y);
        }
        extern "C" __global__ void dense_gemv_bf16(const void *w, int rows, int cols, const float *x, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            dense_rows<KIND_BF16, 1>(w, rows, cols, x, 0, nullptr, 1, y);
        }

        // The head of several tokens (rows x_rows of x), 8 per pass over the weights: y is [count][rows].
        extern "C" __global__ void dense_gemm_f32(const void *w, int rows, int cols, const float *x, int x_width,
                                                  const int *x_rows, int count, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            dense_rows<KIND_F32, 8>(w, rows, cols, x, x_width, x_rows, count, y);
        }
        extern "C" __global__ void dense_gemm_f16(const void *w, int rows, int cols, const float *x, int x_width,
                                                  const int *x_rows, int count, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            dense_rows<KIND_F16, 8>(w, rows, cols, x, x_width, x_rows, count, y);
        }
        extern "C" __global__ void dense_gemm_bf16(const void *w, int rows, int cols, const float *x, int x_width,
                                                   const int *x_rows, int count, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            dense_rows<KIND_BF16, 8>(w, rows, cols, x, x_width, x_rows, count, y);
        }

        // The bf16 head of several tokens on the tensor cores (sm_80 and later). split_bf16 writes rows x_rows of x
        // as HEAD_PLANES bf16 planes [plane][token][width], each the bf16 rounding of what the planes before leave
        // of x: two planes hold 16 of its 24 significant bits (within 2^-17 of x), and the bf16 x bf16 products
        // of each plane are exact in fp32.
        #define HEAD_PLANES \#(headPlanes)
        extern "C" __global__ void split_bf16(const float *x, int x_width, const int *x_rows, int tokens, int width,
                                              u16 *planes) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int t = blockIdx.y;
            for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < width; i += gridDim.x * blockDim.x) {
                float v = x[(size_t)x_rows[t] * x_width + i];
                for (int p = 0; p < HEAD_PLANES; p++) {
                    const u32 bits = __float_as_uint(v);
                    const u32 rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
                    planes[((size_t)p * tokens + t) * width + i] = (u16)(rounded >> 16);
                    v -= __uint_as_float(rounded);
                }
            }
        }

        __device__ __forceinline__ void mma_bf16(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
        #if __CUDA_ARCH__ >= 800
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                         "{%8, %9}, {%0, %1, %2, %3};"
                         : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        #endif
        }

        // y[token][row] = w[row] . (hi + mid + lo)[token] with mma.sync m16n8k16 (bf16 in, fp32 sums), for `cols` a
        // multiple of 32: block (b, z) computes rows 128b ... 128b + 127 (16 per warp) for tokens 64z ... 64z + 63.
        // Per 32 columns a lane reads 16 bytes of its two rows straight from global memory (columns 8t ... 8t + 7 for
        // lane 4g + t), and the planes go through shared memory with cp.async, two stages deep (the rows of tokens
        // past `count` load nothing, and their products are not stored). Within the 32
        // columns the k order is permuted the same way for w and the planes (the sum does not care): the first
        // m16n8k16 takes columns 8t ... 8t + 3 of every lane, the second 8t + 4 ... 8t + 7.
        #define HEAD_WARPS 8
        #define HEAD_TOKENS 64
        extern "C" __global__ void dense_gemm_bf16_mma(const u16 *w, int rows, int cols, const u16 *planes,
                                                       int tokens, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
        #if __CUDA_ARCH__ >= 800
            __shared__ __align__(16) u16 stage[2][HEAD_PLANES][HEAD_TOKENS][32];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
            const int r0 = blockIdx.x * (HEAD_WARPS * 16) + warp * 16;
            const int t0 = blockIdx.y * HEAD_TOKENS;
            const int count = min(HEAD_TOKENS, tokens - t0);
            const uint4 *wa = (const uint4 *)(w + (size_t)min(r0 + g, rows - 1) * cols);
            const uint4 *wb = (const uint4 *)(w + (size_t)min(r0 + g + 8, rows - 1) * cols);
            auto load = [&](int buffer, int k0) {
                for (int i = threadIdx.x; i < HEAD_PLANES * HEAD_TOKENS * 4; i += blockDim.x) {
                    const int p = i / (HEAD_TOKENS * 4), token = (i / 4) % HEAD_TOKENS, piece = i % 4;
                    const size_t source = ((size_t)p * tokens + t0 + token) * cols + k0 + 8 * piece;
                    if (token < count) copy_async_16(&stage[buffer][p][token][8 * piece], planes + source);
                }
                COPY_ASYNC_COMMIT();
            };
            float acc[HEAD_TOKENS / 8][4];
        #pragma unroll
            for (int j = 0; j < HEAD_TOKENS / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
            const int steps = cols / 32;
            load(0, 0);
            uint4 a = load_once(wa + t), b = load_once(wb + t);
            for (int s = 0; s < steps; s++) {
                if (s + 1 < steps) {
                    load((s + 1) & 1, 32 * (s + 1));
                    COPY_ASYNC_WAIT(1);
                } else {
                    COPY_ASYNC_WAIT(0);
                }
                __syncthreads();
                const uint4 ca = a, cb = b;
                if (s + 1 < steps) {
                    a = load_once(wa + 4 * (s + 1) + t);
                    b = load_once(wb + 4 * (s + 1) + t);
                }
        #pragma unroll
                for (int j = 0; j < HEAD_TOKENS / 8; j++) {
                    if (8 * j < count) {
        #pragma unroll
                        for (int p = 0; p < HEAD_PLANES; p++) {
                            const uint4 v = *(const uint4 *)&stage[s & 1][p][8 * j + g][8 * t];
                            mma_bf16(acc[j], ca.x, cb.x, ca.y, cb.y, v.x, v.y);
                            mma_bf16(acc[j], ca.z, cb.z, ca.w, cb.w, v.z, v.w);
                        }
                    }
                }
                __syncthreads();
            }
        #pragma unroll
            for (int j = 0; j < HEAD_TOKENS / 8; j++) {
                const int token = 8 * j + 2 * t;
                const int ra = r0 + g, rb = r0 + g + 8;
                if (ra < rows && token < count) y[(size_t)(t0 + token) * rows + ra] = acc[j][0];
                if (ra < rows && token + 1 < count) y[(size_t)(t0 + token + 1) * rows + ra] = acc[j][1];
                if (rb < rows && token < count) y[(size_t)(t0 + token) * rows + rb] = acc[j][2];
                if (rb < rows && token + 1 < count) y[(size_t)(t0 + token + 1) * rows + rb] = acc[j][3];
            }
        #endif
        }

        // dense_gemm_bf16_mma on Hopper's warpgroup tensor cores (sm_90a), for `cols` a multiple of 64: block (b, z)
        // computes rows 256b ... 256b + 255 (128 per warpgroup, two m64 tiles) for tokens 64z ... 64z + 63 with
        // wgmma m64n64k16, both operands read by the tensor cores from shared memory. Each stage holds 64 columns
        // (128 bytes a row) of the 256 weight rows and of the planes' 64 tokens, K-major in the 128-byte
        // swizzled layout (piece p of row r at piece p ^ (r % 8) of 1024-byte atoms of 8 rows), loaded with
        // cp.async HEAD_WG_STAGES deep; the rows of tokens past `count` load nothing and are not stored, rows past
        // `rows` load the last row.
        #define HEAD_WG_ROWS 256
        #define HEAD_WG_STAGES \#(headWarpgroupStages)
        #define HEAD_WG_A_BYTES (HEAD_WG_ROWS * 128)
        #define HEAD_WG_B_BYTES (HEAD_PLANES * HEAD_TOKENS * 128)

        __device__ __forceinline__ void wgmma_bf16_m64n64k16(float (&d)[32], unsigned long long a, unsigned long long b) {
        #if defined(__CUDA_ARCH_FEAT_SM90_ALL)
            asm volatile(
                "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                "%32, %33, 1, 1, 1, 0, 0;"
                : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                  "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                  "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                  "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                : "l"(a), "l"(b)
                : "memory");
        #endif
        }

        // Where `values` is not null, each block also leaves, per token, the largest of its rows' logits and its row
        // (the lowest on ties; none where no logit beats -infinity) in values[token * gridDim.x + blockIdx.x] and
        // indices[...], argmax_partial's output for argmax_final; where `y` is null the logits are not stored.
        extern "C" __global__ void dense_gemm_bf16_wgmma(const u16 *w, int rows, int cols, const u16 *planes,
                                                         int tokens, float *y, float *values, int *indices) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
        #if defined(__CUDA_ARCH_FEAT_SM90_ALL)
            extern __shared__ __align__(16) u8 head_shared[];
            // The swizzle works on address bits, so the atoms start on a 1024-byte boundary.
            u8 *base = head_shared + ((1024u - ((unsigned)__cvta_generic_to_shared(head_shared) & 1023u)) & 1023u);
            auto a_stage = [&](int s) { return base + s * (HEAD_WG_A_BYTES + HEAD_WG_B_BYTES); };
            auto b_stage = [&](int s) { return a_stage(s) + HEAD_WG_A_BYTES; };
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = lane >> 2, tig = lane & 3;
            const int warpgroup = warp >> 2;
            const int r0 = blockIdx.x * HEAD_WG_ROWS, t0 = blockIdx.y * HEAD_TOKENS;
            const int count = min(HEAD_TOKENS, tokens - t0);
            // This thread copies piece `piece` of weight rows a_row + 32i and of plane rows b_row + 32j (plane b_row /
            // 64 + ..., token b_row % 64).
            const int piece = threadIdx.x % 8, a_row = threadIdx.x / 8;
            auto load = [&](int s, int k0) {
                if (k0 < cols) {
                    u8 *a = a_stage(s), *b = b_stage(s);
        #pragma unroll
                    for (int i = 0; i < HEAD_WG_ROWS / 32; i++) {
                        const int r = a_row + 32 * i;
                        copy_async_16(a + (r / 8) * 1024 + (r % 8) * 128 + ((piece ^ (r % 8)) * 16),
                                      w + (size_t)min(r0 + r, rows - 1) * cols + k0 + 8 * piece);
                    }
        #pragma unroll
                    for (int j = 0; j < HEAD_PLANES * HEAD_TOKENS / 32; j++) {
                        const int row = a_row + 32 * j, p = row / HEAD_TOKENS, t = row % HEAD_TOKENS;
                        if (t < count)
                            copy_async_16(b + p * (HEAD_TOKENS * 128) + (t / 8) * 1024 + (t % 8) * 128 +
                                              ((piece ^ (t % 8)) * 16),
                                          planes + ((size_t)p * tokens + t0 + t) * cols + k0 + 8 * piece);
                    }
                }
                COPY_ASYNC_COMMIT();
            };
            float acc[2][32];
        #pragma unroll
            for (int m = 0; m < 2; m++)
        #pragma unroll
                for (int i = 0; i < 32; i++) acc[m][i] = 0.0f;
            const int steps = cols / 64;
        #pragma unroll
            for (int s = 0; s < HEAD_WG_STAGES - 1; s++) load(s, 64 * s);
            for (int s = 0; s < steps; s++) {
                const int buffer = s % HEAD_WG_STAGES;
                // The last step's products are done with the stage the load below refills, and this step's stage has
                // landed where the tensor cores read it.
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
                COPY_ASYNC_WAIT(HEAD_WG_STAGES - 2);
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                __syncthreads();
                load((s + HEAD_WG_STAGES - 1) % HEAD_WG_STAGES, 64 * (s + HEAD_WG_STAGES - 1));
                asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
        #pragma unroll
                for (int k = 0; k < 4; k++)
        #pragma unroll
                    for (int m = 0; m < 2; m++) {
                        const unsigned long long a = wgmma_swizzled_descriptor(
                            a_stage(buffer) + (warpgroup * 128 + m * 64) / 8 * 1024 + 32 * k, 1024);
        #pragma unroll
                        for (int p = 0; p < HEAD_PLANES; p++)
                            wgmma_bf16_m64n64k16(
                                acc[m], a,
                                wgmma_swizzled_descriptor(b_stage(buffer) + p * (HEAD_TOKENS * 128) + 32 * k, 1024));
                    }
                asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            }
            asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
            // The sums are read only after the wait, which does not name them.
        #pragma unroll
            for (int m = 0; m < 2; m++)
        #pragma unroll
                for (int i = 0; i < 32; i++) asm volatile("" : "+f"(acc[m][i])::"memory");
            if (y) {
        #pragma unroll
                for (int m = 0; m < 2; m++)
        #pragma unroll
                    for (int i = 0; i < 32; i++) {
                        const int r = r0 + warpgroup * 128 + m * 64 + (warp & 3) * 16 + group + 8 * ((i >> 1) & 1);
                        const int t = 8 * (i >> 2) + 2 * tig + (i & 1);
                        if (r < rows && t < count) y[(size_t)(t0 + t) * rows + r] = acc[m][i];
                    }
            }
            if (!values) return;
            // A thread holds four rows of each of its 16 tokens (acc[m][4n + 2h + e]: row 64m + 8h + ..., token
            // 8n + 2 tig + e), in increasing row order; the eight lanes of a tig share their tokens, and the eight
            // warps meet in shared memory.
            __shared__ float best_values[8][HEAD_TOKENS];
            __shared__ int best_rows[8][HEAD_TOKENS];
        #pragma unroll
            for (int n = 0; n < 8; n++)
        #pragma unroll
                for (int e = 0; e < 2; e++) {
                    float best = NEGATIVE_INFINITY;
                    int index = 0x7fffffff;
        #pragma unroll
                    for (int m = 0; m < 2; m++)
        #pragma unroll
                        for (int h = 0; h < 2; h++) {
                            const int r = r0 + warpgroup * 128 + m * 64 + (warp & 3) * 16 + group + 8 * h;
                            const float v = acc[m][4 * n + 2 * h + e];
                            if (r < rows && v > best) {
                                best = v;
                                index = r;
                            }
                        }
                    for (int o = 4; o < 32; o <<= 1)
                        argmax_pick(best, index, __shfl_xor_sync(FULL_MASK, best, o),
                                    __shfl_xor_sync(FULL_MASK, index, o));
                    if (group == 0) {
                        best_values[warp][8 * n + 2 * tig + e] = best;
                        best_rows[warp][8 * n + 2 * tig + e] = index;
                    }
                }
            __syncthreads();
            if ((int)threadIdx.x < count) {
                const int t = threadIdx.x;
                float best = best_values[0][t];
                int index = best_rows[0][t];
                for (int k = 1; k < 8; k++) argmax_pick(best, index, best_values[k][t], best_rows[k][t]);
                values[(size_t)(t0 + t) * gridDim.x + blockIdx.x] = best;
                indices[(size_t)(t0 + t) * gridDim.x + blockIdx.x] = index;
            }
        #endif
        }

        // The opt-in int8 output head, as the CPU computes it (ob_int8_rows_from_bf16, ob_quantize_rows,
        // ob_int8_gemv). int8_rows_from_bf16: block r quantizes bf16 row r of w (`cols` wide) to int8 with one scale
        // per row (max|w| / 127, 1 for a zero row; round-half-even, clamped to +-127) into q, whose rows are
        // `stride` bytes (a multiple of 16, zero past `cols`).
        extern "C" __global__ void int8_rows_from_bf16(const unsigned short *w, int cols, int stride, i8 *q,
                                                       float *scales) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const unsigned short *row = w + (size_t)blockIdx.x * cols;
            float largest = 0.0f;
            for (int c = threadIdx.x; c < cols; c += blockDim.x) largest = fmaxf(largest, fabsf(bf16_value(row[c])));
            largest = block_max(largest);
            const float scale = largest > 0.0f ? largest / 127.0f : 1.0f;
            for (int c = threadIdx.x; c < stride; c += blockDim.x)
                q[(size_t)blockIdx.x * stride + c] =
                    c < cols ? (i8)fminf(127.0f, fmaxf(-127.0f, rintf(bf16_value(row[c]) / scale))) : (i8)0;
            if (threadIdx.x == 0) scales[blockIdx.x] = scale;
        }

        // Row blockIdx.x of the rows to quantize (row rows[blockIdx.x] of x, or row 0 without `rows`; rows x_width
        // floats apart, `width` of them each) to int8 with s = 127 / max(max|x|, 1e-5), round-half-even, clamped to
        // [-128, 127], into q + blockIdx.x * stride (zero up to `stride` bytes) and scales[blockIdx.x].
        extern "C" __global__ void quantize_rows(const float *x, int x_width, const int *rows, int width, int stride,
                                                 i8 *q, float *scales) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float *row = x + (size_t)(rows ? rows[blockIdx.x] : 0) * x_width;
            i8 *out = q + (size_t)blockIdx.x * stride;
            float largest = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x) largest = fmaxf(largest, fabsf(row[i]));
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            for (int i = threadIdx.x; i < stride; i += blockDim.x)
                out[i] = i < width ? (i8)fminf(127.0f, fmaxf(-128.0f, rintf(row[i] * s))) : (i8)0;
            if (threadIdx.x == 0) scales[blockIdx.x] = s;
        }

        // Most tokens a block of int8_gemm takes.
        #define INT8_HEAD_TOKENS \#(int8HeadTokens)

        // y[t * rows + r] = dot(q row r, token t's xq) * scales[r] / x_scales[t] for the tokens TOKENS * blockIdx.y
        // ... (of `tokens`, `stride` bytes apart in xq): the dots exact in integers, one warp a row, 16 bytes a
        // load, so the head is read once for every TOKENS tokens and each token's logits are bit for bit what one
        // token alone gets.
        template <int TOKENS>
        __device__ void int8_rows(const i8 *q, const float *scales, int rows, int stride, const i8 *xq,
                                  const float *x_scales, int tokens, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const int row = blockIdx.x * (blockDim.x >> 5) + warp;
            const int first = blockIdx.y * TOKENS, count = min(TOKENS, tokens - first);
            if (row >= rows) return;
            const int4 *r = (const int4 *)(q + (size_t)row * stride);
            const int4 *x = (const int4 *)(xq + (size_t)first * stride);
            const int pieces = stride / 16;
            int dots[TOKENS];
        #pragma unroll
            for (int t = 0; t < TOKENS; t++) dots[t] = 0;
            for (int g = lane; g < pieces; g += 32) {
                const uint4 w = load_once((const uint4 *)(r + g));
        #pragma unroll
                for (int t = 0; t < TOKENS; t++) {
                    if (t < count) {
                        const int4 a = x[t * pieces + g];
                        dots[t] = __dp4a((int)w.x, a.x, dots[t]);
                        dots[t] = __dp4a((int)w.y, a.y, dots[t]);
                        dots[t] = __dp4a((int)w.z, a.z, dots[t]);
                        dots[t] = __dp4a((int)w.w, a.w, dots[t]);
                    }
                }
            }
            const float scale = scales[row];
        #pragma unroll
            for (int t = 0; t < TOKENS; t++) {
                if (t < count) {
                    const int dot = warp_sum(dots[t]);
                    if (lane == 0) y[(size_t)(first + t) * rows + row] = (float)dot * scale / x_scales[first + t];
                }
            }
        }

        // int8_gemm on the int8 tensor cores (sm_80+): a block of 8 warps takes I8_MMA_ROWS rows of q and up to
        // I8_MMA_TOKENS tokens, a warp 16 rows and every token, with mma.sync m16n8k32 (exact int32 sums). Each 64
        // columns of a row go to a lane group's mmas permuted: lane (group, tig) holds bytes 16 tig ... 16 tig + 15
        // of rows group and group + 8 as its A slots of two mmas, and the same bytes of its token as B's, so every
        // product pairs a weight with its own activation. The dots are int8_rows' integers, so each token's logits
        // are bit for bit what it gets alone. The tokens' codes go through shared memory, I8_MMA_COLUMNS columns a
        // stage, rows padded by 64 bytes so the two groups of a quarter warp read different banks.
        #define I8_MMA_ROWS \#(int8TensorCoreRows)
        #define I8_MMA_TOKENS \#(int8TensorCoreTokens)
        #define I8_MMA_COLUMNS 256
        #define I8_MMA_PITCH (I8_MMA_COLUMNS + 64)
        extern "C" __global__ void __launch_bounds__(256) int8_gemm_mma(const i8 *q, const float *scales, int rows,
                                                                         int stride, const i8 *xq,
                                                                         const float *x_scales, int tokens, float *y) {
            __shared__ __align__(16) i8 staged[I8_MMA_TOKENS * I8_MMA_PITCH];
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = lane >> 2, tig = lane & 3;
            const int first_row = blockIdx.x * I8_MMA_ROWS + warp * 16, first = blockIdx.y * I8_MMA_TOKENS;
            const int count = min(I8_MMA_TOKENS, tokens - first);
            const int low = min(first_row + group, rows - 1), high = min(first_row + group + 8, rows - 1);
            const uint4 *row_low = (const uint4 *)(q + (size_t)low * stride);
            const uint4 *row_high = (const uint4 *)(q + (size_t)high * stride);
            int d[I8_MMA_TOKENS / 8][4];
        #pragma unroll
            for (int n = 0; n < I8_MMA_TOKENS / 8; n++)
        #pragma unroll
                for (int i = 0; i < 4; i++) d[n][i] = 0;
            for (int k0 = 0; k0 < stride; k0 += I8_MMA_COLUMNS) {
                const int width = min(I8_MMA_COLUMNS, stride - k0);
                __syncthreads();
                // The tokens' columns k0 ..< k0 + width, zeros past the last token and the row.
                for (int i = threadIdx.x; i < I8_MMA_TOKENS * (I8_MMA_COLUMNS / 16); i += blockDim.x) {
                    const int t = i / (I8_MMA_COLUMNS / 16), c = 16 * (i % (I8_MMA_COLUMNS / 16));
                    uint4 v = make_uint4(0, 0, 0, 0);
                    if (t < count && c < width) v = *(const uint4 *)(xq + (size_t)(first + t) * stride + k0 + c);
                    *(uint4 *)(staged + t * I8_MMA_PITCH + c) = v;
                }
                __syncthreads();
                for (int c = 0; c < width; c += 64) {
                    const int at = (k0 + c) / 16 + tig;
                    const bool in = c + 16 * tig < width;
                    const uint4 l = in ? load_once(row_low + at) : make_uint4(0, 0, 0, 0);
                    const uint4 h = in ? load_once(row_high + at) : make_uint4(0, 0, 0, 0);
        #pragma unroll
                    for (int n = 0; n < I8_MMA_TOKENS / 8; n++) {
                        const uint4 b = *(const uint4 *)(staged + (8 * n + group) * I8_MMA_PITCH + c + 16 * tig);
                        mma_int8(d[n], l.x, h.x, l.y, h.y, b.x, b.y);
                        mma_int8(d[n], l.z, h.z, l.w, h.w, b.z, b.w);
                    }
                }
            }
            // d[n][0], d[n][1]: row group, tokens 8 n + 2 tig and + 1; d[n][2], d[n][3]: row group + 8.
        #pragma unroll
            for (int n = 0; n < I8_MMA_TOKENS / 8; n++) {
        #pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int row = first_row + group + (i >= 2 ? 8 : 0), t = 8 * n + 2 * tig + (i & 1);
                    if (row < rows && t < count)
                        y[(size_t)(first + t) * rows + row] = (float)d[n][i] * scales[row] / x_scales[first + t];
                }
            }
        }

        // One token's int8 head (int8_rows<1>): a kernel of its own, since the loop over INT8_HEAD_TOKENS took one
        // sequence of the 2B-4T shape from 1,080 to 991 tokens/s on an H200.
        extern "C" __global__ void int8_gemv(const i8 *q, const float *scales, int rows, int stride, const i8 *xq,
                                             const float *x_scale, float *y) {
            int8_rows<1>(q, scales, rows, stride, xq, x_scale, 1, y);
        }

        // Up to INT8_HEAD_TOKENS tokens a block (int8_rows<INT8_HEAD_TOKENS>), where int8_gemm_mma cannot run.
        extern "C" __global__ void int8_gemm(const i8 *q, const float *scales, int rows, int stride, const i8 *xq,
                                             const float *x_scales, int tokens, float *y) {
            int8_rows<INT8_HEAD_TOKENS>(q, scales, rows, stride, xq, x_scales, tokens, y);
        }
        """#
}
