extension KernelSource {
    /// Ternary x int8 products of several tokens: the dp4a kernel for up to 8 tokens a pass, and the int8 tensor-core
    /// kernel with its split finish.
    static let ternaryProductSource = #"""
        // dot(code, a) over one 64-column chunk: `words` its packed codes (layout below), `a` its 64 activations as
        // four int4 `stride` int4 apart. The codes of bit pair j are masked where they lie rather than shifted down
        // first, one instruction fewer for 12 of the chunk's 16 dp4a, in kernels whose instructions, not their bytes,
        // set the pace of a one-token step: a masked byte is the code times 4^j, so dots[j] gathers pair j's
        // products times 4^j (at most 4 * 4 * 192 * 128) and is shifted back, exactly, at the end. Kept across a
        // lane's chunks instead, the four sums took 55 registers, not 48, and Falcon3-10B's shape decoded 6% slower.
        __device__ __forceinline__ int chunk_codes_dot(const u32 words[4], const int4 *a, int stride) {
            int dots[4] = {0, 0, 0, 0};
        #pragma unroll
            for (int j = 0; j < 4; j++) {
                const int4 v = a[j * stride];
                const int act[4] = {v.x, v.y, v.z, v.w};
        #pragma unroll
                for (int m = 0; m < 4; m++) dots[j] = dot_codes(words[m] & (0x03030303u << (2 * j)), act[m], dots[j]);
            }
            return (dots[0] + (dots[1] >> 2)) + ((dots[2] >> 4) + (dots[3] >> 6));
        }

        // sum plus the sixteen int8 activations of v.
        __device__ __forceinline__ int add_bytes(int4 v, int sum) {
            return __dp4a(v.w, 0x01010101, __dp4a(v.z, 0x01010101, __dp4a(v.y, 0x01010101, __dp4a(v.x, 0x01010101, sum))));
        }

        // dot(w, a) over one 64-column chunk (chunk_codes_dot's arguments): dot(code, a) - sum(a), exact in integers.
        __device__ __forceinline__ int chunk_dot(const u32 words[4], const int4 *a, int stride = 1) {
            int sum = 0;
        #pragma unroll
            for (int j = 0; j < 4; j++) sum = add_bytes(a[j * stride], sum);
            return chunk_codes_dot(words, a, stride) - sum;
        }

        // y[t][r] = (sum_c w[r][c] q[t][c]) / q_scales[t] * w_scale, the dot product exact in integers.
        //
        // Weights: `chunks` 16-byte chunks of 64 columns per row. In word m of a chunk, byte i holds in bits
        // 2j..2j+1 the code w + 1 of column 16j + 4m + i, so (word m >> 2j) & 0x03030303 lines up with int32 m of
        // the j-th 16 activations, and dot(w, a) = dot(code, a) - sum(a). The tensor-core kernels read one word a
        // row where they would read four in the plain order (columns 16m + 4j + i): word m holds the 16 columns
        // lane m of a quad needs. Activations: `chunks * 64` bytes per token, zero past the real width. Scales: one per tensor (`block_chunks` 0), or one per
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
        // their addresses are worked out once. A lane decodes word tig of its rows' chunks into A fragments (byte i
        // of (word >> 2j) & 0x03030303 is the code of column 16j + 4 tig + i, so code - 1 per byte gives four
        // columns in order) and takes its B fragments with ldmatrix; weight chunks are swizzled and activation rows
        // padded to MMA_STAGE_WORDS words so that fragment loads hit different banks. Rows past the end load the last real one (and are not stored); tokens past the
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

        template <int TILE_ROWS = MMA_ROWS>
        __device__ __forceinline__ MmaMatrix mma_matrix(int &tile, const uint4 *w0, const float *s0, float *y0,
                                                        int rows0, const uint4 *w1, const float *s1, float *y1,
                                                        int rows1, const uint4 *w2, const float *s2, float *y2,
                                                        int rows2) {
            const int tiles0 = (rows0 + TILE_ROWS - 1) / TILE_ROWS, tiles1 = (rows1 + TILE_ROWS - 1) / TILE_ROWS;
            if (tile < tiles0) return MmaMatrix{w0, s0, y0, rows0, 0};
            tile -= tiles0;
            if (tile < tiles1) return MmaMatrix{w1, s1, y1, rows1, rows0};
            tile -= tiles1;
            return MmaMatrix{w2, s2, y2, rows2, rows0 + rows1};
        }

        // The tokens and columns of block (blockIdx.x, blockIdx.y): blockIdx.y is the token tile plus, with `partial`,
        // the share of the columns times the tiles: share z takes chunks z * split_chunks ..< (z + 1) * split_chunks
        // and adds its exact sums into partial[token][row] (finish_products turns them into y).
        struct MmaShare {
            int t0, first, last;
        };

        __device__ __forceinline__ MmaShare mma_share(int tokens, int chunks, int split_chunks, const int *partial) {
            const int token_tiles = (tokens + MMA_TOKENS - 1) / MMA_TOKENS;
            const int first = partial ? (int)(blockIdx.y / token_tiles) * split_chunks : 0;
            return MmaShare{(int)(blockIdx.y % token_tiles) * MMA_TOKENS, first,
                            partial ? min(chunks, first + split_chunks) : chunks};
        }

        // This thread's copies of a stage: chunk threadIdx.x % MMA_CHUNKS of weight rows threadIdx.x / MMA_CHUNKS +
        // i * (MMA_THREADS / MMA_CHUNKS) of the block's (the last real row past the end), and 16-byte piece
        // threadIdx.x % (MMA_CHUNKS * 4) of tokens threadIdx.x / (MMA_CHUNKS * 4) + j * (MMA_THREADS / (MMA_CHUNKS * 4))
        // of its tile (not copied past the last token).
        #define MMA_B_PIECES (MMA_CHUNKS * 4)
        template <int SLOTS>
        struct MmaCopies {
            const uint4 *weights[SLOTS];
            const i8 *activations[MMA_B_SLOTS];
            int row, chunk, slot, piece, token;

            __device__ __forceinline__ MmaCopies(const uint4 *w, int row0, int rows, int chunks, const i8 *q, int t0,
                                                 int tokens) {
                row = threadIdx.x / MMA_CHUNKS;
                chunk = threadIdx.x % MMA_CHUNKS;
                slot = MMA_SWIZZLE(row, chunk);
                piece = threadIdx.x % MMA_B_PIECES;
                token = threadIdx.x / MMA_B_PIECES;
        #pragma unroll
                for (int i = 0; i < SLOTS; i++)
                    weights[i] = w + (size_t)min(row0 + row + i * (MMA_THREADS / MMA_CHUNKS), rows - 1) * chunks;
        #pragma unroll
                for (int j = 0; j < MMA_B_SLOTS; j++)
                    activations[j] = q + (size_t)min(t0 + token + j * (MMA_THREADS / MMA_B_PIECES), tokens - 1) *
                                             chunks * 64 + (piece % 4) * 16;
            }

            // Copies the weights of chunks c ... c + MMA_CHUNKS - 1 (the last one again past `last`) into `stage`.
            __device__ __forceinline__ void copy_weights(uint4 (*stage)[MMA_CHUNKS], int c, int last) const {
        #pragma unroll
                for (int i = 0; i < SLOTS; i++)
                    copy_async_16(&stage[row + i * (MMA_THREADS / MMA_CHUNKS)][slot], weights[i] + min(c + chunk, last - 1));
            }

            // Calls place(j, token, source) for each activation copy of chunks c ... that is inside the tile.
            template <typename Place>
            __device__ __forceinline__ void copy_activations(int c, int last, int t0, int tokens, Place place) const {
                const size_t offset = (size_t)min(c + piece / 4, last - 1) * 64;
        #pragma unroll
                for (int j = 0; j < MMA_B_SLOTS; j++) {
                    const int t = token + j * (MMA_THREADS / MMA_B_PIECES);
                    if (t0 + t < tokens) place(t, activations[j] + offset);
                }
            }
        };

        extern "C" __global__ void ternary_matmul_mma(int chunks, const i8 *q, const float *q_scales, int tokens,
                                                      int split_chunks, int *partial, const uint4 *w0,
                                                      const float *s0, float *y0, int rows0, const uint4 *w1,
                                                      const float *s1, float *y1, int rows1, const uint4 *w2,
                                                      const float *s2, float *y2, int rows2) {
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
            const MmaShare share = mma_share(tokens, chunks, split_chunks, partial);
            const int row0 = tile * MMA_ROWS, t0 = share.t0, first = share.first, last = share.last;
            const MmaCopies<MMA_A_SLOTS> copies(w, row0, rows, chunks, q, t0, tokens);
            // A stage's copies: its weights, then its activations and the commit that closes the stage's group.
            // Every stage commits a group, empty past the last chunk, so waiting for all but MMA_STAGES - 2 groups
            // always means the oldest stage has landed.
            auto load_weights = [&](int buffer, int c) {
                if (c < last) copies.copy_weights(a_stage[buffer], c, last);
            };
            auto load_activations = [&](int buffer, int c) {
                if (c < last) {
                    copies.copy_activations(c, last, t0, tokens, [&](int t, const i8 *source) {
                        copy_async_16(&b_stage[buffer][t][copies.piece * 4], source);
                    });
                }
                COPY_ASYNC_COMMIT();
            };
            int acc[2][4][4];
        #pragma unroll
            for (int m = 0; m < 2; m++)
        #pragma unroll
                for (int n = 0; n < 4; n++)
        #pragma unroll
                    for (int k = 0; k < 4; k++) acc[m][n][k] = 0;
            // The weights are no kernel's output: the first stages' are requested before waiting for the kernel
            // before, as in ternary_matmul_wgmma.
        #pragma unroll
            for (int stage = 0; stage < MMA_STAGES - 1; stage++) load_weights(stage, first + stage * MMA_CHUNKS);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
        #pragma unroll
            for (int stage = 0; stage < MMA_STAGES - 1; stage++) load_activations(stage, first + stage * MMA_CHUNKS);
            for (int c = first, buffer = 0; c < last; c += MMA_CHUNKS, buffer = (buffer + 1) % MMA_STAGES) {
                COPY_ASYNC_WAIT(MMA_STAGES - 2);
                // Every warp is done with the stage the load below refills (the one before this).
                __syncthreads();
                load_weights((buffer + MMA_STAGES - 1) % MMA_STAGES, c + (MMA_STAGES - 1) * MMA_CHUNKS);
                load_activations((buffer + MMA_STAGES - 1) % MMA_STAGES, c + (MMA_STAGES - 1) * MMA_CHUNKS);
        #pragma unroll
                for (int k = k_first; k < k_first + MMA_CHUNKS / 2; k++) {
                    if (c + k >= last || t0 + warp_token >= tokens) break;
                    // Word tig of each of the lane's four rows: its codes of columns 16j + 4 tig + i.
                    u32 word[2][2];
        #pragma unroll
                    for (int m = 0; m < 2; m++)
        #pragma unroll
                        for (int h = 0; h < 2; h++)
                            word[m][h] = ((const u32 *)&a_stage[buffer][warp_row + 16 * m + 8 * h + group]
                                                                [MMA_SWIZZLE(warp_row + 16 * m + 8 * h + group, k)])[tig];
                    // B fragments of chunk k for 8 tokens: matrix p of ldmatrix.x4 is words 4p ... 4p + 3 of the
                    // chunk, so registers 2 half and 2 half + 1 are b0 and b1 of that half.
                    u32 b[4][4];
        #pragma unroll
                    for (int n = 0; n < 4; n++) {
                        const unsigned address = (unsigned)__cvta_generic_to_shared(
                            b_stage[buffer][warp_token + n * 8 + (lane & 7)] + k * 16 + 4 * (lane >> 3));
                        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                                     : "=r"(b[n][0]), "=r"(b[n][1]), "=r"(b[n][2]), "=r"(b[n][3])
                                     : "r"(address));
                    }
        #pragma unroll
                    for (int half = 0; half < 2; half++) {
                        u32 a[2][4];
        #pragma unroll
                        for (int m = 0; m < 2; m++) {
                            a[m][0] = ternary_bytes(word[m][0], 2 * half);
                            a[m][1] = ternary_bytes(word[m][1], 2 * half);
                            a[m][2] = ternary_bytes(word[m][0], 2 * half + 1);
                            a[m][3] = ternary_bytes(word[m][1], 2 * half + 1);
                        }
        #pragma unroll
                        for (int n = 0; n < 4; n++) {
        #pragma unroll
                            for (int m = 0; m < 2; m++)
                                mma_int8(acc[m][n], a[m][0], a[m][1], a[m][2], a[m][3], b[n][2 * half],
                                         b[n][2 * half + 1]);
                        }
                    }
                }
            }
            // Warps 4-7 hand their sums to the warps of the same quarters (through the stage memory, free once the
            // empty trailing groups are waited for and every warp is done).
            COPY_ASYNC_WAIT(0);
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
            // A reciprocal for each of the lane's eight tokens, and no division an output (see divide_by).
            float token_scales[4][2], token_inverses[4][2];
        #pragma unroll
            for (int n = 0; n < 4; n++)
        #pragma unroll
                for (int j = 0; j < 2; j++) {
                    const int t = t0 + warp_token + n * 8 + tig * 2 + j;
                    token_scales[n][j] = !partial && t < tokens ? q_scales[t] : 1.0f;
                    token_inverses[n][j] = __frcp_rn(token_scales[n][j]);
                }
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
                                matrix.y[(size_t)t * rows + r] =
                                    divide_by((float)acc[m][n][k], token_scales[n][k & 1], token_inverses[n][k & 1]) *
                                    w_scale;
                        }
                    }
        #endif
        }

        // The products of ternary_matmul_mma on Hopper's warpgroup tensor cores (sm_90a), bit for bit the same sums:
        // a block of WG_ROWS = 128 rows and MMA_TOKENS = 64 tokens, each of its two warpgroups 64 of the rows over
        // every column, with one wgmma m64n64k32 a 32-column step. A lane decodes its A fragments into registers from
        // word tig of its two rows' chunks, as in ternary_matmul_mma (warp w of a group: rows 16w ... 16w + 15); the
        // tensor cores read B straight from shared memory, which both warpgroups share, so each block reads the
        // activations once for 128 rows instead of 64 (on an H200 512-token prompts ran 9% faster than with 64-row
        // blocks, which already took a 64-sequence step's gate and up product from 17.4 us with mma.sync to 14.2).
        // B is stored K-major in the 128-byte swizzled layout: a stage's 256 bytes of a token are two columns of
        // 1024-byte atoms of 8 tokens x 128 bytes, the 16-byte piece p of token t at piece p ^ (t % 8) of its row,
        // so the eight threads that copy 128 contiguous bytes of a token write each 16-byte bank group once; a
        // step's descriptor starts at its 32 bytes within the atom row, 1024 bytes to the next 8 tokens. The stages,
        // their loads and the split over columns are ternary_matmul_mma's.
        #define WG_ROWS \#(warpgroupRows)
        #define WG_A_SLOTS (WG_ROWS * MMA_CHUNKS / MMA_THREADS)

        // The shared-memory matrix descriptor of a 128-byte swizzled K-major operand whose 8-row groups are
        // `stride` bytes apart.
        __device__ __forceinline__ unsigned long long wgmma_swizzled_descriptor(const void *shared, unsigned stride) {
            const unsigned address = (unsigned)__cvta_generic_to_shared(shared);
            return (unsigned long long)((address >> 4) & 0x3fff) | (1ull << 16) |
                   ((unsigned long long)((stride >> 4) & 0x3fff) << 32) | (1ull << 62);
        }

        extern "C" __global__ void ternary_matmul_wgmma(int chunks, const i8 *q, const float *q_scales, int tokens,
                                                        int split_chunks, int *partial, const uint4 *w0,
                                                        const float *s0, float *y0, int rows0, const uint4 *w1,
                                                        const float *s1, float *y1, int rows1, const uint4 *w2,
                                                        const float *s2, float *y2, int rows2) {
        #if defined(__CUDA_ARCH_FEAT_SM90_ALL)
            int tile = blockIdx.x;
            const MmaMatrix matrix = mma_matrix<WG_ROWS>(tile, w0, s0, y0, rows0, w1, s1, y1, rows1, w2, s2, y2, rows2);
            const uint4 *w = matrix.w;
            const int rows = matrix.rows, total_rows = rows0 + rows1 + rows2;
            extern __shared__ __align__(16) uint4 mma_shared[];
            typedef uint4 AStage[WG_ROWS][MMA_CHUNKS];
            typedef u8 BStage[MMA_TOKENS * MMA_CHUNKS * 64];
            AStage *a_stage = (AStage *)mma_shared;
            // The swizzle works on address bits, so the atoms start on a 1024-byte boundary.
            u8 *b_base = (u8 *)(a_stage + MMA_STAGES);
            b_base += (1024u - ((unsigned)__cvta_generic_to_shared(b_base) & 1023u)) & 1023u;
            BStage *b_stage = (BStage *)b_base;
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = lane >> 2, tig = lane & 3;
            const int warp_row = (warp >> 2) * 64 + (warp & 3) * 16;
            const MmaShare share = mma_share(tokens, chunks, split_chunks, partial);
            const int row0 = tile * WG_ROWS, t0 = share.t0, first = share.first, last = share.last;
            const MmaCopies<WG_A_SLOTS> copies(w, row0, rows, chunks, q, t0, tokens);
            // A stage's copies: its weights, then its activations and the commit that closes the stage's group.
            auto load_weights = [&](int buffer, int c) {
                if (c < last) copies.copy_weights(a_stage[buffer], c, last);
            };
            auto load_activations = [&](int buffer, int c) {
                if (c < last) {
                    const int p = copies.piece;
                    copies.copy_activations(c, last, t0, tokens, [&](int t, const i8 *source) {
                        copy_async_16(&b_stage[buffer][(p / 8) * (MMA_TOKENS * 128) + (t / 8) * 1024 + (t % 8) * 128 +
                                                       ((p % 8) ^ (t % 8)) * 16],
                                      source);
                    });
                }
                COPY_ASYNC_COMMIT();
            };
            int acc[32];
        #pragma unroll
            for (int i = 0; i < 32; i++) acc[i] = 0;
            // The weights are no kernel's output: the first stages' are requested before waiting for the kernel
            // before, and land while it ends; the activations follow once it has.
        #pragma unroll
            for (int stage = 0; stage < MMA_STAGES - 1; stage++) load_weights(stage, first + stage * MMA_CHUNKS);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
        #pragma unroll
            for (int stage = 0; stage < MMA_STAGES - 1; stage++) load_activations(stage, first + stage * MMA_CHUNKS);
            // The tile's token scales and their reciprocals, for the rescale below (visible to every thread after the
            // loop's first block barrier): one reciprocal a token instead of a division an output.
            __shared__ float token_scales[MMA_TOKENS], token_inverses[MMA_TOKENS];
            if (!partial && threadIdx.x < MMA_TOKENS && t0 + (int)threadIdx.x < tokens) {
                token_scales[threadIdx.x] = q_scales[t0 + threadIdx.x];
                token_inverses[threadIdx.x] = __frcp_rn(token_scales[threadIdx.x]);
            }
            // A loop that runs at least once (every block has columns: first < last): with a path around it, sums
            // that no product defined reach the wait below, and the compiler then waits for each product to end
            // before issuing the next (ptxas C7515, "serialized due to non wgmma instructions defining accumulator
            // registers").
            int c = first, buffer = 0;
            do {
                // The last stage's products are done with the stage the load below refills, and this stage has landed
                // where the tensor cores (another proxy than the copies') read it.
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
                COPY_ASYNC_WAIT(MMA_STAGES - 2);
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                __syncthreads();
                load_weights((buffer + MMA_STAGES - 1) % MMA_STAGES, c + (MMA_STAGES - 1) * MMA_CHUNKS);
                load_activations((buffer + MMA_STAGES - 1) % MMA_STAGES, c + (MMA_STAGES - 1) * MMA_CHUNKS);
                u32 a[MMA_CHUNKS][2][4];
        #pragma unroll
                for (int k = 0; k < MMA_CHUNKS; k++) {
                    const int row = warp_row + group;
                    const u32 low = ((const u32 *)&a_stage[buffer][row][MMA_SWIZZLE(row, k)])[tig];
                    const u32 high = ((const u32 *)&a_stage[buffer][row + 8][MMA_SWIZZLE(row + 8, k)])[tig];
        #pragma unroll
                    for (int half = 0; half < 2; half++) {
                        a[k][half][0] = ternary_bytes(low, 2 * half);
                        a[k][half][1] = ternary_bytes(high, 2 * half);
                        a[k][half][2] = ternary_bytes(low, 2 * half + 1);
                        a[k][half][3] = ternary_bytes(high, 2 * half + 1);
                    }
                }
                asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
        #pragma unroll
                for (int k = 0; k < MMA_CHUNKS; k++) {
                    if (c + k >= last) break;
        #pragma unroll
                    for (int half = 0; half < 2; half++) {
                        const int kb = k * 64 + 32 * half;
                        const unsigned long long b =
                            wgmma_swizzled_descriptor(&b_stage[buffer][(kb / 128) * (MMA_TOKENS * 128) + kb % 128], 1024);
                        asm volatile(
                            "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 "
                            "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                            "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                            "{%32, %33, %34, %35}, %36, 1;"
                            : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3]), "+r"(acc[4]), "+r"(acc[5]),
                              "+r"(acc[6]), "+r"(acc[7]), "+r"(acc[8]), "+r"(acc[9]), "+r"(acc[10]), "+r"(acc[11]),
                              "+r"(acc[12]), "+r"(acc[13]), "+r"(acc[14]), "+r"(acc[15]), "+r"(acc[16]),
                              "+r"(acc[17]), "+r"(acc[18]), "+r"(acc[19]), "+r"(acc[20]), "+r"(acc[21]),
                              "+r"(acc[22]), "+r"(acc[23]), "+r"(acc[24]), "+r"(acc[25]), "+r"(acc[26]),
                              "+r"(acc[27]), "+r"(acc[28]), "+r"(acc[29]), "+r"(acc[30]), "+r"(acc[31])
                            : "r"(a[k][half][0]), "r"(a[k][half][1]), "r"(a[k][half][2]), "r"(a[k][half][3]), "l"(b)
                            : "memory");
                    }
                }
                asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
                // A stage's products end here, not only at the top of the next pass: the tensor cores read A from
                // these registers until the wait, and the compiler, which does not know that, may give them to other
                // values first (sums wrong from run to run, which selftest's checks of 17,000 rows and more caught;
                // on an H200 waiting here cost 0.4-0.7% of a prompt's speed and nothing at 64 sequences).
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
                c += MMA_CHUNKS;
                buffer = (buffer + 1) % MMA_STAGES;
            } while (c < last);
            asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
            // The sums are read only after the wait, which does not name them.
        #pragma unroll
            for (int i = 0; i < 32; i++) asm volatile("" : "+r"(acc[i])::"memory");
            // Lane (group, tig) of warp w holds rows 16w + group (+ 8 for the odd pairs) of its warpgroup's 64, tokens
            // 8n + 2 tig and 8n + 2 tig + 1 of the 64 in acc[4n ... 4n + 3].
            const float w_scale = matrix.scales[0];
        #pragma unroll
            for (int i = 0; i < 32; i++) {
                const int r = row0 + warp_row + group + 8 * ((i >> 1) & 1);
                const int t = t0 + 8 * (i >> 2) + 2 * tig + (i & 1);
                if (r < rows && t < tokens) {
                    if (partial)
                        atomicAdd(partial + (size_t)t * total_rows + matrix.offset + r, acc[i]);
                    else
                        matrix.y[(size_t)t * rows + r] =
                            divide_by((float)acc[i], token_scales[t - t0], token_inverses[t - t0]) * w_scale;
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
        """#
}
