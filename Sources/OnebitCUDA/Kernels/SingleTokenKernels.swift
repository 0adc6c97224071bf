extension KernelSource {
    /// The kernels of a one-token step: fused products that fold the residual add and the next norm into their last
    /// block, and attention split over the cached positions.
    static let singleTokenSource = #"""
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
            if (threadIdx.x == 0) last = add_acquire_release(counters + h, 1u) == (unsigned)splits - 1;
            __syncthreads();
            if (!last) return;
            combine_head(partial + (size_t)h * splits * (head_dim + 2), splits, head_dim, out + (size_t)h * head_dim);
            if (threadIdx.x == 0) counters[h] = 0;
            if (norm_q == nullptr) return;
            __syncthreads();
            if (threadIdx.x == 0) last = add_acquire_release(counters + heads, 1u) == (unsigned)heads - 1;
            __syncthreads();
            if (!last) return;
            norm_quantize_row(out, norm_w, eps, heads * head_dim, norm_q, norm_scale);
            if (threadIdx.x == 0) counters[heads] = 0;
        }
        """#
}
