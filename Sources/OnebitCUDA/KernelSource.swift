/// The CUDA C source of every kernel, compiled by NVRTC for the GPU present (see ``KernelBuild``).
///
/// Layouts follow the CPU backend: float activations row-major `[tokens][width]`, the key/value cache
/// `[layer][position][kv_heads * head_dim]`. Ternary weights and int8 activations use the GPU layout described at
/// `ternary_rows`. NVRTC compiles with `--fmad=false` so that products and sums round as the CPU's do.
enum KernelSource {
    /// Dynamic shared memory of an `attention_rows` block: two stages of 32 keys (rows of 128 floats padded by 4)
    /// and 32 values.
    static let attentionRowsSharedBytes = 2 * (32 * 132 + 32 * 128) * 4

    /// Positions per block of the paged key/value cache (`KV_BLOCK`).
    static let keyValueBlockPositions = 16

    /// Stages of `ternary_matmul_mma`'s pipeline (`MMA_STAGES`) and 64-column chunks per stage (`MMA_CHUNKS`).
    /// Four stages of four chunks: on an H200, 512-token prompts at 30,364 tokens/s against 29,561 with two, a
    /// 64-sequence step about the same; eight chunks a stage leave one block an SM and are slower.
    static let mmaStages = 4
    static let mmaStageChunks = 4

    /// Dynamic shared memory of a `ternary_matmul_mma` block: per stage, the weight chunks of 64 rows and the
    /// activation chunks of 64 tokens (rows padded by 4 words).
    static var mmaSharedBytes: Int { mmaStages * (64 * mmaStageChunks * 16 + 64 * (mmaStageChunks * 16 + 4) * 4) }

    /// Keys one block of the top-k passes sorts (`TOP_CHUNK`), with half as many threads.
    static let topChunk = 2048

    static let text = #"""
        typedef unsigned char u8;
        typedef signed char i8;
        typedef unsigned int u32;
        typedef unsigned short u16;

        #define FULL_MASK 0xffffffffu
        #define ATTENTION_WARPS 8
        #define MAX_HEAD_DIM 256
        // NVRTC has no math.h, so no INFINITY.
        #define NEGATIVE_INFINITY __uint_as_float(0xff800000u)

        // Element kinds of dense matrices, as the host passes them.
        #define KIND_F32 0
        #define KIND_F16 1
        #define KIND_BF16 2

        // Programmatic dependent launch (sm_90+): a kernel launched to overlap the one before it waits for that
        // kernel's completion and memory before touching any buffer, and only then lets the next kernel start,
        // so at most one kernel runs ahead, doing only work that reads nothing a predecessor writes (prefetching
        // its weights). Without the launch attribute, and before sm_90, both are no-ops.
        #if __CUDA_ARCH__ >= 900
        #define AWAIT_PREVIOUS() asm volatile("griddepcontrol.wait;" ::: "memory")
        #define RELEASE_NEXT() asm volatile("griddepcontrol.launch_dependents;" ::: "memory")
        #else
        #define AWAIT_PREVIOUS()
        #define RELEASE_NEXT()
        #endif

        // Starts pulling `bytes` (a multiple of 16) at the 16-byte aligned `p` into L2, without waiting.
        __device__ __forceinline__ void prefetch_l2(const void *p, unsigned bytes) {
        #if __CUDA_ARCH__ >= 900
            if (bytes) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(p), "r"(bytes) : "memory");
        #endif
        }

        // dot += sum over 4 bytes of unsigned codes[i] * signed a[i].
        __device__ __forceinline__ int dot_codes(u32 codes, int a, int dot) {
            int r;
            asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(r) : "r"(codes), "r"(a), "r"(dot));
            return r;
        }

        // 16 bytes read once: keep them out of L1 so the activations, read by every warp, stay there.
        __device__ __forceinline__ uint4 load_once(const uint4 *p) {
            uint4 v;
            asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
            return v;
        }

        __device__ __forceinline__ int warp_sum(int v) {
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
            return v;
        }

        __device__ __forceinline__ float warp_sum(float v) {
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
            return v;
        }

        __device__ __forceinline__ double warp_sum(double v) {
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
            return v;
        }

        __device__ __forceinline__ float warp_max(float v) {
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
            return v;
        }

        __device__ __forceinline__ float bf16_value(u32 bits) { return __uint_as_float(bits << 16); }

        __device__ __forceinline__ float f16_value(u32 bits) {
            float f;
            unsigned short h = (unsigned short)bits;
            asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
            return f;
        }

        template <int KIND> __device__ __forceinline__ float element(const void *w, size_t i) {
            if (KIND == KIND_F32) return ((const float *)w)[i];
            if (KIND == KIND_F16) return f16_value(((const u16 *)w)[i]);
            return bf16_value(((const u16 *)w)[i]);
        }

        // Sum of v over the block (at most 32 warps); every thread gets the result. The warps' partials are summed
        // by a shuffle tree in every warp (the same order in each), not one after another: on a single-token step
        // these reductions are on the critical path of every norm.
        __device__ double block_sum(double v) {
            __shared__ double partial[32];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = (blockDim.x + 31) >> 5;
            v = warp_sum(v);
            if (lane == 0) partial[warp] = v;
            __syncthreads();
            const double total = warp_sum(lane < warps ? partial[lane] : 0.0);
            __syncthreads();
            return total;
        }

        __device__ float block_max(float v) {
            __shared__ float partial[32];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = (blockDim.x + 31) >> 5;
            v = warp_max(v);
            if (lane == 0) partial[warp] = v;
            __syncthreads();
            const float total = warp_max(lane < warps ? partial[lane] : 0.0f);
            __syncthreads();
            return total;
        }

        // 1 / sqrt(mean(x^2) + eps) as the CPU reference computes it: squares summed in double.
        __device__ float rms_inverse(const float *row, int width, float eps) {
            double sum = 0.0;
            for (int i = threadIdx.x; i < width; i += blockDim.x) sum += (double)row[i] * (double)row[i];
            sum = block_sum(sum);
            return 1.0f / sqrtf((float)(sum / (double)width) + eps);
        }

        // One block per token.
        extern "C" __global__ void rms_norm(const float *x, const float *weight, float eps, int width, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float *row = x + (size_t)blockIdx.x * width;
            const float inv = rms_inverse(row, width, eps);
            for (int i = threadIdx.x; i < width; i += blockDim.x)
                y[(size_t)blockIdx.x * width + i] = weight[i] * (row[i] * inv);
        }

        // RMSNorm then per-token int8 of one row by the whole block: s = 127 / max(max|y|, 1e-5),
        // q = clamp(rint(y * s)); the bytes of q past `width` stay zero. The row is read through L2 (`__ldcg`):
        // when the last block of a grid normalises what the other blocks wrote, its L1 may not have seen it.
        __device__ void norm_quantize_row(const float *row, const float *weight, float eps, int width, i8 *q,
                                          float *scale) {
            double sum = 0.0;
            for (int i = threadIdx.x; i < width; i += blockDim.x) {
                const float v = __ldcg(row + i);
                sum += (double)v * (double)v;
            }
            sum = block_sum(sum);
            const float inv = 1.0f / sqrtf((float)(sum / (double)width) + eps);
            float largest = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x)
                largest = fmaxf(largest, fabsf(weight[i] * (__ldcg(row + i) * inv)));
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            for (int i = threadIdx.x; i < width; i += blockDim.x) {
                const float v = rintf(weight[i] * (__ldcg(row + i) * inv) * s);
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

        // Called by every thread of every block of a grid once the block's outputs are written: the block that
        // arrives last (counted in *counter, which it resets for the next launch) normalises and quantizes the
        // row x of `width` elements into q and *scale, so the RMSNorm + quantize that follows a single-token
        // kernel needs no launch of its own. Does nothing when q is null.
        __device__ void last_block_norm_quantize(unsigned *counter, const float *x, const float *weight, float eps,
                                                 int width, i8 *q, float *scale) {
            __shared__ bool last;
            if (q == nullptr) return;
            __syncthreads();
            if (threadIdx.x == 0) {
                __threadfence();
                last = atomicAdd(counter, 1u) == gridDim.x * gridDim.y - 1;
            }
            __syncthreads();
            if (!last) return;
            __threadfence();
            norm_quantize_row(x, weight, eps, width, q, scale);
            if (threadIdx.x == 0) *counter = 0;
        }

        // dot(w, a) over one 64-column chunk: `words` its packed codes (layout below), `a` its 64 activations;
        // dot(code, a) - sum(a), exact in integers.
        __device__ __forceinline__ int chunk_dot(const u32 words[4], const int4 *a) {
            int dot = 0, sum = 0;
        #pragma unroll
            for (int m = 0; m < 4; m++) {
                const int4 v = a[m];
                const int act[4] = {v.x, v.y, v.z, v.w};
        #pragma unroll
                for (int j = 0; j < 4; j++) {
                    dot = dot_codes((words[m] >> (2 * j)) & 0x03030303u, act[j], dot);
                    sum = __dp4a(act[j], 0x01010101, sum);
                }
            }
            return dot - sum;
        }

        // y[t][r] = (sum_c w[r][c] q[t][c]) / q_scales[t] * w_scale, the dot product exact in integers.
        //
        // Weights: `chunks` 16-byte chunks of 64 columns per row. In word m of a chunk, byte i holds in bits
        // 2j..2j+1 the code w + 1 of column 16m + 4j + i, so (word >> 2j) & 0x03030303 lines up with the j-th
        // int32 of those 16 activations, and dot(w, a) = dot(code, a) - sum(a). Activations: `chunks * 64` bytes
        // per token, zero past the real width. Scales: one per tensor (`block_chunks` 0), or one per
        // `block_chunks` chunks of each row. One warp per row; blockIdx.y picks a tile of TOKEN_TILE tokens (more
        // tokens take more blocks along y, which reread the weights from L2). A tile of one token, the decode step,
        // needs far fewer registers, so more warps stream weights at once.
        template <int TOKEN_TILE>
        __device__ void ternary_rows(const uint4 *__restrict__ w, int rows, int chunks, const i8 *__restrict__ q,
                                     const float *__restrict__ q_scales, int tokens,
                                     const float *__restrict__ w_scales, int block_chunks, float *__restrict__ y) {
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const int row = blockIdx.x * (blockDim.x >> 5) + warp;
            if (row >= rows) return;
            const int t0 = blockIdx.y * TOKEN_TILE;
            const int count = min(TOKEN_TILE, tokens - t0);
            const size_t stride = (size_t)chunks * 64;
            const uint4 *weights = w + (size_t)row * chunks;
            int exact[TOKEN_TILE];
            float blocked[TOKEN_TILE];
        #pragma unroll
            for (int t = 0; t < TOKEN_TILE; t++) {
                exact[t] = 0;
                blocked[t] = 0.0f;
            }
            for (int c = lane; c < chunks; c += 32) {
                const uint4 packed = load_once(weights + c);
                const u32 words[4] = {packed.x, packed.y, packed.z, packed.w};
                const float block_scale =
                    block_chunks ? w_scales[(size_t)row * (chunks / block_chunks) + c / block_chunks] : 0.0f;
        #pragma unroll
                for (int t = 0; t < TOKEN_TILE; t++) {
                    if (t < count) {
                        const int d = chunk_dot(words, (const int4 *)(q + (size_t)(t0 + t) * stride) + c * 4);
                        if (block_chunks)
                            blocked[t] += (float)d * block_scale;
                        else
                            exact[t] += d;
                    }
                }
            }
        #pragma unroll
            for (int t = 0; t < TOKEN_TILE; t++) {
                if (t < count) {
                    if (block_chunks) {
                        const float total = warp_sum(blocked[t]);
                        if (lane == 0) y[(size_t)(t0 + t) * rows + row] = total / q_scales[t0 + t];
                    } else {
                        const int total = warp_sum(exact[t]);
                        if (lane == 0) y[(size_t)(t0 + t) * rows + row] = (float)total / q_scales[t0 + t] * w_scales[0];
                    }
                }
            }
        }

        extern "C" __global__ void ternary_matmul_1(const uint4 *w, int rows, int chunks, const i8 *q,
                                                    const float *q_scales, int tokens, const float *w_scales,
                                                    int block_chunks, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            ternary_rows<1>(w, rows, chunks, q, q_scales, tokens, w_scales, block_chunks, y);
        }

        extern "C" __global__ void ternary_matmul_8(const uint4 *w, int rows, int chunks, const i8 *q,
                                                    const float *q_scales, int tokens, const float *w_scales,
                                                    int block_chunks, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            ternary_rows<8>(w, rows, chunks, q, q_scales, tokens, w_scales, block_chunks, y);
        }

        // The products of ternary_rows for many tokens on the tensor cores (sm_80 and later), per-tensor scale only:
        // mma.sync m16n8k32 with int8 operands and exact int32 sums, so every y is bit for bit what ternary_rows
        // gives. A block of MMA_THREADS threads computes MMA_ROWS rows for MMA_TOKENS tokens: warps 0-3 each a 32 x 32
        // quarter from the first half of every stage's chunks, warps 4-7 the same quarters from the second half, their
        // sums added at the end (twice the warps of one quarter each, for the same shared memory: a step of few tokens
        // has few tiles, so more warps per tile hide more of the loads' latency). Weights and activations go through
        // shared memory MMA_CHUNKS 64-column chunks at a time with cp.async, MMA_STAGES stages deep, so the next
        // chunks load while the tensor cores work on these; each thread copies the same slots of every stage, so
        // their addresses are worked out once. A warp decodes its rows' codes into A fragments (byte i of
        // (word >> 2j) & 0x03030303 is the code of column 16m + 4j + i, so code - 1 per byte gives four columns in
        // order); weight chunks are swizzled and activation rows padded to MMA_STAGE_WORDS words so that fragment
        // loads hit different banks. Rows past the end load the last real one (and are not stored); tokens past the
        // end load nothing (their sums are not stored either), and a warp whose 32 tokens are all past it skips
        // them: loading the last real token in their place made a step of 16 sequences three times slower than one
        // of 64, every block reading the same line over and over. Chunks past the end of a stage are loaded but not
        // used. Few tokens make few tiles: the columns are then split over more blocks, whose integer sums add up
        // exactly in any order.
        #define MMA_ROWS 64
        #define MMA_TOKENS 64
        #define MMA_CHUNKS \#(mmaStageChunks)
        #define MMA_STAGES \#(mmaStages)
        #define MMA_STAGE_WORDS (MMA_CHUNKS * 16 + 4)
        #define MMA_THREADS 256
        #define MMA_A_SLOTS (MMA_ROWS * MMA_CHUNKS / MMA_THREADS)
        #define MMA_B_SLOTS (MMA_TOKENS * MMA_CHUNKS * 4 / MMA_THREADS)
        // Where chunk `chunk` of weight row `row` sits in a stage: the eight rows a warp's fragment loads read at
        // once then fall in eight different 16-byte bank groups (MMA_CHUNKS 2, 4 or 8).
        #define MMA_SWIZZLE(row, chunk) ((chunk) ^ (((row) / (8 / MMA_CHUNKS)) & (MMA_CHUNKS - 1)))
        // Code - 1 in each byte: every byte is lifted by 0x80 for the subtraction, so none borrows from the next.
        __device__ __forceinline__ u32 ternary_bytes(u32 word, int j) {
            return ((((word >> (2 * j)) & 0x03030303u) | 0x80808080u) - 0x01010101u) ^ 0x80808080u;
        }

        __device__ __forceinline__ void copy_async_16(void *shared, const void *global) {
        #if __CUDA_ARCH__ >= 800
            const unsigned address = (unsigned)__cvta_generic_to_shared(shared);
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(address), "l"(global) : "memory");
        #endif
        }

        // Up to three matrices of the same width that read the same activations (query, key and value; gate and
        // up) in one launch: their 64-row tiles laid end to end along blockIdx.x, matrix m's outputs in y_m, and,
        // when split, its exact sums in columns offset_m ... of partial[token][rows0 + rows1 + rows2].
        struct MmaMatrix {
            const uint4 *w;
            const float *scales;
            float *y;
            int rows, offset;
        };

        __device__ __forceinline__ MmaMatrix mma_matrix(int &tile, const uint4 *w0, const float *s0, float *y0,
                                                        int rows0, const uint4 *w1, const float *s1, float *y1,
                                                        int rows1, const uint4 *w2, const float *s2, float *y2,
                                                        int rows2) {
            const int tiles0 = (rows0 + MMA_ROWS - 1) / MMA_ROWS, tiles1 = (rows1 + MMA_ROWS - 1) / MMA_ROWS;
            if (tile < tiles0) return MmaMatrix{w0, s0, y0, rows0, 0};
            tile -= tiles0;
            if (tile < tiles1) return MmaMatrix{w1, s1, y1, rows1, rows0};
            tile -= tiles1;
            return MmaMatrix{w2, s2, y2, rows2, rows0 + rows1};
        }

        extern "C" __global__ void ternary_matmul_mma(int chunks, const i8 *q, const float *q_scales, int tokens,
                                                      int split_chunks, int *partial, const uint4 *w0,
                                                      const float *s0, float *y0, int rows0, const uint4 *w1,
                                                      const float *s1, float *y1, int rows1, const uint4 *w2,
                                                      const float *s2, float *y2, int rows2) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
        #if __CUDA_ARCH__ >= 800
            int tile = blockIdx.x;
            const MmaMatrix matrix = mma_matrix(tile, w0, s0, y0, rows0, w1, s1, y1, rows1, w2, s2, y2, rows2);
            const uint4 *w = matrix.w;
            const int rows = matrix.rows, total_rows = rows0 + rows1 + rows2;
            // MMA_STAGES stages of MMA_CHUNKS chunks of MMA_ROWS weight rows, then as many of MMA_TOKENS tokens.
            extern __shared__ __align__(16) uint4 mma_shared[];
            typedef uint4 AStage[MMA_ROWS][MMA_CHUNKS];
            typedef u32 BStage[MMA_TOKENS][MMA_STAGE_WORDS];
            AStage *a_stage = (AStage *)mma_shared;
            BStage *b_stage = (BStage *)(a_stage + MMA_STAGES);
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = lane >> 2, tig = lane & 3;
            const int quarter = warp & 3, k_first = (warp >> 2) * (MMA_CHUNKS / 2);
            const int warp_row = (quarter & 1) * 32, warp_token = (quarter >> 1) * 32;
            // blockIdx.y is the token tile plus, with `partial`, the share of the columns times the tiles: share z takes
            // chunks z * split_chunks ..< (z + 1) * split_chunks and adds its exact sums into partial[token][row]
            // (finish_products turns them into y).
            const int token_tiles = (tokens + MMA_TOKENS - 1) / MMA_TOKENS;
            const int row0 = tile * MMA_ROWS, t0 = (blockIdx.y % token_tiles) * MMA_TOKENS;
            const size_t stride = (size_t)chunks * 64;
            const int first = partial ? (blockIdx.y / token_tiles) * split_chunks : 0;
            const int last = partial ? min(chunks, first + split_chunks) : chunks;
            // This thread's slots of a stage: chunk a_chunk of rows a_row + i * (MMA_THREADS / MMA_CHUNKS), and
            // 16-byte piece b_piece of tokens b_token + j * (MMA_THREADS / (MMA_CHUNKS * 4)).
            const int a_row = threadIdx.x / MMA_CHUNKS, a_chunk = threadIdx.x % MMA_CHUNKS;
            const int a_slot = MMA_SWIZZLE(a_row, a_chunk);
            const uint4 *a_source[MMA_A_SLOTS];
        #pragma unroll
            for (int i = 0; i < MMA_A_SLOTS; i++)
                a_source[i] = w + (size_t)min(row0 + a_row + i * (MMA_THREADS / MMA_CHUNKS), rows - 1) * chunks;
            const int b_piece = threadIdx.x % (MMA_CHUNKS * 4), b_token = threadIdx.x / (MMA_CHUNKS * 4);
            const i8 *b_source[MMA_B_SLOTS];
        #pragma unroll
            for (int j = 0; j < MMA_B_SLOTS; j++)
                b_source[j] = q + (size_t)min(t0 + b_token + j * (MMA_THREADS / (MMA_CHUNKS * 4)), tokens - 1) *
                                      stride + (b_piece % 4) * 16;
            // Every stage commits a group, empty past the last chunk, so waiting for all but MMA_STAGES - 2 groups
            // always means the oldest stage has landed.
            auto load = [&](int buffer, int c) {
                if (c < last) {
        #pragma unroll
                    for (int i = 0; i < MMA_A_SLOTS; i++)
                        copy_async_16(&a_stage[buffer][a_row + i * (MMA_THREADS / MMA_CHUNKS)][a_slot],
                                      a_source[i] + min(c + a_chunk, last - 1));
                    const size_t offset = (size_t)min(c + b_piece / 4, last - 1) * 64;
        #pragma unroll
                    for (int j = 0; j < MMA_B_SLOTS; j++)
                        if (t0 + b_token + j * (MMA_THREADS / (MMA_CHUNKS * 4)) < tokens)
                            copy_async_16(&b_stage[buffer][b_token + j * (MMA_THREADS / (MMA_CHUNKS * 4))][b_piece * 4],
                                          b_source[j] + offset);
                }
                asm volatile("cp.async.commit_group;" ::: "memory");
            };
            int acc[2][4][4];
        #pragma unroll
            for (int m = 0; m < 2; m++)
        #pragma unroll
                for (int n = 0; n < 4; n++)
        #pragma unroll
                    for (int k = 0; k < 4; k++) acc[m][n][k] = 0;
        #pragma unroll
            for (int stage = 0; stage < MMA_STAGES - 1; stage++) load(stage, first + stage * MMA_CHUNKS);
            for (int c = first, buffer = 0; c < last; c += MMA_CHUNKS, buffer = (buffer + 1) % MMA_STAGES) {
                asm volatile("cp.async.wait_group %0;" :: "n"(MMA_STAGES - 2) : "memory");
                // Every warp is done with the stage the load below refills (the one before this).
                __syncthreads();
                load((buffer + MMA_STAGES - 1) % MMA_STAGES, c + (MMA_STAGES - 1) * MMA_CHUNKS);
        #pragma unroll
                for (int k = k_first; k < k_first + MMA_CHUNKS / 2; k++) {
                    if (c + k >= last || t0 + warp_token >= tokens) break;
                    uint4 packed[2][2];
        #pragma unroll
                    for (int m = 0; m < 2; m++)
        #pragma unroll
                        for (int h = 0; h < 2; h++)
                            packed[m][h] = a_stage[buffer][warp_row + 16 * m + 8 * h + group]
                                                  [MMA_SWIZZLE(warp_row + 16 * m + 8 * h + group, k)];
        #pragma unroll
                    for (int half = 0; half < 2; half++) {
                        u32 a[2][4];
        #pragma unroll
                        for (int m = 0; m < 2; m++) {
                            a[m][0] = ternary_bytes(half ? packed[m][0].z : packed[m][0].x, tig);
                            a[m][1] = ternary_bytes(half ? packed[m][1].z : packed[m][1].x, tig);
                            a[m][2] = ternary_bytes(half ? packed[m][0].w : packed[m][0].y, tig);
                            a[m][3] = ternary_bytes(half ? packed[m][1].w : packed[m][1].y, tig);
                        }
        #pragma unroll
                        for (int n = 0; n < 4; n++) {
                            const u32 *b = b_stage[buffer][warp_token + n * 8 + group] + k * 16 + 8 * half + tig;
                            const u32 b0 = b[0], b1 = b[4];
        #pragma unroll
                            for (int m = 0; m < 2; m++)
                                asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, "
                                    "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                                    : "+r"(acc[m][n][0]), "+r"(acc[m][n][1]), "+r"(acc[m][n][2]), "+r"(acc[m][n][3])
                                    : "r"(a[m][0]), "r"(a[m][1]), "r"(a[m][2]), "r"(a[m][3]), "r"(b0), "r"(b1));
                        }
                    }
                }
            }
            // Warps 4-7 hand their sums to the warps of the same quarters (through the stage memory, free once the
            // empty trailing groups are waited for and every warp is done).
            asm volatile("cp.async.wait_group 0;" ::: "memory");
            __syncthreads();
            int *handed = (int *)&b_stage[0][0][0];
            if (k_first) {
        #pragma unroll
                for (int m = 0; m < 2; m++)
        #pragma unroll
                    for (int n = 0; n < 4; n++)
        #pragma unroll
                        for (int k = 0; k < 4; k++) handed[((quarter * 32 + (m * 4 + n) * 4 + k) * 32) + lane] = acc[m][n][k];
            }
            __syncthreads();
            if (k_first) return;
        #pragma unroll
            for (int m = 0; m < 2; m++)
        #pragma unroll
                for (int n = 0; n < 4; n++)
        #pragma unroll
                    for (int k = 0; k < 4; k++) acc[m][n][k] += handed[((quarter * 32 + (m * 4 + n) * 4 + k) * 32) + lane];
            const float w_scale = matrix.scales[0];
        #pragma unroll
            for (int m = 0; m < 2; m++)
        #pragma unroll
                for (int n = 0; n < 4; n++)
        #pragma unroll
                    for (int k = 0; k < 4; k++) {
                        const int r = row0 + warp_row + 16 * m + group + 8 * (k >> 1);
                        const int t = t0 + warp_token + n * 8 + tig * 2 + (k & 1);
                        if (r < rows && t < tokens) {
                            if (partial)
                                atomicAdd(partial + (size_t)t * total_rows + matrix.offset + r, acc[m][n][k]);
                            else
                                matrix.y[(size_t)t * rows + r] = (float)acc[m][n][k] / q_scales[t] * w_scale;
                        }
                    }
        #endif
        }

        // y_m[t][r] = partial[t][offset_m + r] / q_scales[t] * s_m[0], the rescale ternary_matmul_mma does when it is
        // not split, for the (up to three) matrices of one launch; partial is left at zero for the next split
        // product. One thread per output of `tokens` tokens.
        extern "C" __global__ void finish_products(int *partial, int tokens, const float *q_scales, const float *s0,
                                                   float *y0, int rows0, const float *s1, float *y1, int rows1,
                                                   const float *s2, float *y2, int rows2) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int total = rows0 + rows1 + rows2;
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= tokens * total) return;
            const int t = i / total;
            int r = i % total;
            const float *s = s0;
            float *y = y0;
            int rows = rows0;
            if (r >= rows0) {
                r -= rows0;
                s = s1;
                y = y1;
                rows = rows1;
                if (r >= rows1) {
                    r -= rows1;
                    s = s2;
                    y = y2;
                    rows = rows2;
                }
            }
            y[(size_t)t * rows + r] = (float)partial[i] / q_scales[t] * s[0];
            partial[i] = 0;
        }

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
        // as three bf16 planes [plane][token][width], hi + mid + lo == x (each plane the bf16 rounding of what the
        // planes before leave), so that bf16 x bf16 products, exact in fp32, carry every bit of the activations.
        extern "C" __global__ void split_bf16(const float *x, int x_width, const int *x_rows, int tokens, int width,
                                              u16 *planes) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int t = blockIdx.y;
            for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < width; i += gridDim.x * blockDim.x) {
                float v = x[(size_t)x_rows[t] * x_width + i];
                for (int p = 0; p < 3; p++) {
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
            __shared__ __align__(16) u16 stage[2][3][HEAD_TOKENS][32];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
            const int r0 = blockIdx.x * (HEAD_WARPS * 16) + warp * 16;
            const int t0 = blockIdx.y * HEAD_TOKENS;
            const int count = min(HEAD_TOKENS, tokens - t0);
            const uint4 *wa = (const uint4 *)(w + (size_t)min(r0 + g, rows - 1) * cols);
            const uint4 *wb = (const uint4 *)(w + (size_t)min(r0 + g + 8, rows - 1) * cols);
            auto load = [&](int buffer, int k0) {
                for (int i = threadIdx.x; i < 3 * HEAD_TOKENS * 4; i += blockDim.x) {
                    const int p = i / (HEAD_TOKENS * 4), token = (i / 4) % HEAD_TOKENS, piece = i % 4;
                    const size_t source = ((size_t)p * tokens + t0 + token) * cols + k0 + 8 * piece;
                    if (token < count) copy_async_16(&stage[buffer][p][token][8 * piece], planes + source);
                }
                asm volatile("cp.async.commit_group;" ::: "memory");
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
                    asm volatile("cp.async.wait_group 1;" ::: "memory");
                } else {
                    asm volatile("cp.async.wait_group 0;" ::: "memory");
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
                        for (int p = 0; p < 3; p++) {
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

        // One token's row x (`width` floats) to int8 with s = 127 / max(max|x|, 1e-5), round-half-even, clamped to
        // [-128, 127], into q (zero up to `stride` bytes) and *scale; one block.
        extern "C" __global__ void quantize_row(const float *x, int width, int stride, i8 *q, float *scale) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            float largest = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x) largest = fmaxf(largest, fabsf(x[i]));
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
            for (int i = threadIdx.x; i < stride; i += blockDim.x)
                q[i] = i < width ? (i8)fminf(127.0f, fmaxf(-128.0f, rintf(x[i] * s))) : (i8)0;
            if (threadIdx.x == 0) *scale = s;
        }

        // y[r] = dot(q row r, xq) * scales[r] / x_scale: the dot exact in integers, one warp per row, 16 bytes a
        // load; rows `stride` bytes apart.
        extern "C" __global__ void int8_gemv(const i8 *q, const float *scales, int rows, int stride, const i8 *xq,
                                             const float *x_scale, float *y) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const int row = blockIdx.x * (blockDim.x >> 5) + warp;
            if (row >= rows) return;
            const int4 *r = (const int4 *)(q + (size_t)row * stride);
            const int4 *x = (const int4 *)xq;
            int dot = 0;
            for (int g = lane; g < stride / 16; g += 32) {
                const uint4 w = load_once((const uint4 *)(r + g));
                const int4 a = x[g];
                dot = __dp4a((int)w.x, a.x, dot);
                dot = __dp4a((int)w.y, a.y, dot);
                dot = __dp4a((int)w.z, a.z, dot);
                dot = __dp4a((int)w.w, a.w, dot);
            }
            dot = warp_sum(dot);
            if (lane == 0) y[row] = (float)dot * scales[row] / x_scale[0];
        }

        // x[t] = table[tokens[t]] in float; blockIdx.y is the token.
        template <int KIND> __device__ void embed_rows(const int *tokens, const void *table, int cols, float *x) {
            const int c = blockIdx.x * blockDim.x + threadIdx.x;
            if (c >= cols) return;
            x[(size_t)blockIdx.y * cols + c] = element<KIND>(table, (size_t)tokens[blockIdx.y] * cols + c);
        }

        extern "C" __global__ void embed_f32(const int *tokens, const void *table, int cols, float *x) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            embed_rows<KIND_F32>(tokens, table, cols, x);
        }
        extern "C" __global__ void embed_f16(const int *tokens, const void *table, int cols, float *x) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            embed_rows<KIND_F16>(tokens, table, cols, x);
        }
        extern "C" __global__ void embed_bf16(const int *tokens, const void *table, int cols, float *x) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            embed_rows<KIND_BF16>(tokens, table, cols, x);
        }

        // The cosine and sine of rotary pair i's angle at `position`, with the same float operations as the CPU
        // reference.
        __device__ __forceinline__ void rope_angle(float theta, int i, int head_dim, float position, float &c, float &s) {
            const float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            const float angle = position * inv_freq;
            c = cosf(angle);
            s = sinf(angle);
        }

        // out[i], out[i + half] = the NeoX rotation of x[i], x[i + half] by the angle of cosine c and sine s (out may
        // be x).
        __device__ __forceinline__ void rotate_pair(const float *x, float *out, int i, int half, float c, float s) {
            const float a = x[i], b = x[i + half];
            out[i] = a * c - b * s;
            out[i + half] = b * c + a * s;
        }

        // NeoX rotary embedding in place, element i paired with i + head_dim / 2; one block per token. Each pair's
        // angle is computed once for all heads (precise powf, cosf and sinf cost more than the rotations).
        extern "C" __global__ void rope_neox(float *x, int heads, int head_dim, const int *positions, float theta) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ float cosines[MAX_HEAD_DIM / 2], sines[MAX_HEAD_DIM / 2];
            const int half = head_dim / 2;
            const float pos = (float)positions[blockIdx.x];
            for (int i = threadIdx.x; i < half; i += blockDim.x) rope_angle(theta, i, head_dim, pos, cosines[i], sines[i]);
            __syncthreads();
            for (int k = threadIdx.x; k < heads * half; k += blockDim.x) {
                const int h = k / half, i = k % half;
                float *v = x + ((size_t)blockIdx.x * heads + h) * head_dim;
                rotate_pair(v, v, i, half, cosines[i], sines[i]);
            }
        }

        // The paged key/value cache: a sequence's positions live in blocks of KV_BLOCK positions, anywhere in device
        // memory, and a table of block addresses in position order says where (position p in blocks[p / KV_BLOCK]).
        // A block holds [layer][keys, values][KV_BLOCK positions][width] floats, as the CPU's pool does. A step of
        // several sequences passes the tables of all of them laid end to end, and `rows` says where row t's table
        // starts; where `rows` is null every row reads the one table.
        #define KV_BLOCK \#(keyValueBlockPositions)
        __device__ __forceinline__ const unsigned long long *row_blocks(const unsigned long long *tables,
                                                                      const int *rows, int t) {
            return rows ? tables + rows[t] : tables;
        }

        // Layer `layer`'s keys in the block at `block`: KV_BLOCK rows of `width` floats, the values' rows right after
        // them.
        __device__ __forceinline__ float *layer_keys(unsigned long long block, int layer, size_t width) {
            return (float *)block + (size_t)2 * layer * KV_BLOCK * width;
        }

        // The first `count` entries of a block table seen through a window of 32 of them, one per lane of a warp: a
        // warp finds a block by a shuffle instead of a load that the reads of its keys would wait on, and loads the
        // table again only every 32 blocks. Every lane of the warp must ask for the same entry.
        struct BlockWindow {
            const unsigned long long *blocks;
            int count, first;
            unsigned long long entry;

            __device__ __forceinline__ BlockWindow(const unsigned long long *blocks, int count)
                : blocks(blocks), count(count), first(-32), entry(0) {}

            __device__ __forceinline__ unsigned long long at(int index) {
                if (index < first || index >= first + 32) {
                    first = index;
                    const int e = index + (threadIdx.x & 31);
                    entry = e < count ? blocks[e] : 0ull;
                }
                return __shfl_sync(FULL_MASK, entry, index - first);
            }
        };

        // Layer `layer`'s key (`values` 0) or value (1) row of position p, `width` floats. The value row is always
        // KV_BLOCK * width floats after the key row.
        __device__ __forceinline__ float *kv_row(const unsigned long long *blocks, int layer, int p, int values,
                                                 size_t width) {
            return layer_keys(blocks[p / KV_BLOCK], layer, width) + ((size_t)values * KV_BLOCK + p % KV_BLOCK) * width;
        }

        // Copies the keys and values of token blockIdx.y to its position in one layer of its sequence's cache.
        extern "C" __global__ void store_kv(const float *k, const float *v, int width, const int *positions,
                                            const unsigned long long *tables, const int *rows, int layer) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= width) return;
            const int t = blockIdx.y;
            const unsigned long long *blocks = row_blocks(tables, rows, t);
            kv_row(blocks, layer, positions[t], 0, width)[i] = k[(size_t)t * width + i];
            kv_row(blocks, layer, positions[t], 1, width)[i] = v[(size_t)t * width + i];
        }

        // Token blockIdx.x of a step: the rotary embedding of its query and key heads in place (as rope_neox), then
        // its keys and values into one layer of its sequence's cache at its position (as store_kv), in one
        // launch instead of three. Where `sums` is not null, q, k and v are first made from the summed integers of
        // their split product (rows laid end to end, sum_rows per token; token scales sum_scales, weight scales
        // s_q[0], s_k[0], s_v[0]) as finish_products does.
        extern "C" __global__ void rope_store_rows(float *q, int heads, float *k, float *v, int kv_heads, int head_dim,
                                                   const int *positions, float theta,
                                                   const unsigned long long *tables, const int *rows, int layer, int *sums,
                                                   const float *sum_scales, int sum_rows, const float *s_q,
                                                   const float *s_k, const float *s_v) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ float cosines[MAX_HEAD_DIM / 2], sines[MAX_HEAD_DIM / 2];
            const int t = blockIdx.x, half = head_dim / 2;
            if (sums) {
                const int q_width = heads * head_dim, kv_width = kv_heads * head_dim;
                for (int i = threadIdx.x; i < sum_rows; i += blockDim.x) {
                    int *sum = sums + (size_t)t * sum_rows + i;
                    const float *s = i < q_width ? s_q : i < q_width + kv_width ? s_k : s_v;
                    const float value = (float)*sum / sum_scales[t] * s[0];
                    *sum = 0;
                    if (i < q_width)
                        q[(size_t)t * q_width + i] = value;
                    else if (i < q_width + kv_width)
                        k[(size_t)t * kv_width + i - q_width] = value;
                    else
                        v[(size_t)t * kv_width + i - q_width - kv_width] = value;
                }
                __syncthreads();
            }
            const int position = positions[t];
            for (int i = threadIdx.x; i < half; i += blockDim.x)
                rope_angle(theta, i, head_dim, (float)position, cosines[i], sines[i]);
            __syncthreads();
            const size_t width = (size_t)kv_heads * head_dim;
            const unsigned long long *blocks = row_blocks(tables, rows, t);
            float *k_row = kv_row(blocks, layer, position, 0, width), *v_row = kv_row(blocks, layer, position, 1, width);
            float *kt = k + (size_t)t * width;
            for (int p = threadIdx.x; p < (heads + kv_heads) * half; p += blockDim.x) {
                const int h = p / half, i = p % half;
                if (h < heads) {
                    float *x = q + ((size_t)t * heads + h) * head_dim;
                    rotate_pair(x, x, i, half, cosines[i], sines[i]);
                } else {
                    float *x = kt + (size_t)(h - heads) * head_dim;
                    rotate_pair(x, x, i, half, cosines[i], sines[i]);
                    k_row[(size_t)(h - heads) * head_dim + i] = x[i];
                    k_row[(size_t)(h - heads) * head_dim + i + half] = x[i + half];
                }
            }
            for (size_t i = threadIdx.x; i < width; i += blockDim.x) v_row[i] = v[(size_t)t * width + i];
        }

        // One warp's share of a head's attention: positions begin + warp, begin + warp + ATTENTION_WARPS, ... below
        // end, with an online softmax. Lane l holds dimensions l, l + 32, ... of the head; the warp leaves its
        // running maximum and sum in maxima[warp] and sums[warp] and its unnormalised output in part[warp], for the
        // block to merge after a barrier.
        __device__ __forceinline__ void warp_attend(const float *qh, const unsigned long long *blocks, int layer,
                                                    size_t kv_width, int kvh, int head_dim, int warp, int begin,
                                                    int end, float scale, float *maxima, float *sums,
                                                    float (*part)[MAX_HEAD_DIM]) {
            const int lane = threadIdx.x & 31;
            float qr[MAX_HEAD_DIM / 32], acc[MAX_HEAD_DIM / 32];
        #pragma unroll
            for (int i = 0; i < MAX_HEAD_DIM / 32; i++) {
                const int d = lane + 32 * i;
                qr[i] = d < head_dim ? qh[d] : 0.0f;
                acc[i] = 0.0f;
            }
            float m = NEGATIVE_INFINITY, l = 0.0f;
            // A warp takes few positions of a split, so it reads each one's block address itself rather than a
            // window of them (BlockWindow cost single-token decoding 15% on an H200).
            for (int p = begin + warp; p < end; p += ATTENTION_WARPS) {
                const float *kp = kv_row(blocks, layer, p, 0, kv_width) + (size_t)kvh * head_dim;
                const float *vp = kp + KV_BLOCK * kv_width;
                float dot = 0.0f;
        #pragma unroll
                for (int i = 0; i < MAX_HEAD_DIM / 32; i++) {
                    const int d = lane + 32 * i;
                    if (d < head_dim) dot += qr[i] * kp[d];
                }
                const float score = warp_sum(dot) * scale;
                const float next = fmaxf(m, score);
                const float correction = expf(m - next), e = expf(score - next);
                l = l * correction + e;
        #pragma unroll
                for (int i = 0; i < MAX_HEAD_DIM / 32; i++) {
                    const int d = lane + 32 * i;
                    if (d < head_dim) acc[i] = acc[i] * correction + e * vp[d];
                }
                m = next;
            }
            if (lane == 0) {
                maxima[warp] = m;
                sums[warp] = l;
            }
        #pragma unroll
            for (int i = 0; i < MAX_HEAD_DIM / 32; i++) {
                const int d = lane + 32 * i;
                if (d < head_dim) part[warp][d] = acc[i];
            }
        }

        // Causal grouped-query attention: block (head, token) over positions 0 ... positions[token]. Each warp
        // takes every ATTENTION_WARPS-th position with an online softmax; the warps' partial results are merged
        // at the end. Lane l holds dimensions l, l + 32, ... of the head. Each token reads its own sequence's cache,
        // so one launch serves a step of several sequences.
        extern "C" __global__ void attention(const float *q, int heads, int kv_heads,
                                             int head_dim, const int *positions, float scale, float *out,
                                             const unsigned long long *tables, const int *rows, int layer) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ float maxima[ATTENTION_WARPS], sums[ATTENTION_WARPS];
            __shared__ float partial[ATTENTION_WARPS][MAX_HEAD_DIM];
            const int h = blockIdx.x, t = blockIdx.y;
            const unsigned long long *blocks = row_blocks(tables, rows, t);
            const int warp = threadIdx.x >> 5;
            const int kvh = h / (heads / kv_heads);
            const size_t kv_width = (size_t)kv_heads * head_dim;
            const float *qh = q + ((size_t)t * heads + h) * head_dim;
            warp_attend(qh, blocks, layer, kv_width, kvh, head_dim, warp, 0, positions[t] + 1, scale, maxima, sums,
                        partial);
            __syncthreads();
            float top = NEGATIVE_INFINITY;
            for (int w = 0; w < ATTENTION_WARPS; w++) top = fmaxf(top, maxima[w]);
            float total = 0.0f;
            for (int w = 0; w < ATTENTION_WARPS; w++) total += sums[w] * expf(maxima[w] - top);
            for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
                float o = 0.0f;
                for (int w = 0; w < ATTENTION_WARPS; w++) o += partial[w][d] * expf(maxima[w] - top);
                out[((size_t)t * heads + h) * head_dim + d] = o / total;
            }
        }

        // A decoding step of several sequences, one token each, for heads of 128 dimensions and at most ROWS_GROUP
        // query heads per kv head: block (kv head, token) first does for its heads what rope_store_rows does for the
        // token (the query and key heads and the value made from the summed integers of their split product where
        // `sums` is not null, the query and key heads rotated where `rotate` is set, the key and value stored at the
        // token's position in its sequence's cache), then attends over the sequence. The
        // sequence's keys and values go through shared memory 32 positions at a time, copied by cp.async two stages
        // deep (the first two are requested before the kernel waits for its predecessor: earlier steps wrote those
        // positions); warp h serves query head h of the group: lane l scores position l of the stage, an online
        // softmax carries the maximum and the sum, and lane l accumulates dimensions 4l ... 4l + 3 of the output from
        // the stage's values. Every key and value is read from memory once for the whole group.
        #define ROWS_GROUP 4
        #define ROWS_HEAD_DIM 128
        #define ROWS_STAGE (2 * KV_BLOCK)
        // Key rows are padded by four floats, so the lanes' 16-byte reads of 32 different keys hit different banks.
        #define ROWS_KEY_STRIDE (ROWS_HEAD_DIM + 4)
        #define ROWS_STAGE_FLOATS (ROWS_STAGE * ROWS_KEY_STRIDE + ROWS_STAGE * ROWS_HEAD_DIM)

        // Copies 16 bytes, or writes 16 zero bytes where `bytes` is 0.
        __device__ __forceinline__ void copy_async_16_or_zero(void *shared, const void *global, int bytes) {
        #if __CUDA_ARCH__ >= 800
            const unsigned address = (unsigned)__cvta_generic_to_shared(shared);
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(address), "l"(global), "r"(bytes)
                         : "memory");
        #endif
        }

        extern "C" __global__ void __launch_bounds__(ROWS_GROUP * 32)
            attention_rows(float *q, int heads, float *k, float *v, int kv_heads, const int *positions, float theta,
                           int rotate, float scale, float *out, const unsigned long long *tables, const int *rows,
                           int layer,
                           int *sums, const float *sum_scales, int sum_rows, const float *s_q, const float *s_k,
                           const float *s_v) {
            extern __shared__ __align__(16) float staged[];
            __shared__ __align__(16) float queries[ROWS_GROUP][ROWS_HEAD_DIM];
            __shared__ __align__(16) float fresh[2][ROWS_HEAD_DIM];
            __shared__ float cosines[ROWS_HEAD_DIM / 2], sines[ROWS_HEAD_DIM / 2];
            const int kvh = blockIdx.x, t = blockIdx.y, group = heads / kv_heads;
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const unsigned long long *blocks = row_blocks(tables, rows, t);
            const size_t kv_width = (size_t)kv_heads * ROWS_HEAD_DIM, head = (size_t)kvh * ROWS_HEAD_DIM;
            // Positions below `position` are cached; the token's own key and value are in `fresh`.
            const int position = positions[t], length = position + 1;
            const int stages = (length + ROWS_STAGE - 1) / ROWS_STAGE;
            // A stage spans two cache blocks; positions past the cached ones read the last cached one's block (and
            // are zeroed).
            const int last = max(0, position - 1);
            BlockWindow window(blocks, last / KV_BLOCK + 1);
            auto load = [&](int stage) {
                float *k_stage = staged + (stage & 1) * ROWS_STAGE_FLOATS;
                float *v_stage = k_stage + ROWS_STAGE * ROWS_KEY_STRIDE;
                const int start = stage * ROWS_STAGE;
                const float *first = layer_keys(window.at(min(start, last) / KV_BLOCK), layer, kv_width) + head;
                const float *second =
                    layer_keys(window.at(min(start + KV_BLOCK, last) / KV_BLOCK), layer, kv_width) + head;
        #pragma unroll
                for (int n = 0; n < ROWS_STAGE * 32 / (ROWS_GROUP * 32); n++) {
                    const int i = threadIdx.x + n * ROWS_GROUP * 32;
                    const int j = i >> 5, piece = i & 31, p = start + j, cached = min(p, last);
                    const float *key = (j < KV_BLOCK ? first : second) + (size_t)(cached % KV_BLOCK) * kv_width + 4 * piece;
                    const int bytes = p < position ? 16 : 0;
                    copy_async_16_or_zero(k_stage + j * ROWS_KEY_STRIDE + 4 * piece, key, bytes);
                    copy_async_16_or_zero(v_stage + j * ROWS_HEAD_DIM + 4 * piece, key + KV_BLOCK * kv_width, bytes);
                }
                asm volatile("cp.async.commit_group;" ::: "memory");
            };
            load(0);
            if (stages > 1) load(1);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int q_width = heads * ROWS_HEAD_DIM;
            for (int i = threadIdx.x; i < (group + 2) * ROWS_HEAD_DIM; i += blockDim.x) {
                const int h = i / ROWS_HEAD_DIM, d = i % ROWS_HEAD_DIM;
                // Column of the query, key and value products laid end to end.
                const int column = h < group    ? (kvh * group + h) * ROWS_HEAD_DIM + d
                                   : h == group ? q_width + kvh * ROWS_HEAD_DIM + d
                                                : q_width + (int)kv_width + kvh * ROWS_HEAD_DIM + d;
                float value;
                if (sums) {
                    int *sum = sums + (size_t)t * sum_rows + column;
                    const float *s = h < group ? s_q : h == group ? s_k : s_v;
                    value = (float)*sum / sum_scales[t] * s[0];
                    *sum = 0;
                } else {
                    value = h < group    ? q[(size_t)t * q_width + column]
                            : h == group ? k[(size_t)t * kv_width + column - q_width]
                                         : v[(size_t)t * kv_width + column - q_width - kv_width];
                }
                if (h < group)
                    queries[h][d] = value;
                else
                    fresh[h - group][d] = value;
            }
            for (int i = threadIdx.x; i < ROWS_HEAD_DIM / 2; i += blockDim.x)
                rope_angle(theta, i, ROWS_HEAD_DIM, (float)position, cosines[i], sines[i]);
            __syncthreads();
            if (rotate) {
                for (int p = threadIdx.x; p < (group + 1) * ROWS_HEAD_DIM / 2; p += blockDim.x) {
                    const int h = p / (ROWS_HEAD_DIM / 2), i = p % (ROWS_HEAD_DIM / 2);
                    float *x = h < group ? queries[h] : fresh[0];
                    rotate_pair(x, x, i, ROWS_HEAD_DIM / 2, cosines[i], sines[i]);
                }
                __syncthreads();
            }
            for (int i = threadIdx.x; i < 2 * ROWS_HEAD_DIM; i += blockDim.x)
                kv_row(blocks, layer, position, i / ROWS_HEAD_DIM, kv_width)[head + i % ROWS_HEAD_DIM] =
                    fresh[i / ROWS_HEAD_DIM][i % ROWS_HEAD_DIM];
            const float4 *query = (const float4 *)queries[min(warp, group - 1)];
            float m = NEGATIVE_INFINITY, l = 0.0f;
            float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int stage = 0; stage < stages; stage++) {
                const float *k_stage = staged + (stage & 1) * ROWS_STAGE_FLOATS;
                const float *v_stage = k_stage + ROWS_STAGE * ROWS_KEY_STRIDE;
                if (stage + 1 < stages)
                    asm volatile("cp.async.wait_group 1;" ::: "memory");
                else
                    asm volatile("cp.async.wait_group 0;" ::: "memory");
                const int run = stage * ROWS_STAGE;
                if (position - run < ROWS_STAGE) {
                    // The token's own key and value, in the zeroed slot of its position.
                    const int j = position - run;
                    for (int i = threadIdx.x; i < 2 * ROWS_HEAD_DIM; i += blockDim.x) {
                        float *slot = i < ROWS_HEAD_DIM ? (float *)k_stage + j * ROWS_KEY_STRIDE
                                                        : (float *)v_stage + j * ROWS_HEAD_DIM;
                        slot[i % ROWS_HEAD_DIM] = fresh[i / ROWS_HEAD_DIM][i % ROWS_HEAD_DIM];
                    }
                }
                __syncthreads();
                if (warp < group) {
                    const int p = run + lane;
                    const float4 *key = (const float4 *)(k_stage + lane * ROWS_KEY_STRIDE);
                    // Eight running sums, so the products do not wait on one another: a warp serves one query head,
                    // and a single chain of 128 dependent multiply-adds per stage left it stalled most of the time.
                    float4 even = make_float4(0.0f, 0.0f, 0.0f, 0.0f), odd = even;
        #pragma unroll
                    for (int d = 0; d < ROWS_HEAD_DIM / 4; d += 2) {
                        const float4 k0 = key[d], a0 = query[d], k1 = key[d + 1], a1 = query[d + 1];
                        even.x = __fmaf_rn(a0.x, k0.x, even.x);
                        even.y = __fmaf_rn(a0.y, k0.y, even.y);
                        even.z = __fmaf_rn(a0.z, k0.z, even.z);
                        even.w = __fmaf_rn(a0.w, k0.w, even.w);
                        odd.x = __fmaf_rn(a1.x, k1.x, odd.x);
                        odd.y = __fmaf_rn(a1.y, k1.y, odd.y);
                        odd.z = __fmaf_rn(a1.z, k1.z, odd.z);
                        odd.w = __fmaf_rn(a1.w, k1.w, odd.w);
                    }
                    const float dot = ((even.x + odd.x) + (even.y + odd.y)) + ((even.z + odd.z) + (even.w + odd.w));
                    const float score = p < length ? dot * scale : NEGATIVE_INFINITY;
                    // Position run < length, so every stage has a finite maximum.
                    const float next = fmaxf(m, warp_max(score));
                    const float correction = expf(m - next), e = p < length ? expf(score - next) : 0.0f;
                    l = l * correction + warp_sum(e);
                    acc.x *= correction;
                    acc.y *= correction;
                    acc.z *= correction;
                    acc.w *= correction;
                    m = next;
                    // Every position of the stage, also those past the sequence: their values are zero (copied as
                    // zeros) and so are their weights, and a loop of fixed length unrolls.
        #pragma unroll 8
                    for (int j = 0; j < ROWS_STAGE; j++) {
                        const float4 value = *(const float4 *)&v_stage[j * ROWS_HEAD_DIM + 4 * lane];
                        const float w = __shfl_sync(FULL_MASK, e, j);
                        acc.x = __fmaf_rn(w, value.x, acc.x);
                        acc.y = __fmaf_rn(w, value.y, acc.y);
                        acc.z = __fmaf_rn(w, value.z, acc.z);
                        acc.w = __fmaf_rn(w, value.w, acc.w);
                    }
                }
                // The stage after next overwrites this one.
                __syncthreads();
                if (stage + 2 < stages) load(stage + 2);
            }
            if (warp < group) {
                float4 *target = (float4 *)(out + ((size_t)t * heads + (size_t)kvh * group + warp) * ROWS_HEAD_DIM);
                target[lane] = make_float4(acc.x / l, acc.y / l, acc.z / l, acc.w / l);
            }
        }

        // Causal attention of a prompt chunk, for head_dim up to PREFILL_HEAD_DIM: block (kv head, tile of
        // `tile_tokens` tokens) serves every query head of the group for those tokens (at most PREFILL_PAIRS
        // token-head pairs, two per warp), so each key and value is read once per tile, staged in
        // shared memory PREFILL_KEYS positions at a time (key rows padded by four words, so the lanes' 16-byte reads of
        // different keys hit different banks).
        // Lane l scores key l of the stage against a pair's query; an online softmax per pair carries the maximum,
        // the sum and the output (dimensions l, l + 32, ...) across stages.
        #define PREFILL_KEYS (2 * KV_BLOCK)
        #define PREFILL_PAIRS 16
        #define PREFILL_HEAD_DIM 128
        extern "C" __global__ void attention_prefill(const float *q, const unsigned long long *blocks, int layer,
                                                     int heads, int kv_heads, int head_dim, const int *positions,
                                                     int tokens, int tile_tokens, float scale, float *out) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ __align__(16) float queries[PREFILL_PAIRS][PREFILL_HEAD_DIM];
            __shared__ __align__(16) float keys[PREFILL_KEYS][PREFILL_HEAD_DIM + 4];
            __shared__ __align__(16) float values[PREFILL_KEYS][PREFILL_HEAD_DIM];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
            const int kvh = blockIdx.x, group = heads / kv_heads;
            const int t0 = blockIdx.y * tile_tokens, count = min(tile_tokens, tokens - t0);
            const int pairs = count * group;
            const size_t kv_width = (size_t)kv_heads * head_dim;
            int last = 0;
            for (int i = 0; i < count; i++) last = max(last, positions[t0 + i]);
            for (int i = threadIdx.x; i < pairs * head_dim; i += blockDim.x) {
                const int pair = i / head_dim, d = i % head_dim;
                const int t = t0 + pair / group, h = kvh * group + pair % group;
                queries[pair][d] = q[((size_t)t * heads + h) * head_dim + d];
            }
            float m[PREFILL_PAIRS / 8], l[PREFILL_PAIRS / 8], acc[PREFILL_PAIRS / 8][PREFILL_HEAD_DIM / 32];
        #pragma unroll
            for (int p = 0; p < PREFILL_PAIRS / 8; p++) {
                m[p] = NEGATIVE_INFINITY;
                l[p] = 0.0f;
        #pragma unroll
                for (int i = 0; i < PREFILL_HEAD_DIM / 32; i++) acc[p][i] = 0.0f;
            }
            BlockWindow window(blocks, last / KV_BLOCK + 1);
            for (int k0 = 0; k0 <= last; k0 += PREFILL_KEYS) {
                __syncthreads();
                // The stage's keys lie in two cache blocks (the second not read where the last key is in the first).
                const float *first = layer_keys(window.at(k0 / KV_BLOCK), layer, kv_width) + (size_t)kvh * head_dim;
                const float *second =
                    layer_keys(window.at(min(k0 + KV_BLOCK, last) / KV_BLOCK), layer, kv_width) + (size_t)kvh * head_dim;
                const int quads = head_dim / 4;
                for (int i = threadIdx.x; i < PREFILL_KEYS * quads; i += blockDim.x) {
                    const int j = i / quads, d = 4 * (i % quads);
                    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                    const float *key = (j < KV_BLOCK ? first + (size_t)j * kv_width
                                                     : second + (size_t)(j - KV_BLOCK) * kv_width) + d;
                    const bool real = k0 + j <= last;
                    *(float4 *)&keys[j][d] = real ? *(const float4 *)key : zero;
                    *(float4 *)&values[j][d] = real ? *(const float4 *)(key + KV_BLOCK * kv_width) : zero;
                }
                __syncthreads();
        #pragma unroll
                for (int p = 0; p < PREFILL_PAIRS / 8; p++) {
                    const int pair = warp + p * warps;
                    if (pair >= pairs) continue;
                    const int position = positions[t0 + pair / group];
                    if (k0 > position) continue;
                    float score = NEGATIVE_INFINITY;
                    if (k0 + lane <= position) {
                        // Four running sums, so the products do not wait on one another.
                        float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                        for (int d = 0; d < head_dim; d += 4) {
                            const float4 a = *(const float4 *)&queries[pair][d];
                            const float4 b = *(const float4 *)&keys[lane][d];
                            sum.x += a.x * b.x;
                            sum.y += a.y * b.y;
                            sum.z += a.z * b.z;
                            sum.w += a.w * b.w;
                        }
                        score = ((sum.x + sum.y) + (sum.z + sum.w)) * scale;
                    }
                    const float next = fmaxf(m[p], warp_max(score));
                    const float correction = expf(m[p] - next);
                    const float e = score == NEGATIVE_INFINITY ? 0.0f : expf(score - next);
                    l[p] = l[p] * correction + warp_sum(e);
        #pragma unroll
                    for (int i = 0; i < PREFILL_HEAD_DIM / 32; i++) acc[p][i] *= correction;
                    for (int j = 0; j < PREFILL_KEYS; j++) {
                        const float weight = __shfl_sync(FULL_MASK, e, j);
        #pragma unroll
                        for (int i = 0; i < PREFILL_HEAD_DIM / 32; i++)
                            if (lane + 32 * i < head_dim) acc[p][i] += weight * values[j][lane + 32 * i];
                    }
                    m[p] = next;
                }
            }
        #pragma unroll
            for (int p = 0; p < PREFILL_PAIRS / 8; p++) {
                const int pair = warp + p * warps;
                if (pair >= pairs) continue;
                const int t = t0 + pair / group, h = kvh * group + pair % group;
        #pragma unroll
                for (int i = 0; i < PREFILL_HEAD_DIM / 32; i++)
                    if (lane + 32 * i < head_dim)
                        out[((size_t)t * heads + h) * head_dim + lane + 32 * i] = acc[p][i] / l[p];
            }
        }

        extern "C" __global__ void relu2_mul(float *gate, const float *up, int n) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            const float r = fmaxf(gate[i], 0.0f);
            gate[i] = r * r * up[i];
        }

        extern "C" __global__ void silu_mul(float *gate, const float *up, int n) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
        }

        extern "C" __global__ void add_rows(float *x, const float *delta, int n) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) x[i] += delta[i];
        }

        // ---- Decode-step kernels (one token) ----

        // The rescaled product of row `row` of a ternary matrix with one token's int8 activations, in every lane of
        // the warp; the same operations in the same order as ternary_rows<1>, so the result is bit for bit the same.
        __device__ __forceinline__ float ternary_row_1(const uint4 *__restrict__ w, int row, int chunks,
                                                       const i8 *__restrict__ q, float q_scale,
                                                       const float *__restrict__ w_scales, int block_chunks) {
            const int lane = threadIdx.x & 31;
            const uint4 *weights = w + (size_t)row * chunks;
            int exact = 0;
            float blocked = 0.0f;
            for (int c = lane; c < chunks; c += 32) {
                const uint4 packed = load_once(weights + c);
                const u32 words[4] = {packed.x, packed.y, packed.z, packed.w};
                const float block_scale =
                    block_chunks ? w_scales[(size_t)row * (chunks / block_chunks) + c / block_chunks] : 0.0f;
                const int d = chunk_dot(words, (const int4 *)q + c * 4);
                if (block_chunks)
                    blocked += (float)d * block_scale;
                else
                    exact += d;
            }
            if (block_chunks) return warp_sum(blocked) / q_scale;
            return (float)warp_sum(exact) / q_scale * w_scales[0];
        }

        // Up to three ternary products of the same token's activations in one launch, one warp per output row.
        // activation 0: warp g computes row g of the rows of matrices 0, 1, 2 laid end to end; y[row] = product,
        // and residual[row] += product where residual is not null (the residual add folded into the projection).
        // activation 1 (relu^2) or 2 (silu): matrices 0 (gate) and 1 (up) have the same rows; warp g computes row g
        // of both and writes y0[g] = act(gate) * up, y1[g] = up, as gated activation after the two products would.
        __device__ void fused_products(const i8 *q, const float *q_scales, int chunks, int activation,
                                       const uint4 *w0, const float *s0, int b0, int rows0, float *y0, float *r0,
                                       const uint4 *w1, const float *s1, int b1, int rows1, float *y1, float *r1,
                                       const uint4 *w2, const float *s2, int b2, int rows2, float *y2, float *r2) {
            const int lane = threadIdx.x & 31;
            int g = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
            const float qs = q_scales[0];
            if (activation) {
                if (g >= rows0) return;
                const float a = ternary_row_1(w0, g, chunks, q, qs, s0, b0);
                const float b = ternary_row_1(w1, g, chunks, q, qs, s1, b1);
                if (lane == 0) {
                    float gated;
                    if (activation == 1) {
                        const float r = fmaxf(a, 0.0f);
                        gated = r * r * b;
                    } else {
                        gated = a / (1.0f + expf(-a)) * b;
                    }
                    y0[g] = gated;
                    y1[g] = b;
                }
                return;
            }
            const uint4 *w;
            const float *s;
            int b;
            float *y, *r;
            if (g < rows0) {
                w = w0; s = s0; b = b0; y = y0; r = r0;
            } else if ((g -= rows0) < rows1) {
                w = w1; s = s1; b = b1; y = y1; r = r1;
            } else if ((g -= rows1) < rows2) {
                w = w2; s = s2; b = b2; y = y2; r = r2;
            } else {
                return;
            }
            const float v = ternary_row_1(w, g, chunks, q, qs, s, b);
            if (lane == 0) {
                y[g] = v;
                if (r) r[g] += v;
            }
        }

        // Asks L2 for the weight rows this block of fused_products will read: rows first ..< first + count of the
        // matrices laid end to end (activation 0), or of both gate and up. Issued before waiting for the kernel
        // before, so the weights stream in while that kernel still runs.
        __device__ void prefetch_products(int chunks, int activation, const uint4 *w0, int rows0, const uint4 *w1,
                                          int rows1, const uint4 *w2, int rows2) {
            if (threadIdx.x != 0) return;
            const int first = blockIdx.x * (blockDim.x >> 5), count = blockDim.x >> 5;
            const unsigned row_bytes = (unsigned)chunks * 16u;
            if (activation) {
                const int n = max(0, min(count, rows0 - first));
                prefetch_l2(w0 + (size_t)first * chunks, n * row_bytes);
                prefetch_l2(w1 + (size_t)first * chunks, n * row_bytes);
                return;
            }
            const uint4 *ws[3] = {w0, w1, w2};
            const int rows[3] = {rows0, rows1, rows2};
            int begin = first, end = first + count;
            for (int m = 0; m < 3 && begin < end; m++) {
                if (begin < rows[m]) {
                    const int n = min(end, rows[m]) - begin;
                    prefetch_l2(ws[m] + (size_t)begin * chunks, n * row_bytes);
                    begin += n;
                }
                begin -= rows[m];
                end -= rows[m];
            }
        }

        // The products of fused_products, then (norm_q not null) the RMSNorm + int8 quantization of the row
        // norm_x as last_block_norm_quantize does it: the residual or gated row the products just wrote.
        extern "C" __global__ void ternary_fused_1(const i8 *q, const float *q_scales, int chunks, int activation,
                                                   const uint4 *w0, const float *s0, int b0, int rows0, float *y0,
                                                   float *r0, const uint4 *w1, const float *s1, int b1, int rows1,
                                                   float *y1, float *r1, const uint4 *w2, const float *s2, int b2,
                                                   int rows2, float *y2, float *r2, unsigned *counter,
                                                   const float *norm_x, const float *norm_w, float eps,
                                                   int norm_width, i8 *norm_q, float *norm_scale) {
            prefetch_products(chunks, activation, w0, rows0, w1, rows1, w2, rows2);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            fused_products(q, q_scales, chunks, activation, w0, s0, b0, rows0, y0, r0, w1, s1, b1, rows1, y1, r1, w2,
                           s2, b2, rows2, y2, r2);
            last_block_norm_quantize(counter, norm_x, norm_w, eps, norm_width, norm_q, norm_scale);
        }

        // Merges the `splits` (at most 32) partial results of one head at `base` into out[0 ..< head_dim]: the
        // first warp finds the maximum and each split's weight, lane s for split s. Reads through L2: other
        // blocks wrote the partials.
        __device__ void combine_head(const float *base, int splits, int head_dim, float *out) {
            __shared__ float weights[32];
            __shared__ float total;
            const int lane = threadIdx.x & 31;
            if (threadIdx.x < 32) {
                const float *tail = base + (size_t)lane * (head_dim + 2) + head_dim;
                const float m = lane < splits ? __ldcg(tail) : NEGATIVE_INFINITY;
                const float l = lane < splits ? __ldcg(tail + 1) : 0.0f;
                const float top = warp_max(m);
                const float w = m != NEGATIVE_INFINITY ? expf(m - top) : 0.0f;
                weights[lane] = w;
                const float sum = warp_sum(l * w);
                if (lane == 0) total = sum;
            }
            __syncthreads();
            for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
                float o = 0.0f;
                for (int s = 0; s < splits; s++) o += __ldcg(base + (size_t)s * (head_dim + 2) + d) * weights[s];
                out[d] = o / total;
            }
        }

        // out = the NeoX rotary embedding of one head `x` at `position`, computed as rope_neox does (out may be in
        // shared or global memory, but not x).
        __device__ void rotate_head(const float *x, int head_dim, int position, float theta, float *out) {
            const int half = head_dim / 2;
            const float pos = (float)position;
            for (int i = threadIdx.x; i < half; i += blockDim.x) {
                float c, s;
                rope_angle(theta, i, head_dim, pos, c, s);
                rotate_pair(x, out, i, half, c, s);
            }
        }

        // Attention of one token, split over the cached positions: block (head, split) takes a contiguous share
        // of positions 0 ... positions[0] (the length read from device memory, so one launch serves every
        // position) and writes its unnormalised output, running maximum and sum to partial[head][split]. The last
        // split of a head to finish (counted in counters[head]) merges the head's splits into out; the last head
        // to finish (counters[heads]) then normalises and quantizes out as last_block_norm_quantize does, where
        // norm_q is not null. The counters are left at zero for the next launch. Where k_new is not null, q and
        // k_new are the new token's query and key before the rotary embedding, and k_new and v_new go into the
        // cache here (theta: the rotary base), so no launch of rope_store_rows precedes this one.
        extern "C" __global__ void attention_split(const float *q, const unsigned long long *blocks, int layer,
                                                   int heads, int kv_heads, int head_dim, const int *positions, float scale,
                                                   float *partial, float *out, unsigned *counters,
                                                   const float *k_new, const float *v_new, float theta,
                                                   const float *norm_w, float eps, i8 *norm_q, float *norm_scale) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ bool last;
            __shared__ float maxima[ATTENTION_WARPS], sums[ATTENTION_WARPS];
            __shared__ float part[ATTENTION_WARPS][MAX_HEAD_DIM];
            __shared__ float rotated[MAX_HEAD_DIM];
            const int h = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
            const int warp = threadIdx.x >> 5;
            const int kvh = h / (heads / kv_heads);
            const size_t kv_width = (size_t)kv_heads * head_dim;
            const float *qh = q + (size_t)h * head_dim;
            const int length = positions[0] + 1;
            const int share = (length + splits - 1) / splits;
            const int begin = split * share, end = min(length, begin + share);
            if (k_new) {
                // The rotary embedding and the cache store of rope_store_rows, done here: every block rotates its
                // query head into shared memory, and the blocks whose share holds the new position rotate and
                // store that position's key and value (the heads of one group store the same values), which
                // only they read.
                const int position = positions[0];
                rotate_head(qh, head_dim, position, theta, rotated);
                if (begin <= position && position < end) {
                    float *k_row = kv_row(blocks, layer, position, 0, kv_width) + (size_t)kvh * head_dim;
                    float *v_row = kv_row(blocks, layer, position, 1, kv_width) + (size_t)kvh * head_dim;
                    rotate_head(k_new + (size_t)kvh * head_dim, head_dim, position, theta, k_row);
                    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) v_row[d] = v_new[(size_t)kvh * head_dim + d];
                }
                __syncthreads();
                qh = rotated;
            }
            warp_attend(qh, blocks, layer, kv_width, kvh, head_dim, warp, begin, end, scale, maxima, sums, part);
            __syncthreads();
            float top = NEGATIVE_INFINITY;
            for (int w = 0; w < ATTENTION_WARPS; w++) top = fmaxf(top, maxima[w]);
            float *out_split = partial + ((size_t)h * splits + split) * (head_dim + 2);
            const bool empty = top == NEGATIVE_INFINITY;
            float total = 0.0f;
            if (!empty)
                for (int w = 0; w < ATTENTION_WARPS; w++)
                    if (maxima[w] != NEGATIVE_INFINITY) total += sums[w] * expf(maxima[w] - top);
            for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
                float o = 0.0f;
                if (!empty)
                    for (int w = 0; w < ATTENTION_WARPS; w++)
                        if (maxima[w] != NEGATIVE_INFINITY) o += part[w][d] * expf(maxima[w] - top);
                out_split[d] = o;
            }
            if (threadIdx.x == 0) {
                out_split[head_dim] = top;
                out_split[head_dim + 1] = total;
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                __threadfence();
                last = atomicAdd(counters + h, 1u) == (unsigned)splits - 1;
            }
            __syncthreads();
            if (!last) return;
            __threadfence();
            combine_head(partial + (size_t)h * splits * (head_dim + 2), splits, head_dim, out + (size_t)h * head_dim);
            if (threadIdx.x == 0) counters[h] = 0;
            if (norm_q == nullptr) return;
            __syncthreads();
            if (threadIdx.x == 0) {
                __threadfence();
                last = atomicAdd(counters + heads, 1u) == (unsigned)heads - 1;
            }
            __syncthreads();
            if (!last) return;
            __threadfence();
            norm_quantize_row(out, norm_w, eps, heads * head_dim, norm_q, norm_scale);
            if (threadIdx.x == 0) counters[heads] = 0;
        }

        // Argmax in two launches: block (b, r) of argmax_partial reduces its stretch of row r of x (rows of n values)
        // to (value, index) in values[r * gridDim.x + b], indices[...]; block r of argmax_final reduces row r's
        // `count` pairs into result[r]. The lowest index wins ties; 0 when nothing compares larger than -infinity,
        // as the host's argmax would give for such a row.
        __device__ __forceinline__ void argmax_pick(float &best, int &index, float v, int i) {
            if (v > best || (v == best && i < index)) {
                best = v;
                index = i;
            }
        }

        __device__ void argmax_block(float best, int index, float *value_out, int *index_out) {
            __shared__ float best_values[32];
            __shared__ int best_indices[32];
            for (int o = 16; o > 0; o >>= 1)
                argmax_pick(best, index, __shfl_xor_sync(FULL_MASK, best, o), __shfl_xor_sync(FULL_MASK, index, o));
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            if (lane == 0) {
                best_values[warp] = best;
                best_indices[warp] = index;
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                for (int w = 1; w < (int)(blockDim.x >> 5); w++) argmax_pick(best, index, best_values[w], best_indices[w]);
                *value_out = best;
                *index_out = index;
            }
        }

        extern "C" __global__ void argmax_partial(const float *x, int n, float *values, int *indices) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            x += (size_t)blockIdx.y * n;
            values += (size_t)blockIdx.y * gridDim.x;
            indices += (size_t)blockIdx.y * gridDim.x;
            float best = NEGATIVE_INFINITY;
            int index = 0x7fffffff;
            for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
                const float v = x[i];
                if (v > best) {
                    best = v;
                    index = i;
                }
            }
            argmax_block(best, index, values + blockIdx.x, indices + blockIdx.x);
        }

        extern "C" __global__ void argmax_final(const float *values, const int *indices, int count, int *result) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ float value;
            __shared__ int index;
            values += (size_t)blockIdx.x * count;
            indices += (size_t)blockIdx.x * count;
            float best = NEGATIVE_INFINITY;
            int at = 0x7fffffff;
            for (int i = threadIdx.x; i < count; i += blockDim.x) argmax_pick(best, at, values[i], indices[i]);
            argmax_block(best, at, &value, &index);
            if (threadIdx.x == 0) result[blockIdx.x] = index == 0x7fffffff ? 0 : index;
        }

        // The largest logits of rows for top-k sampling, in passes: block (c, r) sorts TOP_CHUNK keys of row r, chunk
        // c, in shared memory (a bitonic sort, two keys a thread) and keeps the first `keep`. The key is the host's
        // ranking key (Sampler.ranked): the logit's order-preserving bits inverted in the high word, the token in the
        // low one, so ascending keys are the most likely logits first and the lower token first on ties; a logit
        // that is not finite, and the padding past the row, get the largest key. top_keys_of_logits makes the keys of
        // `columns`-wide rows of logits, top_keys ranks `columns` keys a row from an earlier pass; each pass leaves
        // gridDim.x * keep keys a row, until one chunk is left.
        #define TOP_CHUNK \#(topChunk)
        __device__ __forceinline__ unsigned long long ranking_key(float logit, int token) {
            if (!isfinite(logit)) return ~0ull;
            // -0 and 0 are equal logits: one bit pattern for both keeps the lower token first.
            const u32 bits = __float_as_uint(logit == 0.0f ? 0.0f : logit);
            const u32 ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
            return ((unsigned long long)~ordered << 32) | (u32)token;
        }

        __device__ void sort_chunk(unsigned long long *keys) {
            for (int size = 2; size <= TOP_CHUNK; size <<= 1) {
                for (int stride = size >> 1; stride > 0; stride >>= 1) {
                    __syncthreads();
                    const int a = 2 * threadIdx.x - (threadIdx.x & (stride - 1)), b = a + stride;
                    const unsigned long long x = keys[a], y = keys[b];
                    if ((x > y) == ((a & size) == 0)) {
                        keys[a] = y;
                        keys[b] = x;
                    }
                }
            }
            __syncthreads();
        }

        __device__ void keep_first(const unsigned long long *keys, int keep, unsigned long long *out) {
            out += ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * keep;
            for (int i = threadIdx.x; i < keep; i += blockDim.x) out[i] = keys[i];
        }

        extern "C" __global__ void top_keys_of_logits(const float *logits, int columns, int keep,
                                                      unsigned long long *out) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ unsigned long long keys[TOP_CHUNK];
            const float *row = logits + (size_t)blockIdx.y * columns;
            for (int i = threadIdx.x; i < TOP_CHUNK; i += blockDim.x) {
                const int token = blockIdx.x * TOP_CHUNK + i;
                keys[i] = token < columns ? ranking_key(row[token], token) : ~0ull;
            }
            sort_chunk(keys);
            keep_first(keys, keep, out);
        }

        extern "C" __global__ void top_keys(const unsigned long long *in, int columns, int keep, unsigned long long *out) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ unsigned long long keys[TOP_CHUNK];
            const unsigned long long *row = in + (size_t)blockIdx.y * columns;
            for (int i = threadIdx.x; i < TOP_CHUNK; i += blockDim.x) {
                const int index = blockIdx.x * TOP_CHUNK + i;
                keys[i] = index < columns ? row[index] : ~0ull;
            }
            sort_chunk(keys);
            keep_first(keys, keep, out);
        }

        // Temperature sampling of whole rows where the logits are, as the host's Sampler draws (token(drawing:from:)):
        // block r reads row r of `logits` (`columns` wide) and, with T = temperatures[r], finds the largest finite
        // logit `top`; the total of w = exp((logit - top) / T) over the finite logits, in double; with min-p, which
        // tokens it keeps (w / total at least min_ps[r] / total); their mass; and then, walking the row in token order
        // DRAW_VALUES tokens a thread at a time, the first token at which the running sum of w / total passes
        // units[r] * mass (the last kept token where rounding keeps the sum short of it). A row without a finite logit
        // gives its first +infinity, else token 0, as the host's argmax does. The sums run in another order than the
        // host's, so a draw can differ from it only where the random number falls within rounding of a boundary.
        #define DRAW_VALUES 4
        __device__ double block_scan_exclusive(double v, double &total) {
            __shared__ double warp_totals[32];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = (blockDim.x + 31) >> 5;
            double inclusive = v;
            for (int o = 1; o < 32; o <<= 1) {
                const double other = __shfl_up_sync(FULL_MASK, inclusive, o);
                if (lane >= o) inclusive += other;
            }
            if (lane == 31) warp_totals[warp] = inclusive;
            __syncthreads();
            double before = 0.0;
            total = 0.0;
            for (int w = 0; w < warps; w++) {
                if (w < warp) before += warp_totals[w];
                total += warp_totals[w];
            }
            __syncthreads();
            return before + inclusive - v;
        }

        // The largest finite logit of a row of `columns`, -infinity where none is finite.
        __device__ float row_top(const float *row, int columns) {
            float top = NEGATIVE_INFINITY;
            for (int i = threadIdx.x; i < columns; i += blockDim.x)
                if (isfinite(row[i])) top = fmaxf(top, row[i]);
            return block_max(top);
        }

        // The total weight exp((logit - top) / temperature) of a row's finite logits, in double, as the host's
        // sampler adds it up (in another order).
        __device__ double row_total(const float *row, int columns, float top, float temperature) {
            double total = 0.0;
            for (int i = threadIdx.x; i < columns; i += blockDim.x)
                if (isfinite(row[i])) total += exp((double)((row[i] - top) / temperature));
            return block_sum(total);
        }

        // totals[r]: row_total of row r of `logits` at temperatures[r], for top-p sampling from the largest logits
        // (0 for a row without a finite logit).
        extern "C" __global__ void row_totals(const float *logits, int columns, const float *temperatures,
                                              double *totals) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float *row = logits + (size_t)blockIdx.x * columns;
            const float top = row_top(row, columns);
            const double total = top == NEGATIVE_INFINITY ? 0.0 : row_total(row, columns, top, temperatures[blockIdx.x]);
            if (threadIdx.x == 0) totals[blockIdx.x] = total;
        }

        extern "C" __global__ void draw_rows(const float *logits, int columns, const float *temperatures,
                                             const float *min_ps, const double *units, int *tokens) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ int found, latest;
            const float *row = logits + (size_t)blockIdx.x * columns;
            const float temperature = temperatures[blockIdx.x];
            const float top = row_top(row, columns);
            if (threadIdx.x == 0) {
                found = 0x7fffffff;
                latest = -1;
            }
            __syncthreads();
            if (top == NEGATIVE_INFINITY) {
                for (int i = threadIdx.x; i < columns; i += blockDim.x)
                    if (row[i] == __int_as_float(0x7f800000)) atomicMin(&found, i);
                __syncthreads();
                if (threadIdx.x == 0) tokens[blockIdx.x] = found == 0x7fffffff ? 0 : found;
                return;
            }
            const double total = row_total(row, columns, top, temperature);
            const double floor = min_ps[blockIdx.x] > 0.0f ? 1.0 / total * (double)min_ps[blockIdx.x] : 0.0;
            // The share of token i of the kept mass, 0 where it is not kept.
            auto share = [&](int i) -> double {
                if (i >= columns || !isfinite(row[i])) return 0.0;
                const double p = exp((double)((row[i] - top) / temperature)) / total;
                return p < floor ? 0.0 : p;
            };
            double mass = 0.0;
            int last = -1;
            for (int i = threadIdx.x; i < columns; i += blockDim.x) {
                const double p = share(i);
                mass += p;
                if (p > 0.0) last = i;
            }
            atomicMax(&latest, last);
            mass = block_sum(mass);
            const double threshold = units[blockIdx.x] * mass;
            double passed = 0.0;
            for (int base = 0; base < columns; base += blockDim.x * DRAW_VALUES) {
                const int first = base + threadIdx.x * DRAW_VALUES;
                double p[DRAW_VALUES], own = 0.0;
        #pragma unroll
                for (int k = 0; k < DRAW_VALUES; k++) {
                    p[k] = share(first + k);
                    own += p[k];
                }
                double chunk;
                double running = passed + block_scan_exclusive(own, chunk);
        #pragma unroll
                for (int k = 0; k < DRAW_VALUES; k++) {
                    running += p[k];
                    if (p[k] > 0.0 && running > threshold) {
                        atomicMin(&found, first + k);
                        break;
                    }
                }
                __syncthreads();
                if (found != 0x7fffffff) break;
                passed += chunk;
            }
            if (threadIdx.x == 0) tokens[blockIdx.x] = found != 0x7fffffff ? found : latest;
        }

        // RMSNorm then per-token int8 as rms_norm_quantize, for rows of at most 8 * blockDim.x elements: the row
        // is read once into registers, so the three passes cost one trip to memory. Before it, as the kernel that
        // would otherwise run first does it, `mode` ROW_ADD adds `other` into x (add_rows), ROW_RELU2 and ROW_SILU
        // make x the gated activation of x and `other` (relu2_mul, silu_mul), and write x back. ROW_ADD_PRODUCT first
        // makes `other` from the summed integers of a split product (`sums`, whose token scales are `sum_scales` and
        // weight scale w_scale[0]) as finish_products does, then adds it.
        #define WIDE_VALUES 8
        #define ROW_KEEP 0
        #define ROW_ADD 1
        #define ROW_RELU2 2
        #define ROW_SILU 3
        #define ROW_ADD_PRODUCT 4
        // Up to 1,024 threads (rows of 8,192), so at most 64 registers a thread.
        extern "C" __global__ void __launch_bounds__(1024)
            rms_norm_quantize_wide(float *x, const float *weight, float eps, int width, int stride, i8 *q,
                                   float *scales, float *other, int mode, int *sums, const float *sum_scales,
                                   const float *w_scale) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            float *row = x + (size_t)blockIdx.x * width;
            float *other_row = other + (size_t)blockIdx.x * width;
            float v[WIDE_VALUES], g[WIDE_VALUES];
            double sum = 0.0;
            // Every load is issued before any store, which could alias the rows, so they all wait on memory at once.
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) {
                const int i = threadIdx.x + k * blockDim.x;
                v[k] = i < width ? row[i] : 0.0f;
                g[k] = i < width ? weight[i] : 0.0f;
            }
            if (mode != ROW_KEEP) {
                float o[WIDE_VALUES];
                int *sum_row = sums + (size_t)blockIdx.x * width;
        #pragma unroll
                for (int k = 0; k < WIDE_VALUES; k++) {
                    const int i = threadIdx.x + k * blockDim.x;
                    if (i >= width)
                        o[k] = 0.0f;
                    else if (mode == ROW_ADD_PRODUCT)
                        o[k] = (float)sum_row[i] / sum_scales[blockIdx.x] * w_scale[0];
                    else
                        o[k] = other_row[i];
                }
        #pragma unroll
                for (int k = 0; k < WIDE_VALUES; k++) {
                    const int i = threadIdx.x + k * blockDim.x;
                    if (i >= width) continue;
                    if (mode == ROW_ADD_PRODUCT) {
                        sum_row[i] = 0;
                        other_row[i] = o[k];
                    }
                    if (mode == ROW_ADD || mode == ROW_ADD_PRODUCT) {
                        v[k] += o[k];
                    } else if (mode == ROW_RELU2) {
                        const float r = fmaxf(v[k], 0.0f);
                        v[k] = r * r * o[k];
                    } else {
                        v[k] = v[k] / (1.0f + expf(-v[k])) * o[k];
                    }
                    row[i] = v[k];
                }
            }
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) sum += (double)v[k] * (double)v[k];
            sum = block_sum(sum);
            const float inv = 1.0f / sqrtf((float)(sum / (double)width) + eps);
            float largest = 0.0f;
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) {
                v[k] = g[k] * (v[k] * inv);
                largest = fmaxf(largest, fabsf(v[k]));
            }
            largest = block_max(largest);
            const float s = 127.0f / fmaxf(largest, 1e-5f);
        #pragma unroll
            for (int k = 0; k < WIDE_VALUES; k++) {
                const int i = threadIdx.x + k * blockDim.x;
                if (i < width) q[(size_t)blockIdx.x * stride + i] = (i8)fminf(127.0f, fmaxf(-128.0f, rintf(v[k] * s)));
            }
            if (threadIdx.x == 0) scales[blockIdx.x] = s;
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
