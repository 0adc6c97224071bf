/// The CUDA C source of every kernel, compiled by NVRTC for the GPU present (see ``KernelBuild``).
///
/// Layouts follow the CPU backend: float activations row-major `[tokens][width]`, the key/value cache
/// `[layer][position][kv_heads * head_dim]`. Ternary weights and int8 activations use the GPU layout described at
/// `ternary_rows`. NVRTC compiles with `--fmad=false` so that products and sums round as the CPU's do.
enum KernelSource {
    /// Dynamic shared memory of an `attention_rows` block: two stages of 32 keys (rows of 128 floats padded by 16)
    /// and 32 values.
    static let attentionRowsSharedBytes = 2 * (32 * 144 + 32 * 128) * 4

    /// Most blocks of an `attention_rows` cluster (`ROWS_MAX_SPLITS`): 16, what an H100 allows a kernel that asks for
    /// clusters larger than the portable eight.
    static let attentionRowsMaximumSplits = 16

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

    /// Rows of a `ternary_matmul_wgmma` block (`WG_ROWS`).
    static let warpgroupRows = 128

    /// Dynamic shared memory of a `ternary_matmul_wgmma` block: per stage, the weight chunks of 128 rows and the
    /// activation chunks of 64 tokens, and up to 1,024 bytes to align the activations' swizzle atoms.
    static var warpgroupSharedBytes: Int {
        mmaStages * (warpgroupRows * mmaStageChunks * 16 + 64 * mmaStageChunks * 64) + 1024
    }

    /// Stages of `dense_gemm_bf16_wgmma`'s pipeline (`HEAD_WG_STAGES`).
    static let headWarpgroupStages = 3

    /// bf16 planes the tensor-core head splits each activation into (`HEAD_PLANES`): hi + lo carry 16 of an fp32
    /// value's 24 significant bits. On an H200 the `wgmma` head of 64 tokens took 173 us instead of 208 with three
    /// planes (which carried all 24), since the tensor cores, not the weights' bytes, set its pace.
    static let headPlanes = 2

    /// Dynamic shared memory of a `dense_gemm_bf16_wgmma` block: per stage, 64 columns of 256 bf16 weight rows and
    /// of the planes of 64 tokens, and up to 1,024 bytes to align the swizzle atoms.
    static var headWarpgroupSharedBytes: Int { headWarpgroupStages * (256 * 128 + headPlanes * 64 * 128) + 1024 }

    /// Most threads of an `rms_norm_quantize_wide` block (its `__launch_bounds__`): 72 registers a thread, since
    /// with 64 (1,024 threads) the row of a summed product spilled.
    static let wideNormThreads = 896

    /// Values of its row each thread of `rms_norm_quantize_wide` holds (`WIDE_VALUES`).
    static let wideNormValues = 8

    /// The widest row `rms_norm_quantize_wide` normalises.
    static var wideNormWidth: Int { wideNormValues * wideNormThreads }

    /// Threads of an `rms_norm_quantize_long` block.
    static let longNormThreads = 1024

    /// Quads of its row each thread of `rms_norm_quantize_long` requests (`LONG_QUADS`).
    static let longNormQuads = 6

    /// The widest row `rms_norm_quantize_long` normalises: 24,576, which Falcon3-10B's 23,040-wide feed-forward fits,
    /// and 96 KB of shared memory, which every GPU from sm_80 on gives a block.
    static var longNormWidth: Int { 4 * longNormQuads * longNormThreads }

    /// Blocks of the cluster over which `rms_norm_quantize_split` shares out a row: eight, the cluster size every GPU
    /// that has clusters allows.
    static let splitNormBlocks = 8

    /// Threads of an `rms_norm_quantize_split` block.
    static let splitNormThreads = 256

    /// Quads of its row each thread of `rms_norm_quantize_split` takes (`SPLIT_QUADS`): with ``splitNormBlocks`` and
    /// ``splitNormThreads``, rows of up to ``longNormWidth``.
    static let splitNormQuads = 3

    /// Consecutive tokens whose smallest ranking key the ranking's first pass keeps (`RANK_GROUP`, a warp).
    static let rankGroup = 32
    /// Logits a block of the ranking's passes over whole rows takes (`RANK_SPAN`).
    static let rankSpan = 2048
    /// Threads of a block of the ranking's passes over whole rows (`RANK_THREADS`).
    static let rankThreads = 256
    /// Keys a block of the ranking sorts at once (`RANK_TILE`).
    static let rankTile = 4096
    /// Threads of a ranking block that sorts.
    static let rankSortThreads = 1024
    /// Threads of a block of the draw's launches (`draw_chunk_tops`, `draw_chunk_masses`, `draw_pick`).
    static let drawThreads = 256
    /// Most chunks of a row `draw_pick` takes (`DRAW_MAX_CHUNKS`).
    static let drawMaximumChunks = 1024
    /// Bytes of a `DrawChunk` record.
    static let drawChunkBytes = 32
    /// Rounds that find a top-p nucleus's limit (`NUCLEUS_ROUNDS`): three digits of the logit, two of the token id.
    static let nucleusRounds = 5
    /// Bytes of a `Nucleus` record.
    static let nucleusBytes = 48
    /// Sums a row of the nucleus's rounds keeps (`NUCLEUS_BUCKETS`), 8 bytes each.
    static let nucleusBuckets = 4096
    /// Threads of a `draw_candidates` block, one a candidate: the most top-k it samples from.
    static let candidateThreads = 256

    /// The whole source: the parts below and in `Kernels/`, each after the parts it uses.
    static let text = [
        commonSource, normSource, ternaryProductSource, headSource, embeddingSource, attentionSource,
        elementwiseSource, singleTokenSource, samplingSource,
    ].joined(separator: "\n\n")

    /// Types, macros and helpers every other part uses: launch overlap, L2 prefetch, integer dots, warp and block
    /// reductions.
    static let commonSource = #"""
        typedef unsigned char u8;
        typedef signed char i8;
        typedef unsigned int u32;
        typedef unsigned short u16;

        #define FULL_MASK 0xffffffffu
        #define ATTENTION_WARPS 8
        #define MAX_HEAD_DIM 256
        // NVRTC has no math.h, so no INFINITY.
        #define NEGATIVE_INFINITY __uint_as_float(0xff800000u)

        // The feed-forward's gated activations of gate a and up b: relu(a)^2 b (BitNet) and silu(a) b (Llama). Every
        // kernel that gates calls these, so they all round alike.
        __device__ __forceinline__ float relu2_gated(float a, float b) {
            const float r = fmaxf(a, 0.0f);
            return r * r * b;
        }
        __device__ __forceinline__ float silu_gated(float a, float b) { return a / (1.0f + expf(-a)) * b; }

        // x / y as the division rounds it, from r = __frcp_rn(y) worked out once for many x: x * r corrected once by
        // its remainder (Markstein's theorem: with r the correctly rounded reciprocal, the fused correction gives the
        // correctly rounded quotient). That holds where nothing overflows or falls below the normal range: |x| of at
        // least 2^-100 or zero, with y and r normal, as a product's integer sums (0, or 1 and more) and a token's
        // scale (127 over its largest value) always are (theCorrectedReciprocalRoundsAsTheDivision checks a million
        // pairs of each kind on every test run). A division per value costs more: with one, the three 2,560-wide
        // norms of a 64-sequence layer, two of which rescale a split product, took 4.0 us each on an H200's critical
        // path instead of 3.2.
        __device__ __forceinline__ float divide_by(float x, float y, float r) {
            const float q = x * r;
            return __fmaf_rn(__fmaf_rn(-y, q, x), r, q);
        }

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

        // cp.async (sm_80+): close the group of copies requested so far; wait until at most n groups are pending.
        // Below sm_80 both are empty, and the kernels that copy this way are never launched there
        // (Kernel.runs(major:minor:)), so the module still compiles for Turing.
        #if __CUDA_ARCH__ >= 800
        #define COPY_ASYNC_COMMIT() asm volatile("cp.async.commit_group;" ::: "memory")
        #define COPY_ASYNC_WAIT(n) asm volatile("cp.async.wait_group %0;" :: "n"(n) : "memory")
        #else
        #define COPY_ASYNC_COMMIT()
        #define COPY_ASYNC_WAIT(n)
        #endif

        // *p += v at GPU scope, returning the old value, as a release of everything this block wrote before the
        // __syncthreads() that precedes it and an acquire of what the blocks that added before it wrote, for the
        // __syncthreads() that follows. The "last block to arrive" tests use it instead of a __threadfence() on each
        // side of a plain atomicAdd, whose sequentially consistent fences cost more (on an H200 single-token decode
        // went from 716-728 to 738-747 tokens/s at 512 positions, and from 743 to 784 at 16).
        __device__ __forceinline__ unsigned add_acquire_release(unsigned *p, unsigned v) {
            unsigned old;
            asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
            return old;
        }

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

        // D += A B on the tensor cores for one warp (sm_80 and later), A 16 x 32 bytes (rows by columns), B 32 x 8
        // signed bytes, D exact int32 sums: A signed (mma_int8) or unsigned codes (mma_codes).
        __device__ __forceinline__ void mma_int8(int (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
        #if __CUDA_ARCH__ >= 800
            asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                "{%0, %1, %2, %3};"
                : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        #endif
        }
        __device__ __forceinline__ void mma_codes(int (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, int b0, int b1) {
        #if __CUDA_ARCH__ >= 800
            asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                "{%0, %1, %2, %3};"
                : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        #endif
        }

        // 16 bytes read once: keep them out of L1 so the activations, read by every warp, stay there.
        __device__ __forceinline__ uint4 load_once(const uint4 *p) {
            uint4 v;
            asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
            return v;
        }

        // v summed over the LANES lanes of a group (aligned lanes of a warp); every lane of the group gets it.
        template <int LANES, typename T> __device__ __forceinline__ T group_sum(T v) {
        #pragma unroll
            for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
            return v;
        }

        template <typename T> __device__ __forceinline__ T warp_sum(T v) { return group_sum<32>(v); }

        // v summed over the warp's lanes up to and including this one.
        template <typename T> __device__ __forceinline__ T warp_scan_inclusive(T v) {
            const int lane = threadIdx.x & 31;
            for (int o = 1; o < 32; o <<= 1) {
                const T other = __shfl_up_sync(FULL_MASK, v, o);
                if (lane >= o) v += other;
            }
            return v;
        }

        // Keeps (v, i) where it beats (best, index): a larger value, or the same one at a lower index.
        __device__ __forceinline__ void argmax_pick(float &best, int &index, float v, int i) {
            if (v > best || (v == best && i < index)) {
                best = v;
                index = i;
            }
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

        // Every thread of a thread block cluster waits here for all the others; what each block wrote to its shared
        // memory before is then visible to the whole cluster.
        __device__ __forceinline__ void cluster_sync() {
        #if __CUDA_ARCH__ >= 900
            asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
        #endif
        }

        // The float or double at `shared` in the shared memory of block `rank` of this block's cluster. Volatile, so
        // that no load moves above the cluster_sync that makes its value visible.
        template <typename T> __device__ __forceinline__ T cluster_load(const T *shared, int rank) {
            static_assert(sizeof(T) == 4 || sizeof(T) == 8, "a float or a double");
            T value = 0;
        #if __CUDA_ARCH__ >= 900
            const unsigned local = (unsigned)__cvta_generic_to_shared(shared);
            unsigned remote;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
            if constexpr (sizeof(T) == 4) {
                asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(value) : "r"(remote));
            } else {
                asm volatile("ld.shared::cluster.f64 %0, [%1];" : "=d"(value) : "r"(remote));
            }
        #endif
            return value;
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
            const float total = warp_max(lane < warps ? partial[lane] : NEGATIVE_INFINITY);
            __syncthreads();
            return total;
        }
        """#
}
