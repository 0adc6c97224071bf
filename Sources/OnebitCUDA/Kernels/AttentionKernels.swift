extension KernelSource {
    /// Dynamic shared memory of an `attention_prefill_mma` block (heads up to ``prefillHeadDimension`` wide, two
    /// parts), of an `attention_prefill_mma_wide` one (twice as wide) or of an `attention_prefill_mma_short` one (four
    /// parts): for each part two stages of keys and values, each `PREFILL_MMA_KEYS` rows of `MAX_DIM` floats padded
    /// by four, and the query rows, padded alike. 99 KB, what sm_86, sm_89 and sm_120 allow a block; 195 KB and
    /// 148.5 KB, which only sm_90 and sm_100 do (227 KB).
    static func prefillTensorCoreSharedBytes(wide: Bool, parts: Int = 2) -> Int {
        let rows = prefillTensorCoreRows(parts: parts)
        return (parts * 2 * 2 * keyValueBlockPositions + rows) * ((wide ? 2 : 1) * prefillHeadDimension + 4) * 4
    }

    /// The widest heads the prefill kernels take, `attention_prefill_mma_wide` twice as wide.
    static let prefillHeadDimension = 128

    /// Token-head pairs an `attention_prefill_mma` block of `parts` parts attends to: 16 a warp of a part.
    static func prefillTensorCoreRows(parts: Int) -> Int { 16 * prefillTensorCoreWarps / parts }

    /// Warps of an `attention_prefill_mma` block: each part's warps for all its rows, a part for each share of the
    /// keys.
    static let prefillTensorCoreWarps = 8

    /// The paged key/value cache and attention: the cache store with the rotary embedding, attention of a step of many
    /// sequences, and of a prompt chunk.
    static let attentionSource = #"""
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
        // token's position in its sequence's cache), then attends over the sequence. The sequence's keys and values
        // go through shared memory 32 positions at a time, copied by cp.async two stages deep (the first two are
        // requested before the kernel waits for its predecessor: earlier steps wrote those positions). Each key and
        // value is read from shared memory once for the whole group of query heads, not once per head, since that
        // traffic is what bounds the kernel. A stage runs in three phases:
        // - scores: thread 8p + e takes positions p and p + 16 of the stage and their dimensions 32i + 4e ... 32i + 4e
        //   + 3 (i < 4), dots both with every query head of the group, and the eight threads of a pair of positions
        //   add up their dots, each ending with one of the eight sums (two positions, four heads: each query read
        //   from shared memory serves two keys, and on an H200 a 64-sequence step ran 2% faster than with a
        //   position a thread);
        // - softmax: warp h carries query head h's online softmax (lane l, position l) and leaves the stage's weights
        //   and the factor that rescales the earlier stages' sums;
        // - values: warp w takes positions w, w + 4, ... of the stage and lane l dimensions 4l ... 4l + 3 of every
        //   head; the warps' sums are added at the end.
        // With `splits` above 1 (compute capability 9.0 and later), blocks kv head * splits + r, r < splits, form a
        // thread block cluster: block r takes the r-th share of the sequence's stages, and the cluster merges its
        // blocks' softmax sums through distributed shared memory, each block finishing a share of the group's
        // outputs. A few sequences so keep every multiprocessor busy, and no block waits on global memory for the
        // others' results.
        #define ROWS_GROUP 4
        #define ROWS_HEAD_DIM 128
        static_assert(ROWS_GROUP * 32 == ROWS_HEAD_DIM, "a thread of attention_rows per dimension of a head");
        #define ROWS_STAGE (2 * KV_BLOCK)
        // Key rows are padded by 16 floats: the 8 lanes of a 16-byte read phase (two positions, four pieces each)
        // then hit different banks.
        #define ROWS_KEY_STRIDE (ROWS_HEAD_DIM + 16)
        #define ROWS_STAGE_FLOATS (ROWS_STAGE * ROWS_KEY_STRIDE + ROWS_STAGE * ROWS_HEAD_DIM)
        // Positions a thread scores (four, with half as many dimensions each, took a 64-sequence step on an H200 from
        // 29,600 to 27,000 tokens/s).
        #define ROWS_KEYS 2
        #define ROWS_SET_LANES (ROWS_KEYS * ROWS_GROUP)
        #define ROWS_SETS (ROWS_STAGE / ROWS_KEYS)
        static_assert(ROWS_SETS * ROWS_SET_LANES == ROWS_GROUP * 32, "a stage's scores take every thread once");
        static_assert((ROWS_GROUP + 1) * ROWS_GROUP * ROWS_HEAD_DIM + ROWS_GROUP <= 2 * ROWS_STAGE_FLOATS,
                      "the sums of the warps and of the block fit in the stages");

        // Most blocks of a cluster attention_rows merges.
        #define ROWS_MAX_SPLITS \#(attentionRowsMaximumSplits)

        // Copies 16 bytes, or writes 16 zero bytes where `bytes` is 0.
        __device__ __forceinline__ void copy_async_16_or_zero(void *shared, const void *global, int bytes) {
        #if __CUDA_ARCH__ >= 800
            const unsigned address = (unsigned)__cvta_generic_to_shared(shared);
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(address), "l"(global), "r"(bytes)
                         : "memory");
        #endif
        }

        // CLUSTERED: whether the launch is in clusters of `cluster_blocks` blocks. Without, `splits` is the constant 1
        // and the compiler drops the clusters' code: on an H200 one kernel for both, `splits` a parameter, took a
        // 64-sequence step from 30,300-30,600 to 29,700 tokens/s.
        template <bool CLUSTERED>
        __device__ __forceinline__ void attend_rows(float *q, int heads, float *k, float *v, int kv_heads,
                                                    const int *positions, float theta, int rotate, float scale,
                                                    float *out, const unsigned long long *tables, const int *rows,
                                                    int layer, int *sums, const float *sum_scales, int sum_rows,
                                                    const float *s_q, const float *s_k, const float *s_v,
                                                    int cluster_blocks) {
            const int splits = CLUSTERED ? cluster_blocks : 1;
            extern __shared__ __align__(16) float staged[];
            __shared__ __align__(16) float queries[ROWS_GROUP][ROWS_HEAD_DIM];
            __shared__ __align__(16) float fresh[2][ROWS_HEAD_DIM];
            __shared__ float cosines[ROWS_HEAD_DIM / 2], sines[ROWS_HEAD_DIM / 2];
            const int kvh = blockIdx.x / splits, rank = blockIdx.x % splits, t = blockIdx.y, group = heads / kv_heads;
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const unsigned long long *blocks = row_blocks(tables, rows, t);
            const size_t kv_width = (size_t)kv_heads * ROWS_HEAD_DIM, head = (size_t)kvh * ROWS_HEAD_DIM;
            // Positions below `position` are cached; the token's own key and value are in `fresh`.
            const int position = positions[t], length = position + 1;
            // This block's stages: the rank-th share of the sequence's, the last share ending with the token's own.
            const int stages = (length + ROWS_STAGE - 1) / ROWS_STAGE;
            const int first_stage = rank * stages / splits, end_stage = (rank + 1) * stages / splits;
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
                COPY_ASYNC_COMMIT();
            };
            if (first_stage < end_stage) load(first_stage);
            if (first_stage + 1 < end_stage) load(first_stage + 1);
            // The rotary angles depend on the position alone: worked out while the kernel before ends, their powf,
            // cosf and sinf leave the critical path (on an H200 a 64-sequence step ran about 1% faster).
            for (int i = threadIdx.x; i < ROWS_HEAD_DIM / 2; i += blockDim.x)
                rope_angle(theta, i, ROWS_HEAD_DIM, (float)position, cosines[i], sines[i]);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int q_width = heads * ROWS_HEAD_DIM;
            // Thread d takes dimension d of the group's query heads, then of the key and the value (the block has
            // ROWS_HEAD_DIM threads). Every load is requested before any result is used: one after another, these
            // waits were a third of the kernel's stall samples at 64 sequences.
            const int d = threadIdx.x;
            // Column of the query, key and value products laid end to end.
            const auto column = [&](int h) {
                return h < group    ? (kvh * group + h) * ROWS_HEAD_DIM + d
                       : h == group ? q_width + kvh * ROWS_HEAD_DIM + d
                                    : q_width + (int)kv_width + kvh * ROWS_HEAD_DIM + d;
            };
            int summed[ROWS_GROUP + 2];
            float value[ROWS_GROUP + 2];
        #pragma unroll
            for (int h = 0; h < ROWS_GROUP + 2; h++) {
                if (h >= group + 2) break;
                if (sums)
                    summed[h] = sums[(size_t)t * sum_rows + column(h)];
                else
                    value[h] = h < group    ? q[(size_t)t * q_width + column(h)]
                               : h == group ? k[(size_t)t * kv_width + column(h) - q_width]
                                            : v[(size_t)t * kv_width + column(h) - q_width - kv_width];
            }
            if (sums) {
                const float token_scale = sum_scales[t], scale_q = s_q[0], scale_k = s_k[0], scale_v = s_v[0];
                const float inverse = __frcp_rn(token_scale);
        #pragma unroll
                for (int h = 0; h < ROWS_GROUP + 2; h++) {
                    if (h >= group + 2) break;
                    value[h] = divide_by((float)summed[h], token_scale, inverse) *
                               (h < group ? scale_q : h == group ? scale_k : scale_v);
                    // The cluster's other blocks read the same sums: they are cleared once all have (below).
                    if (splits == 1) sums[(size_t)t * sum_rows + column(h)] = 0;
                }
            }
        #pragma unroll
            for (int h = 0; h < ROWS_GROUP + 2; h++) {
                if (h >= group + 2) break;
                if (h < group)
                    queries[h][d] = value[h];
                else
                    fresh[h - group][d] = value[h];
            }
            __syncthreads();
            if (rotate) {
                for (int p = threadIdx.x; p < (group + 1) * ROWS_HEAD_DIM / 2; p += blockDim.x) {
                    const int h = p / (ROWS_HEAD_DIM / 2), i = p % (ROWS_HEAD_DIM / 2);
                    float *x = h < group ? queries[h] : fresh[0];
                    rotate_pair(x, x, i, ROWS_HEAD_DIM / 2, cosines[i], sines[i]);
                }
                __syncthreads();
            }
            for (int i = threadIdx.x; rank == splits - 1 && i < 2 * ROWS_HEAD_DIM; i += blockDim.x)
                kv_row(blocks, layer, position, i / ROWS_HEAD_DIM, kv_width)[head + i % ROWS_HEAD_DIM] =
                    fresh[i / ROWS_HEAD_DIM][i % ROWS_HEAD_DIM];
            __shared__ __align__(16) float scores[ROWS_GROUP][ROWS_STAGE];
            __shared__ __align__(16) float weights[ROWS_STAGE][ROWS_GROUP];
            __shared__ __align__(16) float corrections[ROWS_GROUP], totals[ROWS_GROUP];
            // Heads past the group get zero queries, and their sums are never written: loops of fixed length
            // unroll.
            for (int i = threadIdx.x; i < (ROWS_GROUP - group) * ROWS_HEAD_DIM; i += blockDim.x)
                queries[group + i / ROWS_HEAD_DIM][i % ROWS_HEAD_DIM] = 0.0f;
            float m = NEGATIVE_INFINITY, l = 0.0f;
            float4 acc[ROWS_GROUP];
        #pragma unroll
            for (int h = 0; h < ROWS_GROUP; h++) acc[h] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int stage = first_stage; stage < end_stage; stage++) {
                const float *k_stage = staged + (stage & 1) * ROWS_STAGE_FLOATS;
                const float *v_stage = k_stage + ROWS_STAGE * ROWS_KEY_STRIDE;
                if (stage + 1 < end_stage)
                    COPY_ASYNC_WAIT(1);
                else
                    COPY_ASYNC_WAIT(0);
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
                {
                    // A set of ROWS_SET_LANES threads, one for each of its sums (ROWS_KEYS positions times the group's
                    // heads), shares the set's positions, each thread a slice of their dimensions.
                    const int part = threadIdx.x % ROWS_SET_LANES, set = threadIdx.x / ROWS_SET_LANES;
                    const float *key = k_stage + set * ROWS_KEY_STRIDE + 4 * part;
                    float dots[ROWS_KEYS * ROWS_GROUP];
        #pragma unroll
                    for (int j = 0; j < ROWS_KEYS * ROWS_GROUP; j++) dots[j] = 0.0f;
        #pragma unroll
                    for (int i = 0; i < ROWS_HEAD_DIM / (4 * ROWS_SET_LANES); i++) {
                        float4 x[ROWS_KEYS];
        #pragma unroll
                        for (int p = 0; p < ROWS_KEYS; p++)
                            x[p] = *(const float4 *)(key + p * ROWS_SETS * ROWS_KEY_STRIDE + 4 * ROWS_SET_LANES * i);
        #pragma unroll
                        for (int h = 0; h < ROWS_GROUP; h++) {
                            const float4 a = *(const float4 *)&queries[h][4 * ROWS_SET_LANES * i + 4 * part];
        #pragma unroll
                            for (int p = 0; p < ROWS_KEYS; p++) {
                                float &dot = dots[p * ROWS_GROUP + h];
                                dot = __fmaf_rn(a.x, x[p].x, dot);
                                dot = __fmaf_rn(a.y, x[p].y, dot);
                                dot = __fmaf_rn(a.z, x[p].z, dot);
                                dot = __fmaf_rn(a.w, x[p].w, dot);
                            }
                        }
                    }
                    // Reduce-scatter over the lanes of a set: at each step a lane keeps the half of its sums its bit
                    // selects and adds the partner's copy of that half, so lane `part` ends with sum `part` whole.
        #pragma unroll
                    for (int half = ROWS_SET_LANES / 2; half >= 1; half /= 2) {
                        const bool upper = part & half;
        #pragma unroll
                        for (int k = 0; k < half; k++) {
                            const float keep = upper ? dots[k + half] : dots[k], give = upper ? dots[k] : dots[k + half];
                            dots[k] = keep + __shfl_xor_sync(FULL_MASK, give, half);
                        }
                    }
                    const int p = set + ROWS_SETS * (part / ROWS_GROUP), h = part % ROWS_GROUP;
                    scores[h][p] = run + p < length ? dots[0] * scale : NEGATIVE_INFINITY;
                }
                __syncthreads();
                {
                    // Position run < length, so every stage has a finite maximum.
                    const float score = scores[warp][lane];
                    const float next = fmaxf(m, warp_max(score));
                    const float e = score == NEGATIVE_INFINITY ? 0.0f : expf(score - next);
                    const float correction = expf(m - next);
                    l = l * correction + warp_sum(e);
                    m = next;
                    weights[lane][warp] = e;
                    if (lane == 0) corrections[warp] = correction;
                }
                __syncthreads();
                {
                    const float4 c = *(const float4 *)corrections;
                    const float factors[ROWS_GROUP] = {c.x, c.y, c.z, c.w};
        #pragma unroll
                    for (int h = 0; h < ROWS_GROUP; h++) {
                        acc[h].x *= factors[h];
                        acc[h].y *= factors[h];
                        acc[h].z *= factors[h];
                        acc[h].w *= factors[h];
                    }
                    // Every position of the stage, also those past the sequence: their values are zero (copied as
                    // zeros) and so are their weights.
        #pragma unroll
                    for (int n = 0; n < ROWS_STAGE / ROWS_GROUP; n++) {
                        const int j = warp + n * ROWS_GROUP;
                        const float4 value = *(const float4 *)&v_stage[j * ROWS_HEAD_DIM + 4 * lane];
                        const float4 w = *(const float4 *)weights[j];
                        const float ws[ROWS_GROUP] = {w.x, w.y, w.z, w.w};
        #pragma unroll
                        for (int h = 0; h < ROWS_GROUP; h++) {
                            acc[h].x = __fmaf_rn(ws[h], value.x, acc[h].x);
                            acc[h].y = __fmaf_rn(ws[h], value.y, acc[h].y);
                            acc[h].z = __fmaf_rn(ws[h], value.z, acc[h].z);
                            acc[h].w = __fmaf_rn(ws[h], value.w, acc[h].w);
                        }
                    }
                }
                // The stage after next overwrites this one.
                __syncthreads();
                if (stage + 2 < end_stage) load(stage + 2);
            }
            // The warps' sums, added in warp order, then the block's sum and maximum of each head, all in the stages'
            // shared memory (no copy is in flight): three blocks of 64 sequences a multiprocessor leave no room for
            // more static shared memory.
            float4 *sums_of = (float4 *)staged;
            float(*merged)[ROWS_HEAD_DIM] = (float(*)[ROWS_HEAD_DIM])(staged + ROWS_GROUP * ROWS_GROUP * ROWS_HEAD_DIM);
            float *maxima = staged + (ROWS_GROUP + 1) * ROWS_GROUP * ROWS_HEAD_DIM;
        #pragma unroll
            for (int h = 0; h < ROWS_GROUP; h++) sums_of[(warp * ROWS_GROUP + h) * 32 + lane] = acc[h];
            if (lane == 0) {
                totals[warp] = l;
                if (splits > 1) maxima[warp] = m;
            }
            __syncthreads();
            if (warp < group) {
                float4 o = sums_of[warp * 32 + lane];
                for (int w = 1; w < ROWS_GROUP; w++) {
                    const float4 x = sums_of[(w * ROWS_GROUP + warp) * 32 + lane];
                    o.x += x.x;
                    o.y += x.y;
                    o.z += x.z;
                    o.w += x.w;
                }
                float *target = out + ((size_t)t * heads + (size_t)kvh * group + warp) * ROWS_HEAD_DIM;
                if (splits == 1) {
                    const float total = totals[warp];
                    ((float4 *)target)[lane] = make_float4(o.x / total, o.y / total, o.z / total, o.w / total);
                } else {
                    ((float4 *)merged[warp])[lane] = o;
                }
            }
            if (splits == 1) return;
            cluster_sync();
            if (sums && rank == 0) {
        #pragma unroll
                for (int h = 0; h < ROWS_GROUP + 2; h++)
                    if (h < group + 2) sums[(size_t)t * sum_rows + column(h)] = 0;
            }
            // Block r finishes outputs r * share ... of the group's heads laid end to end, from every block's maxima,
            // sums and unnormalised outputs, added in block order. A block whose share of stages was empty has
            // maximum -inf and weighs nothing.
            const int outputs = group * ROWS_HEAD_DIM, share = (outputs + splits - 1) / splits;
            for (int i = threadIdx.x; i < share && rank * share + i < outputs; i += blockDim.x) {
                const int o = rank * share + i, h = o / ROWS_HEAD_DIM, dimension = o % ROWS_HEAD_DIM;
                float tops[ROWS_MAX_SPLITS], sizes[ROWS_MAX_SPLITS], parts[ROWS_MAX_SPLITS];
                float top = NEGATIVE_INFINITY;
        #pragma unroll
                for (int b = 0; b < ROWS_MAX_SPLITS; b++) {
                    if (b >= splits) break;
                    tops[b] = cluster_load(&maxima[h], b);
                    sizes[b] = cluster_load(&totals[h], b);
                    parts[b] = cluster_load(&merged[h][dimension], b);
                    top = fmaxf(top, tops[b]);
                }
                float total = 0.0f, sum = 0.0f;
        #pragma unroll
                for (int b = 0; b < ROWS_MAX_SPLITS; b++) {
                    if (b >= splits) break;
                    const float weight = tops[b] == NEGATIVE_INFINITY ? 0.0f : expf(tops[b] - top);
                    total += sizes[b] * weight;
                    sum += parts[b] * weight;
                }
                out[((size_t)t * heads + (size_t)kvh * group) * ROWS_HEAD_DIM + o] = sum / total;
            }
            // No block leaves while another may still read its shared memory.
            cluster_sync();
        }

        extern "C" __global__ void __launch_bounds__(ROWS_GROUP * 32)
            attention_rows(float *q, int heads, float *k, float *v, int kv_heads, const int *positions, float theta,
                           int rotate, float scale, float *out, const unsigned long long *tables, const int *rows,
                           int layer, int *sums, const float *sum_scales, int sum_rows, const float *s_q,
                           const float *s_k, const float *s_v) {
            attend_rows<false>(q, heads, k, v, kv_heads, positions, theta, rotate, scale, out, tables, rows, layer,
                               sums, sum_scales, sum_rows, s_q, s_k, s_v, 1);
        }

        extern "C" __global__ void __launch_bounds__(ROWS_GROUP * 32)
            attention_rows_clustered(float *q, int heads, float *k, float *v, int kv_heads, const int *positions,
                                     float theta, int rotate, float scale, float *out,
                                     const unsigned long long *tables, const int *rows, int layer, int *sums,
                                     const float *sum_scales, int sum_rows, const float *s_q, const float *s_k,
                                     const float *s_v, int splits) {
            attend_rows<true>(q, heads, k, v, kv_heads, positions, theta, rotate, scale, out, tables, rows, layer,
                              sums, sum_scales, sum_rows, s_q, s_k, s_v, splits);
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
        #define PREFILL_HEAD_DIM \#(prefillHeadDimension)
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

        // Causal attention of a prompt chunk on the tensor cores (sm_80+), for head_dim a multiple of 8 up to MAX_DIM
        // (PREFILL_HEAD_DIM in attention_prefill_mma, twice that in attention_prefill_mma_wide): block (kv head,
        // tile of `tile_tokens` tokens) holds the token-head pairs of every head of the group for those tokens, 16 a
        // warp as the rows of mma.m16n8k8 tiles; the heaviest tiles (the latest tokens, which see the most keys) are
        // the first blocks. The block's PREFILL_MMA_WARPS warps come in PARTS parts (2, or 4 in
        // attention_prefill_mma_short), each of ROW_WARPS warps for all its rows: part p attends to cache blocks p,
        // p + PARTS, ..., each an online softmax of its own, merged at the end. The chain of dependent instructions a
        // warp runs, which bounds the kernel, is then 1 / PARTS as long. Each part copies its keys and values into
        // shared memory a cache block (PREFILL_MMA_KEYS positions) at a time by cp.async, the next while it works on this
        // one. A warp's scores are one mma tile of 16 rows by 8 keys per 8 keys, its outputs one per 8 dimensions,
        // and an online softmax per row carries the maximum and the sum (each lane's share of it, added at the end).
        //
        // The products are fp32, not tf32: each operand is split into its tf32 value and the tf32 value of what that
        // leaves, and three mma of the pieces (small * big, big * small, big * big) give each product to about 2^-21
        // of its size, so the outputs differ from the scalar kernel's only as a different order of summation would.
        #define PREFILL_MMA_KEYS KV_BLOCK
        #define PREFILL_MMA_WARPS \#(prefillTensorCoreWarps)

        // x as a tf32 value `big` (rounded to nearest, ties away from zero) and the rest, `small`, which the tensor
        // cores read as tf32 by dropping its low 13 bits. cvt.rna.tf32.f32 compiles to nine instructions where these
        // are three: it also keeps infinities and NaN, which finite queries, keys and weights never are.
        __device__ __forceinline__ void split_tf32(float x, unsigned &big, unsigned &small) {
            big = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
            small = __float_as_uint(x - __uint_as_float(big));
        }

        // c += a b for a 16 x 8 tile a and an 8 x 8 tile b of tf32 values, in the mma.m16n8k8 fragment layouts.
        __device__ __forceinline__ void mma_tf32(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
        #if __CUDA_ARCH__ >= 800
            asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                         "{%8, %9}, {%0, %1, %2, %3};"
                         : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
        #endif
        }

        // c += a b in fp32 from a's pieces and b's fragment (b0, b1), the smaller products first.
        __device__ __forceinline__ void mma_fp32_pieces(float (&c)[4], const unsigned (&a_big)[4],
                                                        const unsigned (&a_small)[4], float b0, float b1) {
            unsigned b0_big, b0_small, b1_big, b1_small;
            split_tf32(b0, b0_big, b0_small);
            split_tf32(b1, b1_big, b1_small);
            mma_tf32(c, a_small, b0_big, b1_big);
            mma_tf32(c, a_big, b0_small, b1_small);
            mma_tf32(c, a_big, b0_big, b1_big);
        }

        template <int MAX_DIM, int PARTS>
        __device__ __forceinline__ void attend_prefill_mma(const float *q, const unsigned long long *blocks, int layer,
                                                           int heads, int kv_heads, int head_dim,
                                                           const int *positions, int tokens, int tile_tokens,
                                                           float scale, float *out) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
        #if __CUDA_ARCH__ >= 800
            // Rows of keys and values padded by four words: the lanes' reads of a key tile's column (8 keys, 4
            // dimensions) and of a value tile's rows (2 keys a lane group, 8 dimensions) each fall in 32 different
            // banks. PART_FLOATS: one part's two stages of keys and values.
            constexpr int STRIDE = MAX_DIM + 4, PART_FLOATS = 2 * 2 * PREFILL_MMA_KEYS * STRIDE, QUADS = MAX_DIM / 4;
            constexpr int ROW_WARPS = PREFILL_MMA_WARPS / PARTS;
            static_assert(PARTS == 2 || PARTS == 4, "the parts' barriers are those of two or four parts");
            // [part][stage][keys, values][PREFILL_MMA_KEYS][STRIDE], then the queries,
            // [row warp][16][STRIDE]
            extern __shared__ __align__(16) float prefill_stages[];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
            const int row_warp = warp % ROW_WARPS, part = warp / ROW_WARPS;
            const int part_thread = threadIdx.x % (ROW_WARPS * 32);
            const int kvh = blockIdx.x, group = heads / kv_heads, dims = head_dim / 8;
            const int t0 = (gridDim.y - 1 - blockIdx.y) * tile_tokens, count = min(tile_tokens, tokens - t0);
            const int pairs = count * group;
            const size_t kv_width = (size_t)kv_heads * head_dim;
            int last = 0;
            for (int i = 0; i < count; i++) last = max(last, positions[t0 + i]);
            // This lane's rows: g and g + 8 of the warp's 16 (a padding row past the tile's pairs sees no key).
            int position[2], token[2], head[2];
        #pragma unroll
            for (int r = 0; r < 2; r++) {
                const int pair = row_warp * 16 + g + 8 * r;
                token[r] = t0 + pair / group;
                head[r] = kvh * group + pair % group;
                position[r] = pair < pairs ? positions[token[r]] : -1;
            }
            const int warp_last = __reduce_max_sync(FULL_MASK, max(position[0], position[1]));
            // The row warp's queries (zeros in padding rows), stored by the first part's warp.
            float *queries = prefill_stages + PARTS * PART_FLOATS + row_warp * 16 * STRIDE;
            if (part == 0) {
                for (int i = lane; i < 16 * dims * 2; i += 32) {
                    const int row = i / (2 * dims), d = 4 * (i % (2 * dims)), pair = row_warp * 16 + row;
                    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                    *(float4 *)&queries[row * STRIDE + d] =
                        pair < pairs ? *(const float4 *)&q[((size_t)(t0 + pair / group) * heads + kvh * group +
                                                            pair % group) * head_dim + d]
                                     : zero;
                }
            }
            __syncthreads();
            BlockWindow window(blocks, last / KV_BLOCK + 1);
            float *part_stages = prefill_stages + part * PART_FLOATS;
            auto load = [&](int stage, int cache_block) {
                float *keys = part_stages + stage * 2 * PREFILL_MMA_KEYS * STRIDE;
                float *values = keys + PREFILL_MMA_KEYS * STRIDE;
                const float *first = layer_keys(window.at(cache_block), layer, kv_width) + (size_t)kvh * head_dim;
                // Thread i of the part copies dimensions 4 (i % QUADS) ... of key i / QUADS: shifts, not divisions by
                // head_dim / 4.
                for (int i = part_thread; i < PREFILL_MMA_KEYS * QUADS; i += ROW_WARPS * 32) {
                    const int j = i / QUADS, d = 4 * (i % QUADS);
                    if (d >= head_dim) continue;
                    const float *key = first + (size_t)j * kv_width + d;
                    const int bytes = cache_block * KV_BLOCK + j <= last ? 16 : 0;
                    copy_async_16_or_zero(keys + j * STRIDE + d, key, bytes);
                    copy_async_16_or_zero(values + j * STRIDE + d, key + KV_BLOCK * kv_width, bytes);
                }
            };
            // The part's own barrier (1 + part; 0 is __syncthreads'): the other parts' warps may be a stage ahead or
            // behind. Constant ids, so that ptxas reserves PARTS + 1 barriers instead of all sixteen.
            auto part_sync = [&]() {
                if (part == 0) asm volatile("bar.sync 1, %0;" :: "n"(ROW_WARPS * 32) : "memory");
                else if (PARTS == 2 || part == 1) asm volatile("bar.sync 2, %0;" :: "n"(ROW_WARPS * 32) : "memory");
                else if (part == 2) asm volatile("bar.sync 3, %0;" :: "n"(ROW_WARPS * 32) : "memory");
                else asm volatile("bar.sync 4, %0;" :: "n"(ROW_WARPS * 32) : "memory");
            };
            float output[MAX_DIM / 8][4], top[2] = {NEGATIVE_INFINITY, NEGATIVE_INFINITY}, total[2] = {0, 0};
        #pragma unroll
            for (int n = 0; n < MAX_DIM / 8; n++)
        #pragma unroll
                for (int i = 0; i < 4; i++) output[n][i] = 0.0f;
            const int cache_blocks = last / KV_BLOCK + 1;
            if (part < cache_blocks) load(0, part);
            COPY_ASYNC_COMMIT();
            int stage = 0;
            for (int b = part; b < cache_blocks; b += PARTS, stage ^= 1) {
                const int k0 = b * PREFILL_MMA_KEYS;
                if (b + PARTS < cache_blocks) load(stage ^ 1, b + PARTS);
                COPY_ASYNC_COMMIT();
                COPY_ASYNC_WAIT(1);
                part_sync();
                if (k0 <= warp_last) {
                    const float *keys = part_stages + stage * 2 * PREFILL_MMA_KEYS * STRIDE;
                    const float *values = keys + PREFILL_MMA_KEYS * STRIDE;
                    // Scores: element i of tile j is row g + 8 (i >> 1) against key k0 + 8j + 2c + (i & 1). Each
                    // piece's products in sums of their own, so that no chain of dependent mma is longer than
                    // head_dim / 8.
                    float score[PREFILL_MMA_KEYS / 8][4], small_big[PREFILL_MMA_KEYS / 8][4],
                        big_small[PREFILL_MMA_KEYS / 8][4];
        #pragma unroll
                    for (int j = 0; j < PREFILL_MMA_KEYS / 8; j++)
        #pragma unroll
                        for (int i = 0; i < 4; i++) score[j][i] = small_big[j][i] = big_small[j][i] = 0.0f;
        #pragma unroll
                    for (int k = 0; k < MAX_DIM / 8; k++) {
                        if (k >= dims) break;
                        // The A fragment: rows g and g + 8, dimensions 8k + c and 8k + c + 4.
                        unsigned big[4], small[4];
        #pragma unroll
                        for (int i = 0; i < 4; i++)
                            split_tf32(queries[(g + 8 * (i & 1)) * STRIDE + 8 * k + c + 4 * (i >> 1)],
                                       big[i], small[i]);
        #pragma unroll
                        for (int j = 0; j < PREFILL_MMA_KEYS / 8; j++) {
                            const float *key = keys + (8 * j + g) * STRIDE + 8 * k + c;
                            unsigned b0_big, b0_small, b1_big, b1_small;
                            split_tf32(key[0], b0_big, b0_small);
                            split_tf32(key[4], b1_big, b1_small);
                            mma_tf32(small_big[j], small, b0_big, b1_big);
                            mma_tf32(big_small[j], big, b0_small, b1_small);
                            mma_tf32(score[j], big, b0_big, b1_big);
                        }
                    }
        #pragma unroll
                    for (int j = 0; j < PREFILL_MMA_KEYS / 8; j++)
        #pragma unroll
                        for (int i = 0; i < 4; i++) score[j][i] += small_big[j][i] + big_small[j][i];
                    float next[2] = {top[0], top[1]};
        #pragma unroll
                    for (int j = 0; j < PREFILL_MMA_KEYS / 8; j++)
        #pragma unroll
                        for (int i = 0; i < 4; i++) {
                            const int r = i >> 1, key = k0 + 8 * j + 2 * c + (i & 1);
                            score[j][i] = key <= position[r] ? score[j][i] * scale : NEGATIVE_INFINITY;
                            next[r] = fmaxf(next[r], score[j][i]);
                        }
                    float correction[2];
        #pragma unroll
                    for (int r = 0; r < 2; r++) {
                        next[r] = fmaxf(next[r], __shfl_xor_sync(FULL_MASK, next[r], 1));
                        next[r] = fmaxf(next[r], __shfl_xor_sync(FULL_MASK, next[r], 2));
                        correction[r] = top[r] == NEGATIVE_INFINITY ? 0.0f : expf(top[r] - next[r]);
                        total[r] *= correction[r];
                        top[r] = next[r];
                    }
        #pragma unroll
                    for (int j = 0; j < PREFILL_MMA_KEYS / 8; j++)
        #pragma unroll
                        for (int i = 0; i < 4; i++) {
                            const int r = i >> 1;
                            score[j][i] = score[j][i] == NEGATIVE_INFINITY ? 0.0f : expf(score[j][i] - top[r]);
                            total[r] += score[j][i];
                        }
        #pragma unroll
                    for (int n = 0; n < MAX_DIM / 8; n++)
        #pragma unroll
                        for (int i = 0; i < 4; i++) output[n][i] *= correction[i >> 1];
                    // Weights times values: the weights of tile j as an A fragment whose column c stands for key
                    // 2c and column c + 4 for key 2c + 1 (the layout the scores came in), and the values' rows in
                    // that order.
        #pragma unroll
                    for (int j = 0; j < PREFILL_MMA_KEYS / 8; j++) {
                        unsigned big[4], small[4];
                        split_tf32(score[j][0], big[0], small[0]);
                        split_tf32(score[j][2], big[1], small[1]);
                        split_tf32(score[j][1], big[2], small[2]);
                        split_tf32(score[j][3], big[3], small[3]);
                        const float *value = values + (8 * j + 2 * c) * STRIDE + g;
        #pragma unroll
                        for (int n = 0; n < MAX_DIM / 8; n++) {
                            if (n >= dims) break;
                            mma_fp32_pieces(output[n], big, small, value[8 * n], value[8 * n + STRIDE]);
                        }
                    }
                }
                part_sync();
            }
        #pragma unroll
            for (int r = 0; r < 2; r++) {
                total[r] += __shfl_xor_sync(FULL_MASK, total[r], 1);
                total[r] += __shfl_xor_sync(FULL_MASK, total[r], 2);
            }
            // The other parts hand their rows to the first through the stages' memory: a lane's outputs, maxima and
            // sums in its part's slot of the first part's lane that holds the same rows and dimensions.
            constexpr int slot_floats = MAX_DIM / 2 + 4, part_slots = ROW_WARPS * 32 * slot_floats;
            static_assert((PARTS - 1) * part_slots <= PARTS * PART_FLOATS, "the parts' rows fit in the stages' memory");
            const float *slots = prefill_stages + (row_warp * 32 + lane) * slot_floats;
            __syncthreads();
            if (part > 0) {
                float *slot = prefill_stages + (part - 1) * part_slots + (row_warp * 32 + lane) * slot_floats;
        #pragma unroll
                for (int n = 0; n < MAX_DIM / 8; n++)
                    if (n < dims) *(float4 *)&slot[4 * n] = make_float4(output[n][0], output[n][1], output[n][2], output[n][3]);
                *(float4 *)&slot[MAX_DIM / 2] = make_float4(top[0], top[1], total[0], total[1]);
            }
            __syncthreads();
            if (part != 0) return;
            // weights[0]: this part's rows' weight in the merged softmax; weights[o]: other part o's.
            float weights[PARTS][2];
        #pragma unroll
            for (int r = 0; r < 2; r++) {
                float largest = top[r];
        #pragma unroll
                for (int o = 1; o < PARTS; o++) largest = fmaxf(largest, slots[(o - 1) * part_slots + MAX_DIM / 2 + r]);
                weights[0][r] = top[r] == NEGATIVE_INFINITY ? 0.0f : expf(top[r] - largest);
                total[r] *= weights[0][r];
        #pragma unroll
                for (int o = 1; o < PARTS; o++) {
                    const float4 other = *(const float4 *)&slots[(o - 1) * part_slots + MAX_DIM / 2];
                    const float other_top = r ? other.y : other.x, other_total = r ? other.w : other.z;
                    weights[o][r] = other_top == NEGATIVE_INFINITY ? 0.0f : expf(other_top - largest);
                    total[r] += other_total * weights[o][r];
                }
            }
        #pragma unroll
            for (int r = 0; r < 2; r++) {
                if (position[r] < 0) continue;
                float *row = out + ((size_t)token[r] * heads + head[r]) * head_dim + 2 * c;
                const float inverse = 1.0f / total[r];
        #pragma unroll
                for (int n = 0; n < MAX_DIM / 8; n++)
                    if (n < dims) {
                        float x = output[n][2 * r] * weights[0][r], y = output[n][2 * r + 1] * weights[0][r];
        #pragma unroll
                        for (int o = 1; o < PARTS; o++) {
                            const float *theirs = &slots[(o - 1) * part_slots + 4 * n + 2 * r];
                            x += theirs[0] * weights[o][r];
                            y += theirs[1] * weights[o][r];
                        }
                        *(float2 *)(row + 8 * n) = make_float2(x * inverse, y * inverse);
                    }
            }
        #endif
        }

        extern "C" __global__ void __launch_bounds__(PREFILL_MMA_WARPS * 32, 1)
            attention_prefill_mma(const float *q, const unsigned long long *blocks, int layer, int heads,
                                  int kv_heads, int head_dim, const int *positions, int tokens, int tile_tokens,
                                  float scale, float *out) {
            attend_prefill_mma<PREFILL_HEAD_DIM, 2>(q, blocks, layer, heads, kv_heads, head_dim, positions, tokens,
                                                    tile_tokens, scale, out);
        }

        // For heads up to twice as wide (Falcon3's 256), with twice the shared memory: sm_90 and sm_100 only.
        extern "C" __global__ void __launch_bounds__(PREFILL_MMA_WARPS * 32, 1)
            attention_prefill_mma_wide(const float *q, const unsigned long long *blocks, int layer, int heads,
                                       int kv_heads, int head_dim, const int *positions, int tokens,
                                       int tile_tokens, float scale, float *out) {
            attend_prefill_mma<2 * PREFILL_HEAD_DIM, 2>(q, blocks, layer, heads, kv_heads, head_dim, positions,
                                                        tokens, tile_tokens, scale, out);
        }

        // For short chunks: four parts of half as many rows, so twice the blocks, each warp's chain half as long
        // again, with 148.5 KB of shared memory a block (sm_90 and sm_100 only).
        extern "C" __global__ void __launch_bounds__(PREFILL_MMA_WARPS * 32, 1)
            attention_prefill_mma_short(const float *q, const unsigned long long *blocks, int layer, int heads,
                                        int kv_heads, int head_dim, const int *positions, int tokens,
                                        int tile_tokens, float scale, float *out) {
            attend_prefill_mma<PREFILL_HEAD_DIM, 4>(q, blocks, layer, heads, kv_heads, head_dim, positions, tokens,
                                                    tile_tokens, scale, out);
        }
        """#
}
