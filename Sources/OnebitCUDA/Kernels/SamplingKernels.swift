extension KernelSource {
    /// Greedy, top-k and temperature sampling where the logits are: argmax, ranking passes, whole-row draws and totals.
    static let samplingSource = #"""
        // Argmax in two launches: block (b, r) of argmax_partial reduces its stretch of row r of x (rows of n values)
        // to (value, index) in values[r * gridDim.x + b], indices[...]; block r of argmax_final reduces row r's
        // `count` pairs into result[r]. The lowest index wins ties; 0 when nothing compares larger than -infinity,
        // as the host's argmax would give for such a row.
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

        // The indices also go to feed[r] where feed is not null: the tokens of the next decoding step.
        extern "C" __global__ void argmax_final(const float *values, const int *indices, int count, int *result,
                                                int *feed) {
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
            if (threadIdx.x == 0) {
                const int token = index == 0x7fffffff ? 0 : index;
                result[blockIdx.x] = token;
                if (feed) feed[blockIdx.x] = token;
            }
        }

        // The largest logits of rows for top-k sampling. A logit's key is the host's ranking key (Sampler.ranked): the
        // logit's order-preserving bits inverted in the high word, the token in the low one, so ascending keys are the
        // most likely logits first and the lower token first on ties; a logit that is not finite gets the largest key,
        // ~0, and is never ranked. Keys are distinct but for ~0. Four launches; sorting whole rows, or whole chunks of
        // 2,048 keys and then their survivors, made a 64-sequence step on a 128,256-token vocabulary about 0.3 ms
        // longer, so only a few keys are sorted:
        // - rank_group_minima: the smallest key of each group of RANK_GROUP consecutive tokens;
        // - rank_thresholds: block r selects row r's count-th smallest group minimum as the row's threshold
        //   (smallest_at). The count groups whose minima are at most the threshold hold count keys at most that
        //   large, so the row's count smallest keys are all at most the threshold, and they all lie in those groups:
        //   at most RANK_GROUP * count keys pass;
        // - rank_candidates: every finite key at most its row's threshold, appended to the row's candidates;
        // - rank_largest: block r sorts row r's candidates and keeps the first count, ~0 where fewer are finite.
        #define RANK_GROUP \#(rankGroup)
        static_assert(RANK_GROUP == 32, "a warp a group");
        #define RANK_SPAN \#(rankSpan)
        #define RANK_THREADS \#(rankThreads)
        #define RANK_TILE \#(rankTile)
        __device__ __forceinline__ unsigned long long ranking_key(float logit, int token) {
            if (!isfinite(logit)) return ~0ull;
            // -0 and 0 are equal logits: one bit pattern for both keeps the lower token first.
            const u32 bits = __float_as_uint(logit == 0.0f ? 0.0f : logit);
            const u32 ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
            return ((unsigned long long)~ordered << 32) | (u32)token;
        }

        // The logit a ranking key was made from (of a finite logit).
        __device__ __forceinline__ float ranking_logit(unsigned long long key) {
            const u32 ordered = ~(u32)(key >> 32);
            return __uint_as_float((ordered & 0x80000000u) ? (ordered & 0x7fffffffu) : ~ordered);
        }

        // Sorts the n keys in shared memory ascending, n a power of two (a bitonic sort); the threads of the block
        // share the pairs, and every thread takes part in the barriers.
        __device__ void sort_keys(unsigned long long *keys, int n) {
            for (int size = 2; size <= n; size <<= 1) {
                for (int stride = size >> 1; stride > 0; stride >>= 1) {
                    __syncthreads();
                    for (int t = threadIdx.x; t < n / 2; t += blockDim.x) {
                        const int a = 2 * t - (t & (stride - 1)), b = a + stride;
                        const unsigned long long x = keys[a], y = keys[b];
                        if ((x > y) == ((a & size) == 0)) {
                            keys[a] = y;
                            keys[b] = x;
                        }
                    }
                }
            }
            __syncthreads();
        }

        // The smallest power of two not below n (n at least 1).
        __device__ __forceinline__ int power_of_two_above(int n) { return n <= 1 ? 1 : 1 << (32 - __clz(n - 1)); }

        // Leaves the `count` smallest of the n keys at `in` ascending at the front of `keys`, ~0 past the n-th: the keys
        // come in a tile of RANK_TILE at a time, each sorted behind the smallest count kept from the tiles before
        // (count at most RANK_TILE / 2, so every tile brings at least as many keys as it keeps).
        __device__ void keep_smallest(const unsigned long long *in, int n, int count, unsigned long long *keys) {
            int held = 0, next = 0;
            do {
                const int take = min(n - next, RANK_TILE - held);
                const int size = power_of_two_above(max(held + take, count));
                for (int i = threadIdx.x; i < size - held; i += blockDim.x) keys[held + i] = i < take ? in[next + i] : ~0ull;
                sort_keys(keys, size);
                next += take;
                held = count;
            } while (next < n);
        }

        extern "C" __global__ void __launch_bounds__(RANK_THREADS)
            rank_group_minima(const float *logits, int columns, unsigned long long *minima) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int groups = (columns + RANK_GROUP - 1) / RANK_GROUP, lane = threadIdx.x & 31;
            const float *row = logits + (size_t)blockIdx.y * columns;
            for (int g = blockIdx.x * (RANK_SPAN / RANK_GROUP) + (threadIdx.x >> 5);
                 g < min(groups, (blockIdx.x + 1) * (RANK_SPAN / RANK_GROUP)); g += RANK_THREADS / 32) {
                const int token = g * RANK_GROUP + lane;
                unsigned long long key = token < columns ? ranking_key(row[token], token) : ~0ull;
                for (int o = 16; o > 0; o >>= 1) {
                    const unsigned long long other = __shfl_xor_sync(FULL_MASK, key, o);
                    if (other < key) key = other;
                }
                if (lane == 0) minima[(size_t)blockIdx.y * groups + g] = key;
            }
        }

        // The count-th smallest of the n keys at `in` (~0 where n < count), by the whole block, every thread getting
        // it: a radix select, which fixes the key a byte at a time, most significant first, from a histogram of that
        // byte among the keys whose bytes above it are those fixed so far. `cache` holds RANK_TILE keys: where they
        // all fit, they are read from memory once. Sorting them instead (keep_smallest) took 37 us for the 4,008
        // group minima of a 128,256-token row, on the critical path of an H200's single-sequence step.
        __device__ unsigned long long smallest_at(const unsigned long long *in, int n, int count,
                                                  unsigned long long *cache) {
            __shared__ int buckets[256];
            __shared__ int digit, passed;
            if (n < count) return ~0ull;
            const bool cached = n <= RANK_TILE;
            if (cached)
                for (int i = threadIdx.x; i < n; i += blockDim.x) cache[i] = in[i];
            const unsigned long long *keys = cached ? cache : in;
            const int lane = threadIdx.x & 31;
            unsigned long long prefix = 0;
            int need = count;
            for (int shift = 56; shift >= 0; shift -= 8) {
                for (int b = threadIdx.x; b < 256; b += blockDim.x) buckets[b] = 0;
                __syncthreads();
                const unsigned long long above = shift == 56 ? 0 : ~0ull << (shift + 8);
                // Every lane goes round as often as the others, so the warp's lanes that share a byte add once.
                for (int first = 0; first < n; first += blockDim.x) {
                    const int i = first + threadIdx.x;
                    const unsigned long long key = i < n ? keys[i] : 0;
                    const bool counted = i < n && (key & above) == prefix;
                    const int byte = counted ? (int)(key >> shift) & 0xff : -1;
                    const unsigned peers = __match_any_sync(FULL_MASK, byte);
                    if (counted && lane == __ffs(peers) - 1) atomicAdd(&buckets[byte], __popc(peers));
                }
                __syncthreads();
                // The first warp finds the byte at which the counts reach `need`: lane l holds buckets 8l ... 8l + 7.
                if (threadIdx.x < 32) {
                    int own = 0;
        #pragma unroll
                    for (int j = 0; j < 8; j++) own += buckets[8 * lane + j];
                    const int through = warp_scan_inclusive(own);
                    int before = through - own;
                    if (before < need && need <= through) {
                        for (int j = 0; j < 8; j++) {
                            const int here = buckets[8 * lane + j];
                            if (before + here >= need) {
                                digit = 8 * lane + j;
                                passed = before;
                                break;
                            }
                            before += here;
                        }
                    }
                }
                __syncthreads();
                prefix |= (unsigned long long)digit << shift;
                need -= passed;
                __syncthreads();
            }
            return prefix;
        }

        extern "C" __global__ void rank_thresholds(const unsigned long long *minima, int groups, int count,
                                                   unsigned long long *thresholds, int *counters) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ unsigned long long keys[RANK_TILE];
            const unsigned long long threshold = smallest_at(minima + (size_t)blockIdx.x * groups, groups, count, keys);
            if (threadIdx.x == 0) {
                thresholds[blockIdx.x] = threshold;
                counters[blockIdx.x] = 0;
            }
        }

        extern "C" __global__ void __launch_bounds__(RANK_THREADS)
            rank_candidates(const float *logits, int columns, const unsigned long long *thresholds, int *counters,
                            int capacity, unsigned long long *candidates) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float *row = logits + (size_t)blockIdx.y * columns;
            const unsigned long long threshold = thresholds[blockIdx.y];
            const int lane = threadIdx.x & 31;
            candidates += (size_t)blockIdx.y * capacity;
        #pragma unroll
            for (int n = 0; n < RANK_SPAN / RANK_THREADS; n++) {
                const int token = blockIdx.x * RANK_SPAN + n * RANK_THREADS + threadIdx.x;
                const unsigned long long key = token < columns ? ranking_key(row[token], token) : ~0ull;
                const bool passes = key != ~0ull && key <= threshold;
                // One atomic a warp claims the slots of all its passing keys.
                const unsigned passing = __ballot_sync(FULL_MASK, passes);
                if (passing == 0) continue;
                const int leader = __ffs(passing) - 1;
                int base = 0;
                if (lane == leader) base = atomicAdd(&counters[blockIdx.y], __popc(passing));
                base = __shfl_sync(FULL_MASK, base, leader);
                const int slot = base + __popc(passing & ((1u << lane) - 1));
                if (passes && slot < capacity) candidates[slot] = key;
            }
        }

        extern "C" __global__ void rank_largest(const unsigned long long *candidates, int capacity,
                                                const int *counters, int count, unsigned long long *out) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ unsigned long long keys[RANK_TILE];
            keep_smallest(candidates + (size_t)blockIdx.x * capacity, min(counters[blockIdx.x], capacity), count, keys);
            for (int i = threadIdx.x; i < count; i += blockDim.x) out[(size_t)blockIdx.x * count + i] = keys[i];
        }

        // Temperature sampling of whole rows where the logits are, as the host's Sampler draws (token(drawing:from:)),
        // in three launches over chunks of `chunk` tokens, so that a row's work spreads over many blocks (with one block
        // a row, a 128,256-token vocabulary made an H100's decoding step of one sequence 164 us longer):
        // - draw_chunk_tops: block (c, r) finds chunk c of row r's largest finite logit, its argmax (argmax_pick's
        //   order) and its first +infinity;
        // - draw_chunk_masses: with T = temperatures[r] and `top` the row's largest finite logit, the chunk's kept
        //   mass, the sum in double of w = exp((logit - top) / T) over its finite logits that min-p keeps (w at least
        //   min_ps[r]: the host's w / total below min_p / total), and its last kept token;
        // - draw_pick: block r walks the chunks' masses in token order to the chunk where the running mass passes
        //   units[r] times the row's, then that chunk DRAW_VALUES tokens a thread at a time to the first token where
        //   it does (the last kept token of the chunk, or of the row, where rounding keeps the sum short of it).
        // A row without a finite logit gives its first +infinity, else token 0, as the host's argmax does; a row
        // whose temperature is 0 gives its argmax as argmax_final does, so that one launch serves a step whose
        // sequences decode some greedily and some by drawing. The tokens also go to feed[r] where feed is not null:
        // the tokens of the next decoding step. The sums run in another order than the host's, so a draw can differ
        // from it only where the random number falls within rounding of a boundary.
        #define DRAW_VALUES 4
        template <typename T> __device__ T block_scan_exclusive(T v, T &total) {
            __shared__ T warp_totals[32];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = (blockDim.x + 31) >> 5;
            const T inclusive = warp_scan_inclusive(v);
            if (lane == 31) warp_totals[warp] = inclusive;
            __syncthreads();
            T before = 0;
            total = 0;
            for (int w = 0; w < warps; w++) {
                if (w < warp) before += warp_totals[w];
                total += warp_totals[w];
            }
            __syncthreads();
            return before + inclusive - v;
        }

        struct DrawChunk {
            float top, best;
            int best_index, first_infinity;
            double kept;
            int last_kept;
        };
        static_assert(sizeof(DrawChunk) == \#(drawChunkBytes), "the host sizes the chunks' records");

        __device__ void put_token(int token, int *tokens, int *feed) {
            tokens[blockIdx.x] = token;
            if (feed) feed[blockIdx.x] = token;
        }

        // The smallest of the block's `v`, every thread getting it.
        __device__ int block_min_int(int v) {
            __shared__ int smallest;
            if (threadIdx.x == 0) smallest = 0x7fffffff;
            __syncthreads();
            atomicMin(&smallest, v);
            __syncthreads();
            const int result = smallest;
            __syncthreads();
            return result;
        }

        // The weight a draw gives `token`: 0 where its logit is not finite, min-p drops it, or its ranking key is past
        // `limit` (the edge of a top-p nucleus; ~0 for none).
        __device__ __forceinline__ double draw_weight(float logit, int token, float top, float temperature, float min_p,
                                                      unsigned long long limit) {
            if (!isfinite(logit) || ranking_key(logit, token) > limit) return 0.0;
            const double w = exp((double)((logit - top) / temperature));
            return w < (double)min_p ? 0.0 : w;
        }

        // The largest finite logit of the row whose `count` chunks are `chunks`, every thread getting it.
        __device__ float chunks_top(const DrawChunk *chunks, int count) {
            float top = NEGATIVE_INFINITY;
            for (int c = threadIdx.x; c < count; c += blockDim.x) top = fmaxf(top, chunks[c].top);
            return block_max(top);
        }

        extern "C" __global__ void draw_chunk_tops(const float *logits, int columns, int chunk, DrawChunk *chunks) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float *row = logits + (size_t)blockIdx.y * columns;
            const int end = min(columns, (blockIdx.x + 1) * chunk);
            float top = NEGATIVE_INFINITY, best = NEGATIVE_INFINITY, value;
            int index = 0x7fffffff, infinity = 0x7fffffff, at;
            for (int i = blockIdx.x * chunk + threadIdx.x; i < end; i += blockDim.x) {
                const float v = row[i];
                if (isfinite(v))
                    top = fmaxf(top, v);
                else if (v == -NEGATIVE_INFINITY)
                    infinity = min(infinity, i);
                argmax_pick(best, index, v, i);
            }
            top = block_max(top);
            infinity = block_min_int(infinity);
            argmax_block(best, index, &value, &at);
            if (threadIdx.x == 0) {
                DrawChunk &out = chunks[(size_t)blockIdx.y * gridDim.x + blockIdx.x];
                out.top = top;
                out.best = value;
                out.best_index = at;
                out.first_infinity = infinity;
            }
        }

        // Top-p without top-k where the logits are. The nucleus, the most likely tokens whose shares of the row's
        // total weight first reach top_ps[r] in rank order, is every token whose ranking key is at most a limit, found
        // digit by digit (most significant first) from sums of weights, so that no token is sorted. In each launch of
        // nucleus_round, block (c, r) adds up the weights w = exp((logit - top) / T) of chunk c of row r by the
        // round's digit of their keys' logit word, among the tokens whose earlier digits are those fixed so far, into
        // the row's sums; the last block of the row to arrive then fixes the digit at which the weight of the tokens
        // before it, and under it, first reaches top-p times the row's total (which round 0 sums). Three rounds (12,
        // 12 and 8 bits) fix the logit word at the nucleus's edge. The tokens of that logit weigh the same, and the
        // nucleus takes the first `need` of them by token: where that is fewer than all, two more rounds count them by
        // the digits of their ids (rows of fewer than 2^24 tokens). A row drawn otherwise keeps the limit ~0, and so
        // does one whose nucleus reaches past every token min-p keeps, which min-p then bounds.
        // The weights are added as integers, w in units of 2^-(62 - bits of columns), so a row's total stays below
        // 2^62 and the sums come out the same in any order. The host adds doubles in rank order, so a limit can differ
        // from the host's only where a sum falls within about columns units of top-p times the total (2^-45 of the
        // largest weight for a 128,256-token row).
        #define NUCLEUS_BUCKETS \#(nucleusBuckets)
        #define NUCLEUS_ROUNDS \#(nucleusRounds)
        struct Nucleus {
            double target;                    // top-p times the row's total
            unsigned long long before, limit;  // the weight (or count) ranked before the digits; the largest key taken
            u32 edge, prefix;                  // the logit word at the edge; the digits fixed so far (word, then id)
            int need, done;                    // tokens of the edge's logit the nucleus takes; whether the limit is final
            unsigned arrivals, unused;         // blocks of the round that have added their sums
        };
        static_assert(sizeof(Nucleus) == \#(nucleusBytes), "the host sizes the rows' records");

        __device__ __forceinline__ bool draws_nucleus(const float *temperatures, const int *top_ks, const float *top_ps,
                                                      int row) {
            return temperatures[row] > 0.0f && top_ks[row] == 0 && top_ps[row] < 1.0f;
        }

        // Round `round`'s digit: bits 31-20, 19-8 and 7-0 of the logit word, then 23-12 and 11-0 of the token id.
        __device__ __forceinline__ int nucleus_shift(int round) {
            return round == 0 ? 20 : round == 1 ? 8 : round == 3 ? 12 : 0;
        }
        __device__ __forceinline__ int nucleus_bits(int round) { return round == 2 ? 8 : 12; }

        // A token's weight in the integer units of a row of `columns`.
        __device__ __forceinline__ unsigned long long nucleus_weight(float logit, float top, float temperature,
                                                                     int columns) {
            return (unsigned long long)ldexp(exp((double)((logit - top) / temperature)), 62 - (32 - __clz(columns)));
        }

        extern "C" __global__ void nucleus_round(const float *logits, int columns, int chunk, const DrawChunk *chunks,
                                                 const float *temperatures, const int *top_ks, const float *top_ps,
                                                 Nucleus *nuclei, unsigned long long *sums, int round) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int r = blockIdx.y;
            Nucleus &n = nuclei[r];
            const bool drawn = draws_nucleus(temperatures, top_ks, top_ps, r);
            if (drawn && round > 0 && n.done) return;
            const float top = drawn ? chunks_top(chunks + (size_t)r * gridDim.x, gridDim.x) : NEGATIVE_INFINITY;
            if (top == NEGATIVE_INFINITY) {
                if (round == 0 && blockIdx.x == 0 && threadIdx.x == 0) {
                    n.limit = ~0ull;
                    n.done = 1;
                }
                return;
            }
            __shared__ unsigned long long buckets[NUCLEUS_BUCKETS];
            for (int b = threadIdx.x; b < NUCLEUS_BUCKETS; b += blockDim.x) buckets[b] = 0;
            __syncthreads();
            const float temperature = temperatures[r];
            const u32 prefix = round > 0 ? n.prefix : 0, edge = round >= 3 ? n.edge : 0;
            const int shift = nucleus_shift(round), bits = nucleus_bits(round), above = shift + bits;
            const u32 mask = (1u << bits) - 1;
            const float *row = logits + (size_t)r * columns;
            const int end = min(columns, (blockIdx.x + 1) * chunk);
            for (int i = blockIdx.x * chunk + threadIdx.x; i < end; i += blockDim.x) {
                const float logit = row[i];
                if (!isfinite(logit)) continue;
                const u32 word = (u32)(ranking_key(logit, i) >> 32);
                // The digits above this round's must be those fixed: all 32 bits of the word in the token rounds.
                if (round < 3) {
                    if (above < 32 && (word >> above) != (prefix >> above)) continue;
                    const unsigned long long w = nucleus_weight(logit, top, temperature, columns);
                    if (w > 0) atomicAdd(&buckets[(word >> shift) & mask], w);
                } else {
                    if (word != edge || ((u32)i >> above) != (prefix >> above)) continue;
                    atomicAdd(&buckets[((u32)i >> shift) & mask], 1ull);
                }
            }
            __syncthreads();
            unsigned long long *row_sums = sums + (size_t)r * NUCLEUS_BUCKETS;
            for (int b = threadIdx.x; b <= (int)mask; b += blockDim.x)
                if (buckets[b] > 0) atomicAdd(&row_sums[b], buckets[b]);
            __shared__ bool last;
            __syncthreads();
            if (threadIdx.x == 0) last = add_acquire_release(&n.arrivals, 1u) == gridDim.x - 1;
            __syncthreads();
            if (!last) return;
            // The last block: each thread takes a run of buckets, read and cleared for the next round.
            const int run = NUCLEUS_BUCKETS / blockDim.x, first = threadIdx.x * run;
            unsigned long long own = 0;
            for (int k = 0; k < run; k++) {
                buckets[first + k] = first + k <= (int)mask ? atomicExch(&row_sums[first + k], 0ull) : 0;
                own += buckets[first + k];
            }
            __shared__ double target;
            __shared__ unsigned long long before;
            __shared__ int chosen, latest;
            unsigned long long all;
            const unsigned long long ahead = block_scan_exclusive(own, all);
            if (threadIdx.x == 0) {
                if (round == 0) {
                    n.target = (double)top_ps[r] * (double)all;
                    n.before = 0;
                    n.prefix = 0;
                    n.limit = ~0ull;
                    n.done = 0;
                }
                n.arrivals = 0;
                target = round < 3 ? n.target : (double)n.need;
                before = round < 3 ? n.before : 0;
                chosen = NUCLEUS_BUCKETS;
                latest = -1;
            }
            __syncthreads();
            unsigned long long running = before + ahead;
            for (int k = 0; k < run; k++) {
                if (buckets[first + k] == 0) continue;
                atomicMax(&latest, first + k);
                running += buckets[first + k];
                if ((double)running >= target) {
                    atomicMin(&chosen, first + k);
                    break;
                }
            }
            __syncthreads();
            // Where the sums fall short of the target, the last bucket with any weight.
            const int digit = chosen < NUCLEUS_BUCKETS ? chosen : latest;
            if (threadIdx.x != digit / run) return;
            unsigned long long passed = before + ahead;
            for (int k = first; k < digit; k++) passed += buckets[k];
            if (round < 3)
                n.before = passed;
            else
                n.need -= (int)passed;
            n.prefix |= (u32)digit << shift;
            if (round == 2) {
                // The edge's logit, and how many of its equal weights reach the target.
                n.edge = n.prefix;
                n.prefix = 0;
                const unsigned long long w =
                    nucleus_weight(ranking_logit((unsigned long long)n.edge << 32), top, temperature, columns);
                n.need = (int)fmax(1.0, fmin(ceil((n.target - (double)n.before) / (double)w), 1e9));
                // Where the nucleus takes every token of that logit, no id is needed.
                if ((unsigned long long)n.need >= buckets[digit] / w) {
                    n.limit = (unsigned long long)n.edge << 32 | 0xffffffffull;
                    n.done = 1;
                }
            }
            if (round == NUCLEUS_ROUNDS - 1) {
                n.limit = (unsigned long long)n.edge << 32 | n.prefix;
                n.done = 1;
            }
        }

        extern "C" __global__ void draw_chunk_masses(const float *logits, int columns, int chunk,
                                                     const float *temperatures, const float *min_ps,
                                                     const Nucleus *nuclei, DrawChunk *chunks) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float temperature = temperatures[blockIdx.y], min_p = min_ps[blockIdx.y];
            if (temperature == 0.0f) return;
            DrawChunk *row_chunks = chunks + (size_t)blockIdx.y * gridDim.x;
            const float top = chunks_top(row_chunks, gridDim.x);
            if (top == NEGATIVE_INFINITY) return;
            const float *row = logits + (size_t)blockIdx.y * columns;
            const int end = min(columns, (blockIdx.x + 1) * chunk);
            const unsigned long long limit = nuclei ? nuclei[blockIdx.y].limit : ~0ull;
            double kept = 0.0;
            int last = -1;
            for (int i = blockIdx.x * chunk + threadIdx.x; i < end; i += blockDim.x) {
                const double w = draw_weight(row[i], i, top, temperature, min_p, limit);
                kept += w;
                if (w > 0.0) last = i;
            }
            kept = block_sum(kept);
            last = -block_min_int(-last);
            if (threadIdx.x == 0) {
                row_chunks[blockIdx.x].kept = kept;
                row_chunks[blockIdx.x].last_kept = last;
            }
        }

        // Most chunks a row of draw_pick: the host makes chunks long enough.
        #define DRAW_MAX_CHUNKS \#(drawMaximumChunks)
        extern "C" __global__ void draw_pick(const float *logits, int columns, int chunk, int count,
                                             const float *temperatures, const float *min_ps, const double *units,
                                             const Nucleus *nuclei, const DrawChunk *chunks, int *tokens, int *feed) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ double masses[DRAW_MAX_CHUNKS];
            __shared__ int chosen, latest, found;
            __shared__ double before;
            const float temperature = temperatures[blockIdx.x];
            const DrawChunk *row_chunks = chunks + (size_t)blockIdx.x * count;
            if (temperature == 0.0f) {
                float best = NEGATIVE_INFINITY, value;
                int index = 0x7fffffff, at;
                for (int c = threadIdx.x; c < count; c += blockDim.x)
                    argmax_pick(best, index, row_chunks[c].best, row_chunks[c].best_index);
                argmax_block(best, index, &value, &at);
                if (threadIdx.x == 0) put_token(at == 0x7fffffff ? 0 : at, tokens, feed);
                return;
            }
            const float top = chunks_top(row_chunks, count);
            if (top == NEGATIVE_INFINITY) {
                int infinity = 0x7fffffff;
                for (int c = threadIdx.x; c < count; c += blockDim.x)
                    infinity = min(infinity, row_chunks[c].first_infinity);
                infinity = block_min_int(infinity);
                if (threadIdx.x == 0) put_token(infinity == 0x7fffffff ? 0 : infinity, tokens, feed);
                return;
            }
            for (int c = threadIdx.x; c < count; c += blockDim.x) masses[c] = row_chunks[c].kept;
            __syncthreads();
            if (threadIdx.x == 0) {
                double mass = 0.0;
                for (int c = 0; c < count; c++) mass += masses[c];
                const double threshold = units[blockIdx.x] * mass;
                double passed = 0.0;
                chosen = -1;
                latest = -1;
                for (int c = 0; c < count; c++) {
                    if (masses[c] > 0.0) latest = c;
                    if (chosen < 0 && masses[c] > 0.0 && passed + masses[c] > threshold) {
                        chosen = c;
                        before = threshold - passed;
                    }
                    if (chosen < 0) passed += masses[c];
                }
                found = 0x7fffffff;
            }
            __syncthreads();
            if (chosen < 0) {
                // Rounding kept the row's running sum short of the threshold: its last kept token.
                if (threadIdx.x == 0) put_token(latest < 0 ? 0 : row_chunks[latest].last_kept, tokens, feed);
                return;
            }
            // The chosen chunk's tokens in order, their running mass against what is left of the threshold.
            const float *row = logits + (size_t)blockIdx.x * columns;
            const float min_p = min_ps[blockIdx.x];
            const unsigned long long limit = nuclei ? nuclei[blockIdx.x].limit : ~0ull;
            const int start = chosen * chunk, end = min(columns, start + chunk);
            const double threshold = before;
            double passed = 0.0;
            for (int base = start; base < end; base += blockDim.x * DRAW_VALUES) {
                const int first = base + threadIdx.x * DRAW_VALUES;
                double w[DRAW_VALUES], own = 0.0;
        #pragma unroll
                for (int k = 0; k < DRAW_VALUES; k++) {
                    w[k] = first + k < end ? draw_weight(row[first + k], first + k, top, temperature, min_p, limit) : 0.0;
                    own += w[k];
                }
                double sum;
                double running = passed + block_scan_exclusive(own, sum);
        #pragma unroll
                for (int k = 0; k < DRAW_VALUES; k++) {
                    running += w[k];
                    if (w[k] > 0.0 && running > threshold) {
                        atomicMin(&found, first + k);
                        break;
                    }
                }
                __syncthreads();
                if (found != 0x7fffffff) break;
                passed += sum;
            }
            if (threadIdx.x == 0) put_token(found != 0x7fffffff ? found : row_chunks[chosen].last_kept, tokens, feed);
        }

        // Top-k sampling (with top-p and min-p among the k) where the logits are, as the host's Sampler draws it
        // (token(drawing:from:)): block r reads the `count` ranking keys of row r rank_largest left
        // (most likely first) and, where top_ks[r] is above 0, thread i takes the i-th of the first top_ks[r]. With
        // T = temperatures[r] and `top` the first one's logit: w = exp((logit - top) / T) in double and their total;
        // min-p drops a share w / total below min_ps[r] / total; top-p keeps, in rank order, each token while the
        // kept share before it is below top_ps[r]; then, walking the kept tokens in token order (sorted by id), the
        // first at which the running share passes units[r] times the kept share (the last kept one where rounding
        // keeps the sum short of it). A row without a finite candidate gives token 0. Rows whose top_ks[r] or
        // temperature is 0 are left to the whole-row draw (the argmax); the tokens also go to feed[r] where feed is not
        // null.
        #define CANDIDATE_THREADS \#(candidateThreads)

        extern "C" __global__ void __launch_bounds__(CANDIDATE_THREADS)
            draw_candidates(const unsigned long long *keys, int count, const float *temperatures, const int *top_ks,
                            const float *top_ps, const float *min_ps, const double *units, int *tokens, int *feed) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const int k = min(top_ks[blockIdx.x], min(count, CANDIDATE_THREADS));
            if (k <= 0 || temperatures[blockIdx.x] == 0.0f) return;
            __shared__ double shares[CANDIDATE_THREADS];
            __shared__ unsigned long long sorted[CANDIDATE_THREADS];
            __shared__ int found, last;
            const unsigned long long *row = keys + (size_t)blockIdx.x * count;
            const int i = threadIdx.x;
            if (row[0] == ~0ull) {
                if (i == 0) put_token(0, tokens, feed);
                return;
            }
            const unsigned long long key = i < k ? row[i] : ~0ull;
            const float top = ranking_logit(row[0]), temperature = temperatures[blockIdx.x];
            const double w = key == ~0ull ? 0.0 : exp((double)((ranking_logit(key) - top) / temperature));
            const double total = block_sum(w);
            double share = w / total;
            if (share < 1.0 / total * (double)min_ps[blockIdx.x]) share = 0.0;
            if (top_ps[blockIdx.x] < 1.0f) {
                double all;
                // The shares before this one are all kept while their sum is below top-p.
                if (block_scan_exclusive(share, all) >= (double)top_ps[blockIdx.x] && i > 0) share = 0.0;
            }
            const double mass = block_sum(share);
            shares[i] = share;
            sorted[i] = share > 0.0 ? (key & 0xffffffffull) << 32 | (unsigned)i : ~0ull;
            if (i == 0) {
                found = 0x7fffffff;
                last = -1;
            }
            sort_keys(sorted, CANDIDATE_THREADS);
            const unsigned long long mine = sorted[i];
            const double own = mine == ~0ull ? 0.0 : shares[mine & 0xffffffffull];
            double all;
            const double running = block_scan_exclusive(own, all) + own;
            if (own > 0.0) {
                atomicMax(&last, i);
                if (running > units[blockIdx.x] * mass) atomicMin(&found, i);
            }
            __syncthreads();
            if (i == 0) put_token((int)(sorted[found != 0x7fffffff ? found : last] >> 32), tokens, feed);
        }
        """#
}
