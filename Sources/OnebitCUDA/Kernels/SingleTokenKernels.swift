extension KernelSource {
    /// Weight chunks each lane of `ternary_fused_1` copies into shared memory before it waits (`STAGE_SLOTS`).
    static let stageSlots = 8

    /// Most chunks a row of `ternary_fused_1` may have, its activations in shared memory (28,672 columns): with the
    /// staged weights, 60 KB a block, within what every GPU the kernels compile for allows. Wider rows take
    /// `ternary_matmul_1`.
    static let singleTokenMaximumChunks = 448

    /// Warps of a single-token attention block (`attention_split`).
    static let attentionSplitWarps = 4

    /// Fewest cached positions a split of single-token attention takes.
    static let attentionSplitLeast = 32

    /// Most warps a block of `ternary_tiles_1` has, sharing its tile's quads of chunks.
    static let tileWarps = 8

    /// Most tokens a launch of `ternary_tiles_n` takes: the columns of an `mma.sync.m16n8k32`'s B.
    static let tileTokens = 8

    /// Shared memory a `ternary_tiles_1` block takes besides its dynamic memory: its 2 KB of static memory and the
    /// driver's 1 KB.
    static let tileStaticBytes = 3 * 1024

    /// Shared memory a `ternary_tiles_n` block takes besides its dynamic memory: its 9 KB of static memory (mostly
    /// its sums: 2 matrices, `tileWarps` warps, 16 rows, `tileTokens` tokens) and the driver's 1 KB.
    static let fewTokenTileStaticBytes = 10 * 1024

    /// Dynamic shared memory `ternary_tiles_1` and `ternary_tiles_n` may have: within what every GPU they run on
    /// allows a block.
    static let tileSharedLimit = 96 * 1024

    /// Dynamic shared memory of a `ternary_tiles_1` or `ternary_tiles_n` block over `matrices` tiles of rows of
    /// `chunks` chunks: each tile's 16 rows of `chunks` rounded up to a multiple of 4, 4 more than a multiple of 8
    /// chunks apart (so the lanes of a 128-bit load find different banks), then each token's activations, as many
    /// chunks as a row and 64 bytes more between tokens (so two tokens' pieces in one load find different banks).
    static func tileSharedBytes(matrices: Int, chunks: Int, tokens: Int = 1) -> Int {
        let width = (chunks + 3) & ~3
        let pitch = width & 4 != 0 ? width : width + 4
        return matrices * 16 * pitch * 16 + tokens * width * 64 + (tokens - 1) * 64
    }

    /// Widest heads `attention_split` takes; wider ones take `attention_split_wide`.
    static let attentionSplitHeadDim = 128

    /// Warps of a `ternary_tiles_stream_1` block. On an H200 (kernel traces of the Falcon3-10B shape) its gate and up
    /// product took 15.9 us of a layer with 4 warps and gate's and up's mmas interleaved, 18.5-18.6 with 6 or 8
    /// (whose 111 registers left two blocks a multiprocessor); with the tiles one after the other, 17.3-17.7 with 4,
    /// 6 or 8.
    static let streamWarps = 4

    /// Tiles a `ternary_tiles_stream_1` block has in flight: with 3 (two blocks a multiprocessor instead of three,
    /// 8 warps each), the Falcon3-10B shape's gate and up product took 20.6 us of a layer instead of 18.7 on an H200.
    static let streamStages = 2

    /// Registers a thread of `ternary_tiles_stream_1` may take (a test holds it to that): four of its blocks fit a
    /// multiprocessor's registers.
    static let streamRegisters = 128

    /// Shared memory a `ternary_tiles_stream_1` block takes besides its dynamic memory: its 1,056 bytes of static
    /// memory (mostly two buffers of sums) and the driver's 1 KB.
    static let streamStaticBytes = 1_056 + 1_024

    /// Dynamic shared memory of a `ternary_tiles_stream_1` block over `matrices` tiles of rows of `chunks` chunks:
    /// `streamStages` stages of them as ``tileSharedBytes(matrices:chunks:tokens:)`` lays them out, then the token's
    /// activations.
    static func streamSharedBytes(matrices: Int, chunks: Int) -> Int {
        let activations = tileSharedBytes(matrices: 0, chunks: chunks)
        return streamStages * (tileSharedBytes(matrices: matrices, chunks: chunks) - activations) + activations
    }

    /// Dynamic shared memory of a `ternary_fused_1` block of 256 threads for rows of `chunks` chunks: 16 bytes a
    /// slot and lane, then the token's activations.
    static func singleTokenSharedBytes(chunks: Int) -> Int { stageSlots * 16 * 256 + chunks * 64 }

    /// The kernels of a one-token step: fused products that fold in the residual add or the gated activation (a
    /// group of lanes a row, or tiles of 16 rows on the tensor cores, also for steps of up to `tileTokens` tokens),
    /// and attention split over the cached positions.
    static let singleTokenSource = #"""
        // Most warps a block of ternary_tiles_1 has.
        #define TILE_WARPS \#(tileWarps)

        // Chunks of weights each lane of ternary_fused_1 copies into shared memory before the kernel waits for the
        // one before it (STAGE_SLOTS * 512 bytes a warp, as its dynamic shared memory); none before sm_80, which has
        // no cp.async.
        #if __CUDA_ARCH__ >= 800
        #define STAGE_SLOTS \#(stageSlots)
        #else
        #define STAGE_SLOTS 0
        #endif

        // This lane's next weight chunk: from its slot in shared memory while the lane's staged chunks last (`slot`
        // counts them, in the order stage_row requested them), else from memory.
        __device__ __forceinline__ uint4 next_chunk(const uint4 *weights, int c, const uint4 *slots, int &slot) {
            if (slot < STAGE_SLOTS) return slots[32 * slot++];
            return load_once(weights + c);
        }

        // The rescaled product of row `row` of a ternary matrix with one token's int8 activations (`pieces`, the
        // token's chunks piece-major; `total`, the sum of all its activations), in every lane of a group of LANES.
        // Lane i of the group takes chunks i, i + LANES, ...: with 32 lanes the same operations in the same order as
        // ternary_rows<1>, so even float sums of per-block scales come out bit for bit the same; integer sums do
        // with any LANES. A lane whose row is not `valid` reads nothing but joins the group's shuffles. A matrix of
        // one scale (block_chunks 0) has it in `tensor_scale`, read by the caller before its wait.
        template <int LANES>
        __device__ __forceinline__ float ternary_row_1(const uint4 *__restrict__ w, int row, bool valid, int chunks,
                                                       const int4 *pieces, int total, float q_scale,
                                                       const float *__restrict__ w_scales, int block_chunks,
                                                       float tensor_scale, const uint4 *slots, int &slot) {
            const uint4 *weights = w + (size_t)row * chunks;
            int exact = 0;
            float blocked = 0.0f;
            for (int c = threadIdx.x & (LANES - 1); valid && c < chunks; c += LANES) {
                const uint4 packed = next_chunk(weights, c, slots, slot);
                const u32 words[4] = {packed.x, packed.y, packed.z, packed.w};
                if (block_chunks) {
                    const float block_scale = w_scales[(size_t)row * (chunks / block_chunks) + c / block_chunks];
                    blocked += (float)chunk_dot(words, pieces + c, chunks) * block_scale;
                } else {
                    exact += chunk_codes_dot(words, pieces + c, chunks);
                }
            }
            if (block_chunks) return group_sum<LANES>(blocked) / q_scale;
            return (float)(group_sum<LANES>(exact) - total) / q_scale * tensor_scale;
        }

        // Requests this lane's chunks of row `row` (those ternary_row_1 takes) into its free slots (16-byte slots 32
        // apart, one per lane), or, once the group's first lane (which has the most chunks) has none left, the whole
        // row into L2.
        template <int LANES>
        __device__ __forceinline__ void stage_row(const uint4 *w, int row, int chunks, uint4 *slots, int &slot) {
            const int lane = threadIdx.x & (LANES - 1);
            const uint4 *weights = w + (size_t)row * chunks;
            if (lane == 0 && slot >= STAGE_SLOTS) prefetch_l2(weights, 16u * (unsigned)chunks);
            for (int c = lane; c < chunks && slot < STAGE_SLOTS; c += LANES)
                copy_async_16_or_zero(slots + 32 * slot++, weights + c, 16);
        }

        // Row g of the rows of matrices 0, 1, 2 laid end to end, as its matrix's weights, scales, block size, row,
        // output and residual, and which matrix it is; false past the last row.
        struct ProductRow {
            const uint4 *w;
            const float *s;
            int b, row;
            float *y, *r;
            int matrix;
        };
        __device__ __forceinline__ bool product_row(int g, const uint4 *w0, const float *s0, int b0, int rows0,
                                                    float *y0, float *r0, const uint4 *w1, const float *s1, int b1,
                                                    int rows1, float *y1, float *r1, const uint4 *w2,
                                                    const float *s2, int b2, int rows2, float *y2, float *r2,
                                                    ProductRow &p) {
            if (g < rows0) {
                p = {w0, s0, b0, g, y0, r0, 0};
            } else if ((g -= rows0) < rows1) {
                p = {w1, s1, b1, g, y1, r1, 1};
            } else if ((g -= rows1) < rows2) {
                p = {w2, s2, b2, g, y2, r2, 2};
            } else {
                p = {w0, s0, b0, 0, y0, r0, 0};
                return false;
            }
            return true;
        }

        // The gated activation of gate a and up b: relu(a)^2 b (activation 1) or silu(a) b (2).
        __device__ __forceinline__ float gated_activation(int activation, float a, float b) {
            return activation == 1 ? relu2_gated(a, b) : silu_gated(a, b);
        }

        // scales[i] = matrix i's one weight scale where it has one scale a tensor (block size b_i of 0), else 0; by
        // threads 0-2, for the block to read after a __syncthreads().
        __device__ __forceinline__ void read_tensor_scales(const float *s0, int b0, const float *s1, int b1,
                                                           const float *s2, int b2, float *scales) {
            if (threadIdx.x < 3) {
                const float *s = threadIdx.x == 0 ? s0 : threadIdx.x == 1 ? s1 : s2;
                const int b = threadIdx.x == 0 ? b0 : threadIdx.x == 1 ? b1 : b2;
                scales[threadIdx.x] = s && !b ? s[0] : 0.0f;
            }
        }

        // Copies one token's int8 activations (`chunks` chunks of 64) into shared memory piece-major, int4 j of
        // chunk c at j * width + c, and adds their sum into *total (zeroed before, read after a __syncthreads()).
        __device__ __forceinline__ void load_pieces(const i8 *q, int chunks, int width, int4 *pieces, int *total) {
            int partial = 0;
            for (int i = threadIdx.x; i < chunks * 4; i += blockDim.x) {
                const int4 v = ((const int4 *)q)[i];
                pieces[(i & 3) * width + (i >> 2)] = v;
                partial = add_bytes(v, partial);
            }
            partial = warp_sum(partial);
            if ((threadIdx.x & 31) == 0) atomicAdd(total, partial);
        }

        // Up to three ternary products of the same token's activations in one launch, a group of LANES (16 or 32)
        // lanes per output row, the groups of the grid taking rows in turn. activation 0: the rows of matrices 0, 1,
        // 2 laid end to end; y[row] = product, and residual[row] += product where residual is not null (the residual
        // add folded into the projection). activation 1 (relu^2) or 2 (silu): matrices 0 (gate) and 1 (up) have the
        // same rows; a group's row g is row g of both and it writes y0[g] = act(gate) * up, y1[g] = up, as gated
        // activation after the two products would.
        //
        // Each lane first copies its first STAGE_SLOTS chunks into shared memory, before waiting for the kernel
        // before: nothing writes the weights, so they stream in while that kernel runs. After the wait the token's
        // activations go to shared memory piece-major (int4 j of chunk c at j * chunks + c), so the lanes of a group,
        // reading the same piece of consecutive chunks, read consecutive bytes. In the token's own order their reads
        // were 64 bytes apart and took four times the L1 cycles, which bounded the kernel: on an H200 the gate and
        // up product went from 8.4 to 6.6 us with this layout alone.
        template <int LANES>
        __device__ void fused_products(const i8 *q, const float *q_scales, int chunks, int activation,
                                       const uint4 *w0, const float *s0, int b0, int rows0, float *y0, float *r0,
                                       const uint4 *w1, const float *s1, int b1, int rows1, float *y1, float *r1,
                                       const uint4 *w2, const float *s2, int b2, int rows2, float *y2, float *r2) {
            extern __shared__ uint4 weight_slots[];
            __shared__ int activation_total;
            const int lane = threadIdx.x & 31, group = lane / LANES;
            // Row of the warp's first group, and rows between a group's turns.
            const int lead = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * (32 / LANES);
            const int step = gridDim.x * (blockDim.x >> 5) * (32 / LANES);
            const int rows = activation ? rows0 : rows0 + rows1 + rows2;
            uint4 *slots = weight_slots + (threadIdx.x >> 5) * 32 * STAGE_SLOTS + lane;
            int slot = 0;
            for (int g = lead + group; g < rows; g += step) {
                ProductRow p;
                if (activation) {
                    stage_row<LANES>(w0, g, chunks, slots, slot);
                    stage_row<LANES>(w1, g, chunks, slots, slot);
                } else if (product_row(g, w0, s0, b0, rows0, y0, r0, w1, s1, b1, rows1, y1, r1, w2, s2, b2, rows2, y2,
                                       r2, p)) {
                    stage_row<LANES>(p.w, p.row, chunks, slots, slot);
                }
            }
            COPY_ASYNC_COMMIT();
            // The scales of matrices of one scale a tensor, weights too: read here, they are not a load at the end
            // of every row (on an H200 one sequence decoded 1.3-1.7% faster). Kept in shared memory: in registers
            // they took the kernel from 48 to 55.
            __shared__ float tensor_scales[3];
            read_tensor_scales(s0, b0, s1, b1, s2, b2, tensor_scales);
            if (threadIdx.x == 0) activation_total = 0;
            __syncthreads();
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            int4 *pieces = (int4 *)(weight_slots + (blockDim.x >> 5) * 32 * STAGE_SLOTS);
            load_pieces(q, chunks, chunks, pieces, &activation_total);
            COPY_ASYNC_WAIT(0);
            __syncthreads();
            const int total = activation_total;
            const float qs = q_scales[0];
            slot = 0;
            // Every lane of a warp goes round as often as its first group, so the groups' shuffles meet.
            for (int lead_row = lead; lead_row < rows; lead_row += step) {
                const int g = lead_row + group;
                if (activation) {
                    const bool valid = g < rows0;
                    const float a =
                        ternary_row_1<LANES>(w0, g, valid, chunks, pieces, total, qs, s0, b0, tensor_scales[0], slots,
                                             slot);
                    const float b =
                        ternary_row_1<LANES>(w1, g, valid, chunks, pieces, total, qs, s1, b1, tensor_scales[1], slots,
                                             slot);
                    if (valid && (lane & (LANES - 1)) == 0) {
                        y0[g] = gated_activation(activation, a, b);
                        y1[g] = b;
                    }
                } else {
                    ProductRow p;
                    const bool valid = product_row(g, w0, s0, b0, rows0, y0, r0, w1, s1, b1, rows1, y1, r1, w2, s2, b2,
                                                   rows2, y2, r2, p);
                    const float v = ternary_row_1<LANES>(p.w, p.row, valid, chunks, pieces, total, qs, p.s, p.b,
                                                         tensor_scales[p.matrix], slots, slot);
                    if (valid && (lane & (LANES - 1)) == 0) {
                        p.y[p.row] = v;
                        if (p.r) p.r[p.row] += v;
                    }
                }
            }
        }

        // The products of fused_products. `lanes` is 16 or 32. Per-block scales sum floats, in the order of ternary_rows<1> only with 32 lanes a row.
        extern "C" __global__ void ternary_fused_1(const i8 *q, const float *q_scales, int chunks, int activation,
                                                   int lanes, const uint4 *w0, const float *s0, int b0, int rows0,
                                                   float *y0, float *r0, const uint4 *w1, const float *s1, int b1,
                                                   int rows1, float *y1, float *r1, const uint4 *w2, const float *s2,
                                                   int b2, int rows2, float *y2, float *r2) {
            if (lanes == 16)
                fused_products<16>(q, q_scales, chunks, activation, w0, s0, b0, rows0, y0, r0, w1, s1, b1, rows1, y1,
                                   r1, w2, s2, b2, rows2, y2, r2);
            else
                fused_products<32>(q, q_scales, chunks, activation, w0, s0, b0, rows0, y0, r0, w1, s1, b1, rows1, y1,
                                   r1, w2, s2, b2, rows2, y2, r2);
        }

        // Tile t of the tiles of 16 rows that matrices 0, 1, 2 are cut into, one after another (a matrix's last
        // tile may be short): its matrix's weights, first row, rows, output and residual, and which matrix it is;
        // false past the last tile.
        struct ProductTile {
            const uint4 *w;
            int first, rows;
            float *y, *r;
            int matrix;
        };
        __device__ __forceinline__ bool product_tile(int t, const uint4 *w0, int rows0, float *y0, float *r0,
                                                     const uint4 *w1, int rows1, float *y1, float *r1,
                                                     const uint4 *w2, int rows2, float *y2, float *r2,
                                                     ProductTile &p) {
            const int tiles0 = (rows0 + 15) / 16, tiles1 = (rows1 + 15) / 16, tiles2 = (rows2 + 15) / 16;
            if (t < tiles0) {
                p = {w0, 16 * t, rows0, y0, r0, 0};
            } else if ((t -= tiles0) < tiles1) {
                p = {w1, 16 * t, rows1, y1, r1, 1};
            } else if ((t -= tiles1) < tiles2) {
                p = {w2, 16 * t, rows2, y2, r2, 2};
            } else {
                return false;
            }
            return true;
        }

        // Chunks a row of a staged tile has: `chunks` rounded up to whole quads of four, the zeros after them
        // adding nothing; and its pitch in shared memory, 4 more than a multiple of 8 chunks, so that the eight
        // lanes of a 128-bit load (two rows, four chunks each) find eight different banks.
        __device__ __forceinline__ int tile_width(int chunks) { return (chunks + 3) & ~3; }
        __device__ __forceinline__ int tile_pitch(int chunks) {
            const int width = tile_width(chunks);
            return width & 4 ? width : width + 4;
        }

        // Copies rows first ... first + 15 of a ternary matrix into shared memory (tile_pitch chunks apart): each
        // row's chunks, zeros up to tile_width, and rows past `rows` all zeros.
        __device__ __forceinline__ void stage_tile(const uint4 *w, int first, int rows, int chunks, uint4 *tile) {
            const int width = tile_width(chunks), pitch = tile_pitch(chunks);
            for (int r = threadIdx.x >> 5; r < 16; r += blockDim.x >> 5) {
                const bool row = first + r < rows;
                const uint4 *source = w + (size_t)(row ? first + r : 0) * chunks;
                for (int c = threadIdx.x & 31; c < width; c += 32) {
                    const bool in = row && c < chunks;
                    copy_async_16_or_zero(tile + r * pitch + c, in ? source + c : w, in ? 16 : 0);
                }
            }
        }

        // One quad's mmas into each bit pair's sums d[j]: `low` and `high` this lane's chunk of rows group and
        // group + 8, its activations' piece j at a[j * width + at]; tile_pair_sums below says how they fill the
        // fragments.
        __device__ __forceinline__ void quad_mmas(uint4 low, uint4 high, const int4 *a, int at, int width,
                                                  int (&d)[4][4]) {
        #pragma unroll
            for (int j = 0; j < 4; j++) {
                const u32 mask = 0x03030303u << (2 * j);
                const int4 b = a[j * width + at];
                mma_codes(d[j], low.x & mask, high.x & mask, low.y & mask, high.y & mask, b.x, b.y);
                mma_codes(d[j], low.z & mask, high.z & mask, low.w & mask, high.w & mask, b.z, b.w);
            }
        }

        // Each bit pair's code sums of a staged tile's 16 rows with B's activations (`a`: this lane's token's pieces,
        // int4 j of chunk c at j * tile_width + c), over the quads of chunks warp, warp + warps, ..., into d[j] as an
        // mma's D: slots 0 and 1 of lane (group, tig) are row `group` with B's columns 2 tig and 2 tig + 1, slots 2
        // and 3 row group + 8. Lane tig of a group takes chunk 4n + tig of quad n whole: its word m holds the codes of
        // columns 16j + 4m ... of bit pair j, and is the A fragment's slot tig of an mma of the words m = 0, 1 or of
        // the words m = 2, 3, with the activations of those columns as B's; each bit pair's codes are masked where
        // they lie, as in chunk_codes_dot, so its mmas have sums of their own, times 4^j (tile_dot shifts them back
        // exactly). B's column g comes from group g's lanes.
        __device__ __forceinline__ void tile_pair_sums(const uint4 *tile, int chunks, const int4 *a, int warp,
                                                       int warps, int (&d)[4][4]) {
            const int lane = threadIdx.x & 31, group = lane >> 2, tig = lane & 3;
            const int width = tile_width(chunks), pitch = tile_pitch(chunks);
            const uint4 *row_low = tile + group * pitch + tig, *row_high = tile + (group + 8) * pitch + tig;
        #pragma unroll
            for (int j = 0; j < 4; j++)
        #pragma unroll
                for (int i = 0; i < 4; i++) d[j][i] = 0;
            for (int c = 4 * warp; c < width; c += 4 * warps) {
                const uint4 l = row_low[c], h = row_high[c];
                quad_mmas(l, h, a, c + tig, width, d);
            }
        }

        // tile_pair_sums of two tiles (gate's and up's) in one pass, so that eight chains of sums are in flight
        // instead of four: on an H200 the Falcon3-10B shape's streamed gate and up product took 15.9 us of a layer
        // instead of 17.3-17.7 with the tiles one after the other.
        __device__ __forceinline__ void tile_pair_sums_both(const uint4 *tile0, const uint4 *tile1, int chunks,
                                                           const int4 *a, int warp, int warps, int (&d0)[4][4],
                                                           int (&d1)[4][4]) {
            const int lane = threadIdx.x & 31, group = lane >> 2, tig = lane & 3;
            const int width = tile_width(chunks), pitch = tile_pitch(chunks);
            const uint4 *low0 = tile0 + group * pitch + tig, *high0 = tile0 + (group + 8) * pitch + tig;
            const uint4 *low1 = tile1 + group * pitch + tig, *high1 = tile1 + (group + 8) * pitch + tig;
        #pragma unroll
            for (int j = 0; j < 4; j++)
        #pragma unroll
                for (int i = 0; i < 4; i++) d0[j][i] = d1[j][i] = 0;
            for (int c = 4 * warp; c < width; c += 4 * warps) {
                const uint4 l = low0[c], h = high0[c], l1 = low1[c], h1 = high1[c];
                quad_mmas(l, h, a, c + tig, width, d0);
                quad_mmas(l1, h1, a, c + tig, width, d1);
            }
        }

        // The dot of slot i of tile_pair_sums' D: its bit pairs' sums shifted back.
        __device__ __forceinline__ int tile_dot(const int (&d)[4][4], int i) {
            return (d[0][i] + (d[1][i] >> 2)) + ((d[2][i] >> 4) + (d[3][i] >> 6));
        }

        // The code dots of a staged tile's 16 rows with the token's activations (`pieces`), as tile_pair_sums has
        // them: row `group` in `low` and row group + 8 in `high`, in every lane of the group (lane / 4). The
        // activations are every column of B alike, so every column of D is the same dot.
        __device__ __forceinline__ void tile_dots(const uint4 *tile, int chunks, const int4 *pieces, int warp,
                                                  int warps, int &low, int &high) {
            int d[4][4];
            tile_pair_sums(tile, chunks, pieces, warp, warps, d);
            low = tile_dot(d, 0);
            high = tile_dot(d, 2);
        }

        // Tile t of 16 rows into p (activation 0: of the matrices laid end to end; 1 and 2: rows 16 t ... of both
        // gate (p) and up (w1)); false past the last tile.
        __device__ __forceinline__ bool locate_product_tile(int t, int activation, const uint4 *w0, int rows0,
                                                            float *y0, float *r0, const uint4 *w1, int rows1,
                                                            float *y1, float *r1, const uint4 *w2, int rows2,
                                                            float *y2, float *r2, ProductTile &p) {
            p = {w0, 16 * t, rows0, y0, r0, 0};
            return activation ? p.first < rows0
                              : product_tile(t, w0, rows0, y0, r0, w1, rows1, y1, r1, w2, rows2, y2, r2, p);
        }

        // Block blockIdx.x's tile of 16 rows into p, as locate_product_tile finds it, its weights copied into
        // `stage` (gate's, then up's tile_pitch * 16 chunks on) by cp.async, not yet committed; false, copying
        // nothing, past the last tile.
        __device__ __forceinline__ bool stage_product_tile(int chunks, int activation, const uint4 *w0, int rows0,
                                                           float *y0, float *r0, const uint4 *w1, int rows1,
                                                           float *y1, float *r1, const uint4 *w2, int rows2,
                                                           float *y2, float *r2, uint4 *stage, ProductTile &p) {
            const bool valid = locate_product_tile(blockIdx.x, activation, w0, rows0, y0, r0, w1, rows1, y1, r1, w2,
                                                   rows2, y2, r2, p);
            if (valid) {
                stage_tile(p.w, p.first, p.rows, chunks, stage);
                if (activation) stage_tile(w1, p.first, p.rows, chunks, stage + 16 * tile_pitch(chunks));
            }
            return valid;
        }

        // Output `at` of a tile's row from its summed codes (gate's and, for an activation, up's) and the token's
        // activation sum and scale: y = (sum - total) / qs * the tensor scale, then as the product's output and
        // residual add (`residual`: the value p.r[at] held), or as gated activation into y0 and the up projection
        // into y1. (ternary_tiles_1 indexes its outputs with an int, ternary_tiles_n with a size_t.)
        template <typename Index>
        __device__ __forceinline__ void write_tile_output(int activation, const ProductTile &p, Index at,
                                                          int first_sum, int second_sum, int total, float qs,
                                                          const float *tensor_scales, float *y0, float *y1,
                                                          float residual) {
            const float a = (float)(first_sum - total) / qs * tensor_scales[p.matrix];
            if (activation) {
                const float b = (float)(second_sum - total) / qs * tensor_scales[1];
                y0[at] = gated_activation(activation, a, b);
                y1[at] = b;
            } else {
                p.y[at] = a;
                if (p.r) p.r[at] = residual + a;
            }
        }

        // The residual value that row threadIdx.x (< 16) of a single-token tile adds its output to, 0 where it adds
        // none. Read right after the wait, with the activations, it arrives while the dot products run; read where it
        // is added, it was a trip to memory at the end of every output and down product.
        __device__ __forceinline__ float tile_row_residual(const ProductTile &p) {
            const int row = threadIdx.x;
            return row < 16 && p.r && p.first + row < p.rows ? p.r[p.first + row] : 0.0f;
        }

        // Row threadIdx.x (< 16) of a single-token tile: its warps' sums in sums[0] (gate's or the product's) and,
        // for an activation, sums[1] (up's), added in warp order and written as write_tile_output writes them
        // (`residual`: tile_row_residual's).
        template <int WARPS>
        __device__ __forceinline__ void write_tile_row(int activation, const ProductTile &p,
                                                       const int (*sums)[WARPS][16], int warps, int total, float qs,
                                                       const float *tensor_scales, float *y0, float *y1,
                                                       float residual) {
            const int row = threadIdx.x;
            if (row >= 16 || p.first + row >= p.rows) return;
            int first_sum = 0, second_sum = 0;
            for (int w = 0; w < warps; w++) {
                first_sum += sums[0][w][row];
                if (activation) second_sum += sums[1][w][row];
            }
            write_tile_output(activation, p, p.first + row, first_sum, second_sum, total, qs, tensor_scales, y0, y1,
                              residual);
        }

        // The products of ternary_fused_1 (its arguments but `lanes`), for matrices of one scale a tensor, on the
        // tensor cores (sm_80 and later): block b takes tile b of 16 rows (activation 0: of the matrices laid end
        // to end; 1 and 2: rows 16b ... of both gate and up), its warps each a share of the quads of chunks, their
        // sums added in shared memory. Before the wait the block copies its whole tile into shared memory; after
        // it, the activations, as ternary_fused_1 does. The integers are ternary_fused_1's, so the outputs are bit
        // for bit the same, with half the instructions: a warp's pass over a quad takes 64 chunks of rows in 64
        // instructions, where a pass of ternary_fused_1's takes 32 in 61.
        extern "C" __global__ void ternary_tiles_1(const i8 *q, const float *q_scales, int chunks, int activation,
                                                   const uint4 *w0, const float *s0, int rows0, float *y0, float *r0,
                                                   const uint4 *w1, const float *s1, int rows1, float *y1, float *r1,
                                                   const uint4 *w2, const float *s2, int rows2, float *y2, float *r2) {
            extern __shared__ uint4 tile_stage[];
            __shared__ int activation_total;
            __shared__ float tensor_scales[3];
            __shared__ int sums[2][TILE_WARPS][16];
            const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5, lane = threadIdx.x & 31;
            ProductTile p;
            const int count = activation ? 2 : 1;
            const bool valid = stage_product_tile(chunks, activation, w0, rows0, y0, r0, w1, rows1, y1, r1, w2, rows2,
                                                  y2, r2, tile_stage, p);
            COPY_ASYNC_COMMIT();
            read_tensor_scales(s0, 0, s1, 0, s2, 0, tensor_scales);
            if (threadIdx.x == 0) activation_total = 0;
            __syncthreads();
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            if (!valid) return;
            int4 *pieces = (int4 *)(tile_stage + count * 16 * tile_pitch(chunks));
            load_pieces(q, chunks, tile_width(chunks), pieces, &activation_total);
            // Both requested now, used at the end: the token's scale, like the activations, and the residual.
            const float qs = q_scales[0], residual = tile_row_residual(p);
            COPY_ASYNC_WAIT(0);
            __syncthreads();
            for (int m = 0; m < count; m++) {
                int low, high;
                tile_dots(tile_stage + m * 16 * tile_pitch(chunks), chunks, pieces, warp, warps, low, high);
                if ((lane & 3) == 0) {
                    sums[m][warp][lane >> 2] = low;
                    sums[m][warp][(lane >> 2) + 8] = high;
                }
            }
            __syncthreads();
            write_tile_row<TILE_WARPS>(activation, p, sums, warps, activation_total, qs, tensor_scales, y0, y1,
                                       residual);
        }

        // Shared-memory barriers that count the bytes of bulk copies (sm_90+; the kernel that uses them runs only
        // there): `bar` expects `bytes` more for its current phase; a copy of `bytes` from global `source` to shared
        // `target` completes that many; a thread waits until the phase of parity `phase` has completed.
        __device__ __forceinline__ void barrier_init(unsigned long long *bar) {
        #if __CUDA_ARCH__ >= 900
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"((unsigned)__cvta_generic_to_shared(bar))
                         : "memory");
        #endif
        }
        // Makes the barriers initialized before it visible to the bulk copies that will complete them.
        __device__ __forceinline__ void barriers_initialized() {
        #if __CUDA_ARCH__ >= 900
            asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        #endif
        }
        __device__ __forceinline__ void barrier_expect(unsigned long long *bar, unsigned bytes) {
        #if __CUDA_ARCH__ >= 900
            asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                         :: "r"((unsigned)__cvta_generic_to_shared(bar)), "r"(bytes) : "memory");
        #endif
        }
        __device__ __forceinline__ void bulk_copy(void *target, const void *source, unsigned bytes,
                                                  unsigned long long *bar) {
        #if __CUDA_ARCH__ >= 900
            asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                         :: "r"((unsigned)__cvta_generic_to_shared(target)), "l"(source), "r"(bytes),
                            "r"((unsigned)__cvta_generic_to_shared(bar)) : "memory");
        #endif
        }
        __device__ __forceinline__ void barrier_wait(unsigned long long *bar, unsigned phase) {
        #if __CUDA_ARCH__ >= 900
            asm volatile("{\n.reg .pred done;\nWAIT_%=:\n"
                         "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                         "@!done bra WAIT_%=;\n}"
                         :: "r"((unsigned)__cvta_generic_to_shared(bar)), "r"(phase) : "memory");
        #endif
        }

        // By warp 0: tile t's rows copied into `stage` as stage_tile lays them out, but for the zeros after each
        // row, a bulk copy a row (lane r the matrix's or gate's row r, lane 16 + r up's), counted on `bar`; nothing
        // past the last tile. Rows past the matrix's last keep what they held: no output reads their sums.
        __device__ __forceinline__ void bulk_stage_tile(int t, int chunks, int activation, const uint4 *w0, int rows0,
                                                        float *y0, float *r0, const uint4 *w1, int rows1, float *y1,
                                                        float *r1, const uint4 *w2, int rows2, float *y2, float *r2,
                                                        uint4 *stage, unsigned long long *bar) {
            ProductTile p;
            if (!locate_product_tile(t, activation, w0, rows0, y0, r0, w1, rows1, y1, r1, w2, rows2, y2, r2, p)) return;
            const int lane = threadIdx.x & 31, rows = min(16, p.rows - p.first), count = activation ? 2 : 1;
            const unsigned bytes = 16u * (unsigned)chunks;
            if (lane == 0) barrier_expect(bar, (unsigned)(rows * count) * bytes);
            __syncwarp();
            const int r = lane & 15, m = lane >> 4;
            if (r < rows && m < count)
                bulk_copy(stage + (m * 16 + r) * tile_pitch(chunks), (m ? w1 : p.w) + (size_t)(p.first + r) * chunks,
                          bytes, bar);
        }

        // Warps of a ternary_tiles_stream_1 block, and the tile stages it keeps in flight.
        #define STREAM_WARPS \#(streamWarps)
        #define STREAM_STAGES \#(streamStages)

        // ternary_tiles_1 for more tiles than the GPU holds at once (sm_90+): block b takes tiles b, b + gridDim.x,
        // ... through a ring of STREAM_STAGES stages in shared memory, each filled by bulk copies (the copy engine
        // moves a row a request) and refilled with the block's next tile but one as soon as its warps have their
        // sums. Before the wait it requests its first tiles, as ternary_tiles_1 requests its one. The sums go to
        // one of two buffers in turn, so a tile needs one block barrier, not two. On an H200 the Falcon3-10B shape's
        // gate and up product took 15.9 us of a layer this way, 16.6 with cp.async and two barriers a tile. The
        // integers are ternary_tiles_1's, so the outputs are bit for bit the same.
        extern "C" __global__ void __launch_bounds__(32 * STREAM_WARPS)
            ternary_tiles_stream_1(const i8 *q, const float *q_scales, int chunks, int activation, const uint4 *w0,
                                   const float *s0, int rows0, float *y0, float *r0, const uint4 *w1, const float *s1,
                                   int rows1, float *y1, float *r1, const uint4 *w2, const float *s2, int rows2,
                                   float *y2, float *r2) {
            extern __shared__ uint4 tile_stage[];
            __shared__ int activation_total;
            __shared__ float tensor_scales[3];
            __shared__ int sum_buffers[2][2][STREAM_WARPS][16];
            __shared__ unsigned long long ready[STREAM_STAGES];
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
            const int count = activation ? 2 : 1, stage_chunks = count * 16 * tile_pitch(chunks);
            const int tiles =
                activation ? (rows0 + 15) / 16 : (rows0 + 15) / 16 + (rows1 + 15) / 16 + (rows2 + 15) / 16;
            if (warp == 0) {
                if (lane == 0) {
                    for (int s = 0; s < STREAM_STAGES; s++) barrier_init(&ready[s]);
                    barriers_initialized();
                }
                __syncwarp();
                for (int s = 0; s < STREAM_STAGES; s++)
                    bulk_stage_tile(blockIdx.x + s * gridDim.x, chunks, activation, w0, rows0, y0, r0, w1, rows1, y1,
                                    r1, w2, rows2, y2, r2, tile_stage + s * stage_chunks, &ready[s]);
            }
            // The zeros after each row, up to tile_width, which no copy writes.
            const int pad = tile_width(chunks) - chunks;
            for (int i = threadIdx.x; i < STREAM_STAGES * count * 16 * pad; i += blockDim.x)
                tile_stage[(i / pad) * tile_pitch(chunks) + chunks + i % pad] = make_uint4(0, 0, 0, 0);
            read_tensor_scales(s0, 0, s1, 0, s2, 0, tensor_scales);
            if (threadIdx.x == 0) activation_total = 0;
            __syncthreads();
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            int4 *pieces = (int4 *)(tile_stage + STREAM_STAGES * stage_chunks);
            load_pieces(q, chunks, tile_width(chunks), pieces, &activation_total);
            const float qs = q_scales[0];
            __syncthreads();
            int s = 0, turn = 0;
            unsigned phase = 0;
            for (int t = blockIdx.x; t < tiles; t += gridDim.x, turn ^= 1) {
                ProductTile p;
                locate_product_tile(t, activation, w0, rows0, y0, r0, w1, rows1, y1, r1, w2, rows2, y2, r2, p);
                const float residual = tile_row_residual(p);
                barrier_wait(&ready[s], phase);
                int (*sums)[STREAM_WARPS][16] = sum_buffers[turn];
                const uint4 *stage = tile_stage + s * stage_chunks;
                int d[4][4], up[4][4];
                if (activation) {
                    tile_pair_sums_both(stage, stage + 16 * tile_pitch(chunks), chunks, pieces, warp, STREAM_WARPS, d,
                                        up);
                } else {
                    tile_pair_sums(stage, chunks, pieces, warp, STREAM_WARPS, d);
                }
                if ((lane & 3) == 0) {
                    sums[0][warp][lane >> 2] = tile_dot(d, 0);
                    sums[0][warp][(lane >> 2) + 8] = tile_dot(d, 2);
                    if (activation) {
                        sums[1][warp][lane >> 2] = tile_dot(up, 0);
                        sums[1][warp][(lane >> 2) + 8] = tile_dot(up, 2);
                    }
                }
                __syncthreads();
                if (warp == 0)
                    bulk_stage_tile(t + STREAM_STAGES * gridDim.x, chunks, activation, w0, rows0, y0, r0, w1, rows1,
                                    y1, r1, w2, rows2, y2, r2, tile_stage + s * stage_chunks, &ready[s]);
                if (++s == STREAM_STAGES) {
                    s = 0;
                    phase ^= 1;
                }
                write_tile_row<STREAM_WARPS>(activation, p, sums, STREAM_WARPS, activation_total, qs, tensor_scales,
                                             y0, y1, residual);
            }
        }

        // Most tokens a launch of ternary_tiles_n takes: the columns of an mma's B.
        #define TILE_TOKENS \#(tileTokens)

        // Int4s from one token's activations to the next in ternary_tiles_n's shared memory: a token's pieces as
        // tile_dots reads them, then four int4s more, so that two groups of lanes reading two tokens' pieces in one
        // 128-bit load find different banks.
        __device__ __forceinline__ int token_pitch(int chunks) { return 4 * tile_width(chunks) + 4; }

        // tile_dots for up to TILE_TOKENS tokens at once, their pieces token_pitch apart: B's column g is token g
        // (the last token again past `tokens`), so dots[i] of lane (group, tig) is the dot of row group (i < 2) or
        // group + 8 (i >= 2) with token 2 tig + (i & 1).
        __device__ __forceinline__ void tile_dots_tokens(const uint4 *tile, int chunks, const int4 *pieces, int tokens,
                                                         int warp, int warps, int (&dots)[4]) {
            const int group = (threadIdx.x & 31) >> 2;
            int d[4][4];
            tile_pair_sums(tile, chunks, pieces + min(group, tokens - 1) * token_pitch(chunks), warp, warps, d);
        #pragma unroll
            for (int i = 0; i < 4; i++) dots[i] = tile_dot(d, i);
        }

        // Copies `tokens` tokens' int8 activations (rows `stride` bytes apart) into shared memory, token t's as
        // load_pieces lays out one at t * token_pitch(chunks). A thread requests its pieces of every token before
        // it stores any: copied by cp.async instead, a step of 8 sequences of the 2B-4T shape ran a third slower
        // on an H200.
        __device__ __forceinline__ void load_token_pieces(const i8 *q, int stride, int tokens, int chunks,
                                                          int4 *pieces) {
            const int width = tile_width(chunks), pitch = token_pitch(chunks);
            for (int i = threadIdx.x; i < chunks * 4; i += blockDim.x) {
                int4 v[TILE_TOKENS];
        #pragma unroll
                for (int t = 0; t < TILE_TOKENS; t++)
                    if (t < tokens) v[t] = __ldcg((const int4 *)(q + (size_t)t * stride) + i);
        #pragma unroll
                for (int t = 0; t < TILE_TOKENS; t++)
                    if (t < tokens) pieces[t * pitch + (i & 3) * width + (i >> 2)] = v[t];
            }
        }

        // ternary_tiles_1 for 2 to TILE_TOKENS tokens (rows of q `stride` bytes apart, scales q_scales[t]; rows of
        // every output and residual as wide as their matrix is tall): where ternary_tiles_1 gives every column of
        // B the same token, here each column has a token of its own, so a step of a few sequences reads its
        // weights once for all of them. Each token's integers, and so its outputs, are bit for bit those of
        // ternary_tiles_1 for that token alone.
        extern "C" __global__ void ternary_tiles_n(const i8 *q, int stride, const float *q_scales, int tokens,
                                                   int chunks, int activation, const uint4 *w0, const float *s0,
                                                   int rows0, float *y0, float *r0, const uint4 *w1, const float *s1,
                                                   int rows1, float *y1, float *r1, const uint4 *w2, const float *s2,
                                                   int rows2, float *y2, float *r2) {
            extern __shared__ uint4 tile_stage[];
            __shared__ int activation_totals[TILE_TOKENS];
            __shared__ float tensor_scales[3];
            __shared__ int sums[2][TILE_WARPS][16][TILE_TOKENS];
            const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5, lane = threadIdx.x & 31;
            ProductTile p;
            const int count = activation ? 2 : 1;
            const bool valid = stage_product_tile(chunks, activation, w0, rows0, y0, r0, w1, rows1, y1, r1, w2, rows2,
                                                  y2, r2, tile_stage, p);
            const int width = tile_width(chunks), pitch = tile_pitch(chunks);
            COPY_ASYNC_COMMIT();
            read_tensor_scales(s0, 0, s1, 0, s2, 0, tensor_scales);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            if (!valid) return;
            int4 *pieces = (int4 *)(tile_stage + count * 16 * pitch);
            load_token_pieces(q, stride, tokens, chunks, pieces);
            COPY_ASYNC_WAIT(0);
            __syncthreads();
            const int group = lane >> 2, pair = 2 * (lane & 3);
            for (int m = 0; m < count; m++) {
                int dots[4];
                tile_dots_tokens(tile_stage + m * 16 * pitch, chunks, pieces, tokens, warp, warps, dots);
                sums[m][warp][group][pair] = dots[0];
                sums[m][warp][group][pair + 1] = dots[1];
                sums[m][warp][group + 8][pair] = dots[2];
                sums[m][warp][group + 8][pair + 1] = dots[3];
            }
            // Each token's sum of activations, a warp a token, while other warps may still be at their dots: summed
            // as the activations were loaded, with a warp's shuffles and an atomic for every token and pass, a
            // step of 8 sequences ran 6% slower on an H200.
            for (int t = warp; t < tokens; t += warps) {
                const int4 *token = pieces + t * token_pitch(chunks);
                int total = 0;
                for (int i = lane; i < chunks * 4; i += 32) total = add_bytes(token[(i & 3) * width + (i >> 2)], total);
                total = warp_sum(total);
                if (lane == 0) activation_totals[t] = total;
            }
            __syncthreads();
            for (int i = threadIdx.x; i < 16 * tokens; i += blockDim.x) {
                const int row = i & 15, t = i >> 4, r = p.first + row;
                if (r >= p.rows) continue;
                int first_sum = 0, second_sum = 0;
                for (int w = 0; w < warps; w++) {
                    first_sum += sums[0][w][row][t];
                    if (activation) second_sum += sums[1][w][row][t];
                }
                const size_t at = (size_t)t * p.rows + r;
                write_tile_output(activation, p, at, first_sum, second_sum, activation_totals[t], q_scales[t],
                                  tensor_scales, y0, y1, p.r ? p.r[at] : 0.0f);
            }
        }

        // Merges the `splits` (at most 32) partial results of one head at `base` into out[0 ..< head_dim], reading
        // through L2 (other blocks wrote the partials). ONE_TRIP: every warp reads the splits' maxima and sums (lane
        // s: split s) and every thread its dimension's partial results of every split, all requested before any is
        // used, so the merge waits for L2 once. Otherwise the first warp works out each split's weight (lane s:
        // split s) and the block then reads the partials, 16 at a time: three waits for 17 splits. On an H200 one
        // sequence of the 2B-4T shape (heads of 128, a dimension a thread) decoded 1,026-1,031 tokens/s with one trip
        // against 1,017-1,018; Falcon3-10B's heads of 256 (two dimensions a thread) 473 against 479, so they keep
        // the three.
        template <bool ONE_TRIP>
        __device__ void combine_head(const float *base, int splits, int head_dim, float *out) {
            const int lane = threadIdx.x & 31;
            if constexpr (ONE_TRIP) {
                const float *tail = base + (size_t)lane * (head_dim + 2) + head_dim;
                const float m = lane < splits ? __ldcg(tail) : NEGATIVE_INFINITY;
                const float l = lane < splits ? __ldcg(tail + 1) : 0.0f;
                // Every lane of a warp goes round as often (the shuffles below need them all).
                for (int first = 0; first < head_dim; first += blockDim.x) {
                    const int d = first + threadIdx.x;
                    float parts[32];
        #pragma unroll
                    for (int s = 0; s < 32; s++)
                        parts[s] = s < splits && d < head_dim ? __ldcg(base + (size_t)s * (head_dim + 2) + d) : 0.0f;
                    const float top = warp_max(m);
                    const float w = m != NEGATIVE_INFINITY ? expf(m - top) : 0.0f;
                    const float total = warp_sum(l * w);
                    float o = 0.0f;
        #pragma unroll
                    for (int s = 0; s < 32; s++) o += parts[s] * __shfl_sync(FULL_MASK, w, s);
                    if (d < head_dim) out[d] = o / total;
                }
            } else {
                __shared__ float weights[32];
                __shared__ float total;
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
        }

        // Single-token attention's shape: a block of SPLIT_WARPS warps takes a split of the cached positions, and a
        // warp takes SPLIT_SPAN positions at a time, SPLIT_LANES lanes each. A split takes at least SPLIT_LEAST
        // positions, so a short cache leaves some of the grid's splits unused (and merges fewer partial results).
        #define SPLIT_WARPS \#(attentionSplitWarps)
        #define SPLIT_LANES 8
        #define SPLIT_SPAN (32 / SPLIT_LANES)
        #define SPLIT_LEAST \#(attentionSplitLeast)

        // Layer `layer`'s key row of kv head `kvh` at position p, null at or past `end`.
        __device__ __forceinline__ const float *split_row(const unsigned long long *blocks, int layer, int p, int end,
                                                          size_t kv_width, int kvh, int head_dim) {
            return p < end ? kv_row(blocks, layer, p, 0, kv_width) + (size_t)kvh * head_dim : nullptr;
        }

        // This lane's PIECES float4 pieces of the key and value row at `row` (zeros where row is null).
        template <int PIECES>
        __device__ __forceinline__ void split_load(const float *row, size_t kv_width, int e, int pieces, float4 *k,
                                                   float4 *v) {
        #pragma unroll
            for (int i = 0; i < PIECES; i++) {
                const int c = e + SPLIT_LANES * i;
                const bool in = row && c < pieces;
                k[i] = in ? ((const float4 *)row)[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                v[i] = in ? ((const float4 *)(row + KV_BLOCK * kv_width))[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
        }

        // One warp's share of a split: positions begin + SPLIT_SPAN * (warp + SPLIT_WARPS * n) + group below end.
        // Each group of SPLIT_LANES lanes runs its own online softmax over its positions; lane e of a group holds
        // the float4 pieces e, e + SPLIT_LANES, ... (at most PIECES) of a key and a value row, so a group reads a
        // row in consecutive 128-byte lines. A warp thus has SPLIT_SPAN positions' keys and values in flight at
        // once, where warp_attend waits for one position's key before it asks for the value, then for the next
        // position; and the block-table entry of a group's next position is read a pass ahead, so no pass waits
        // for it. k and v hold the group's first position's key and value pieces (split_load), loaded by the
        // caller. The groups' results merge at the end into maxima[warp], sums[warp] and part[warp], as warp_attend
        // leaves them.
        template <int PIECES>
        __device__ __forceinline__ void split_attend(const float4 *query, const unsigned long long *blocks, int layer,
                                                     size_t kv_width, int kvh, int head_dim, int begin, int end,
                                                     float scale, float4 *k, float4 *v, float *maxima, float *sums,
                                                     float (*part)[MAX_HEAD_DIM]) {
            const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
            const int group = lane / SPLIT_LANES, e = lane % SPLIT_LANES, pieces = head_dim / 4;
            const int stride = SPLIT_SPAN * SPLIT_WARPS;
            float4 acc[PIECES];
        #pragma unroll
            for (int i = 0; i < PIECES; i++) acc[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float m = NEGATIVE_INFINITY, l = 0.0f;
            const float *row = nullptr;
            for (int first = begin + SPLIT_SPAN * warp; first < end; first += stride) {
                const int p = first + group;
                const bool valid = p < end;
                const float *next = split_row(blocks, layer, p + stride, end, kv_width, kvh, head_dim);
                if (first > begin + SPLIT_SPAN * warp) split_load<PIECES>(row, kv_width, e, pieces, k, v);
                float dot = 0.0f;
        #pragma unroll
                for (int i = 0; i < PIECES; i++) {
                    const int c = e + SPLIT_LANES * i;
                    if (c < pieces) {
                        const float4 q = query[c];
                        dot += q.x * k[i].x + q.y * k[i].y + q.z * k[i].z + q.w * k[i].w;
                    }
                }
                dot = group_sum<SPLIT_LANES>(dot);
                if (valid) {
                    const float score = dot * scale;
                    const float top = fmaxf(m, score);
                    const float correction = expf(m - top), w = expf(score - top);
                    l = l * correction + w;
        #pragma unroll
                    for (int i = 0; i < PIECES; i++) {
                        acc[i].x = acc[i].x * correction + w * v[i].x;
                        acc[i].y = acc[i].y * correction + w * v[i].y;
                        acc[i].z = acc[i].z * correction + w * v[i].z;
                        acc[i].w = acc[i].w * correction + w * v[i].w;
                    }
                    m = top;
                }
                row = next;
            }
            float top = m;
        #pragma unroll
            for (int o = SPLIT_LANES; o < 32; o <<= 1) top = fmaxf(top, __shfl_xor_sync(FULL_MASK, top, o));
            const float weight = m != NEGATIVE_INFINITY ? expf(m - top) : 0.0f;
            l *= weight;
        #pragma unroll
            for (int o = SPLIT_LANES; o < 32; o <<= 1) l += __shfl_xor_sync(FULL_MASK, l, o);
        #pragma unroll
            for (int i = 0; i < PIECES; i++) {
                float4 a = make_float4(acc[i].x * weight, acc[i].y * weight, acc[i].z * weight, acc[i].w * weight);
        #pragma unroll
                for (int o = SPLIT_LANES; o < 32; o <<= 1) {
                    a.x += __shfl_xor_sync(FULL_MASK, a.x, o);
                    a.y += __shfl_xor_sync(FULL_MASK, a.y, o);
                    a.z += __shfl_xor_sync(FULL_MASK, a.z, o);
                    a.w += __shfl_xor_sync(FULL_MASK, a.w, o);
                }
                const int c = e + SPLIT_LANES * i;
                if (group == 0 && c < pieces) ((float4 *)part[warp])[c] = a;
            }
            if (lane == 0) {
                maxima[warp] = top;
                sums[warp] = l;
            }
        }

        // Attention of one token, split over the cached positions, for heads of at most 32 * PIECES dimensions (a
        // multiple of 4: float4 rows): block (head, split) takes a contiguous share of positions 0 ... positions[0]
        // (the length read from device memory, so one launch serves every position; splits of SPLIT_LEAST positions
        // or more, at most the grid's) and writes its unnormalised output, running maximum and sum to
        // partial[head][split]. The last split of a head to finish (counted in counters[head]) merges the head's
        // splits into out, and leaves the counter at zero for the next launch; a head of one split writes out
        // itself. Where k_new is not null, q and k_new are the new token's query and key before the rotary
        // embedding, and k_new and v_new go into the cache here (theta: the rotary base), so no launch of
        // rope_store_rows precedes this one.
        template <int PIECES>
        __device__ void attend_token(const float *q, const unsigned long long *blocks, int layer, int heads,
                                     int kv_heads, int head_dim, const int *positions, float scale, float *partial,
                                     float *out, unsigned *counters, const float *k_new, const float *v_new,
                                     float theta) {
            __shared__ bool last;
            __shared__ float maxima[SPLIT_WARPS], sums[SPLIT_WARPS];
            __shared__ __align__(16) float part[SPLIT_WARPS][MAX_HEAD_DIM];
            __shared__ float4 query[MAX_HEAD_DIM / 4];
            __shared__ float cosines[MAX_HEAD_DIM / 2], sines[MAX_HEAD_DIM / 2];
            const int h = blockIdx.x, split = blockIdx.y, half = head_dim / 2;
            const int kvh = h / (heads / kv_heads);
            const size_t kv_width = (size_t)kv_heads * head_dim;
            // Before the wait, what no kernel of this step writes: the position and block table (uploaded with the
            // step), the rotary angles, and the first pass's keys and values of positions earlier steps cached; so
            // after it the block only waits for its query.
            const int position = positions[0], length = position + 1;
            const int splits = min((int)gridDim.y, (length + SPLIT_LEAST - 1) / SPLIT_LEAST);
            if (split >= splits) return;
            const int share = (length + splits - 1) / splits;
            const int begin = split * share, end = min(length, begin + share);
            if (k_new)
                for (int i = threadIdx.x; i < half; i += blockDim.x)
                    rope_angle(theta, i, head_dim, (float)position, cosines[i], sines[i]);
            const int lane = threadIdx.x & 31, first = begin + SPLIT_SPAN * (threadIdx.x >> 5) + lane / SPLIT_LANES;
            const bool early = first < min(end, position);
            float4 k[PIECES], v[PIECES];
            split_load<PIECES>(early ? split_row(blocks, layer, first, end, kv_width, kvh, head_dim) : nullptr,
                               kv_width, lane % SPLIT_LANES, head_dim / 4, k, v);
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            const float *qh = q + (size_t)h * head_dim;
            float *rotated = (float *)query;
            if (k_new) {
                // The rotary embedding and the cache store of rope_store_rows, done here: every block rotates its
                // query head into shared memory, and the block whose share holds the new position rotates and
                // stores that position's key and value (the heads of one group store the same values), which
                // only it reads.
                __syncthreads();
                for (int i = threadIdx.x; i < half; i += blockDim.x)
                    rotate_pair(qh, rotated, i, half, cosines[i], sines[i]);
                if (begin <= position && position < end) {
                    float *k_row = kv_row(blocks, layer, position, 0, kv_width) + (size_t)kvh * head_dim;
                    float *v_row = k_row + KV_BLOCK * kv_width;
                    for (int i = threadIdx.x; i < half; i += blockDim.x)
                        rotate_pair(k_new + (size_t)kvh * head_dim, k_row, i, half, cosines[i], sines[i]);
                    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
                        v_row[d] = v_new[(size_t)kvh * head_dim + d];
                }
            } else {
                for (int d = threadIdx.x; d < head_dim; d += blockDim.x) rotated[d] = qh[d];
            }
            __syncthreads();
            if (!early)
                split_load<PIECES>(split_row(blocks, layer, first, end, kv_width, kvh, head_dim), kv_width,
                                   lane % SPLIT_LANES, head_dim / 4, k, v);
            split_attend<PIECES>(query, blocks, layer, kv_width, kvh, head_dim, begin, end, scale, k, v, maxima, sums,
                                 part);
            __syncthreads();
            float top = NEGATIVE_INFINITY;
            for (int w = 0; w < SPLIT_WARPS; w++) top = fmaxf(top, maxima[w]);
            const bool empty = top == NEGATIVE_INFINITY;
            float total = 0.0f;
            if (!empty)
                for (int w = 0; w < SPLIT_WARPS; w++)
                    if (maxima[w] != NEGATIVE_INFINITY) total += sums[w] * expf(maxima[w] - top);
            float *out_split = splits == 1 ? out + (size_t)h * head_dim
                                           : partial + ((size_t)h * splits + split) * (head_dim + 2);
            for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
                float o = 0.0f;
                if (!empty)
                    for (int w = 0; w < SPLIT_WARPS; w++)
                        if (maxima[w] != NEGATIVE_INFINITY) o += part[w][d] * expf(maxima[w] - top);
                out_split[d] = splits == 1 ? o / total : o;
            }
            if (splits == 1) return;
            if (threadIdx.x == 0) {
                out_split[head_dim] = top;
                out_split[head_dim + 1] = total;
            }
            __syncthreads();
            if (threadIdx.x == 0) last = add_acquire_release(counters + h, 1u) == (unsigned)splits - 1;
            __syncthreads();
            if (!last) return;
            combine_head<PIECES * 32 <= SPLIT_WARPS * 32>(partial + (size_t)h * splits * (head_dim + 2), splits,
                                                          head_dim, out + (size_t)h * head_dim);
            if (threadIdx.x == 0) counters[h] = 0;
        }

        // attend_token for heads of at most \#(attentionSplitHeadDim) dimensions, and for wider ones: two kernels, so
        // that the narrow one's registers (and so its blocks a multiprocessor) are not those the wide one needs.
        extern "C" __global__ void __launch_bounds__(SPLIT_WARPS * 32)
            attention_split(const float *q, const unsigned long long *blocks, int layer, int heads, int kv_heads,
                            int head_dim, const int *positions, float scale, float *partial, float *out,
                            unsigned *counters, const float *k_new, const float *v_new, float theta) {
            attend_token<\#(attentionSplitHeadDim) / 32>(q, blocks, layer, heads, kv_heads, head_dim, positions, scale,
                                                          partial, out, counters, k_new, v_new, theta);
        }

        extern "C" __global__ void __launch_bounds__(SPLIT_WARPS * 32)
            attention_split_wide(const float *q, const unsigned long long *blocks, int layer, int heads,
                                 int kv_heads, int head_dim, const int *positions, float scale, float *partial,
                                 float *out, unsigned *counters, const float *k_new, const float *v_new,
                                 float theta) {
            attend_token<MAX_HEAD_DIM / 32>(q, blocks, layer, heads, kv_heads, head_dim, positions, scale, partial,
                                            out, counters, k_new, v_new, theta);
        }
        """#
}
