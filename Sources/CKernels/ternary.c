// Ternary x int8 matrix kernels over the packed layout, one variant per instruction set, chosen by the caller.
//
// Packed layout: each row is ceil(cols / 256) blocks of 64 bytes, rows back to back (row stride
// ob_packed_row_bytes(cols)). Byte j of block b holds the 2-bit code (w + 1) of column 256b + 64k + j in bits
// 2k..2k+1, k = 0..3. One 64-byte load thus yields four 64-column runs after a shift and a mask, each lined up with
// 64 consecutive activations, which is what vpdpbusd (AVX-512 VNNI) and vpmaddubsw (AVX2) consume. Columns past
// `cols` hold code 0; the kernels never multiply them by anything but a zero activation.
//
// Every variant computes dot(w + 1, a) - sum(a) = dot(w, a) exactly in int32 and rescales in the same order as
// ob_ternary_matmul_reference, so outputs are bit-identical to it.

#include "CKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { BLOCK_COLS = 256, BLOCK_BYTES = 64 };

size_t ob_packed_row_bytes(size_t cols) { return (cols + BLOCK_COLS - 1) / BLOCK_COLS * BLOCK_BYTES; }

void ob_ternary_pack(const uint8_t *codes, size_t rows, size_t cols, uint8_t *packed) {
    size_t stride = ob_packed_row_bytes(cols), bytes_per_row = cols / 4;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *src = codes + r * bytes_per_row;
        uint8_t *dst = packed + r * stride;
        for (size_t block = 0; block * BLOCK_COLS < cols; block++) {
            // One code per byte for the block's 256 columns (code 0 past the end), then four per output byte.
            uint8_t expanded[BLOCK_COLS] = {0};
            size_t first = block * BLOCK_COLS, count = cols - first < BLOCK_COLS ? cols - first : BLOCK_COLS;
            for (size_t c = 0; c < count; c++) expanded[c] = (src[(first + c) >> 2] >> (((first + c) & 3) * 2)) & 3;
            for (size_t j = 0; j < BLOCK_BYTES; j++)
                dst[block * BLOCK_BYTES + j] = (uint8_t)(expanded[j] | expanded[64 + j] << 2 | expanded[128 + j] << 4 |
                                                         expanded[192 + j] << 6);
        }
    }
}

int ob_isa_supported(int isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    switch (isa) {
    case OB_ISA_SCALAR: return 1;
    case OB_ISA_AVX2: return __builtin_cpu_supports("avx2");
    case OB_ISA_AVX512_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
    default: return 0;
    }
#else
    return isa == OB_ISA_SCALAR;
#endif
}

int ob_isa_best(void) {
    if (ob_isa_supported(OB_ISA_AVX512_VNNI)) return OB_ISA_AVX512_VNNI;
    if (ob_isa_supported(OB_ISA_AVX2)) return OB_ISA_AVX2;
    return OB_ISA_SCALAR;
}

static int32_t sum_i8(const int8_t *a, size_t n) {
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += a[i];
    return s;
}

// How one call turns int32 sums into outputs: floats rescaled as the reference does, or the raw sums.
typedef struct {
    size_t cols, rows_total, tokens;
    const float *w_scales;
    size_t block_size; // 0: one scale per tensor
    const int8_t *q;
    const float *act_scales;
    float *y;
    int32_t *acc; // when set, raw dot products are written here instead of y
} job;

// dot(w + 1, a) over blocks [b0, b1) of R rows and T tokens; sums[r][t] receives the raw code-weighted sums.
typedef void (*tile_fn)(const uint8_t *w, size_t stride, const int8_t *q, size_t cols, size_t b0, size_t b1,
                        int rows, int tokens, int32_t sums[4][4]);

// Runs rows [r0, r1) x all tokens in tiles of at most max_rows x max_tokens, segment by segment (a segment is the
// whole row for a per-tensor scale, one scale block otherwise).
static void drive(const job *j, const uint8_t *packed, size_t r0, size_t r1, tile_fn tile, int max_rows,
                  int max_tokens) {
    size_t stride = ob_packed_row_bytes(j->cols);
    size_t blocks_total = stride / BLOCK_BYTES;
    size_t seg_cols = j->block_size ? j->block_size : j->cols;
    size_t segments = j->cols / seg_cols;
    size_t seg_blocks = j->block_size ? j->block_size / BLOCK_COLS : blocks_total;
    // Activation sums of a per-tensor row, computed once per call for each group of tokens.
    enum { GROUP = 64 };
    for (size_t g = 0; g < j->tokens; g += GROUP) {
        size_t g_end = j->tokens - g < GROUP ? j->tokens : g + GROUP;
        int32_t row_sums[GROUP];
        if (segments == 1)
            for (size_t t = g; t < g_end; t++) row_sums[t - g] = sum_i8(j->q + t * j->cols, j->cols);
        for (size_t r = r0; r < r1; r += (size_t)max_rows) {
            int rows = (int)(r1 - r < (size_t)max_rows ? r1 - r : (size_t)max_rows);
            for (size_t t = g; t < g_end; t += (size_t)max_tokens) {
                int tokens = (int)(g_end - t < (size_t)max_tokens ? g_end - t : (size_t)max_tokens);
                float totals[4][4] = {{0}};
                for (size_t s = 0; s < segments; s++) {
                    int32_t sums[4][4];
                    size_t b0 = s * seg_blocks, b1 = segments == 1 ? blocks_total : b0 + seg_blocks;
                    tile(packed + r * stride, stride, j->q + t * j->cols, j->cols, b0, b1, rows, tokens, sums);
                    for (int tt = 0; tt < tokens; tt++) {
                        size_t token = t + (size_t)tt;
                        int32_t asum = segments == 1 ? row_sums[token - g]
                                                     : sum_i8(j->q + token * j->cols + s * seg_cols, seg_cols);
                        for (int rr = 0; rr < rows; rr++) {
                            int32_t dot = sums[rr][tt] - asum;
                            size_t row = r + (size_t)rr;
                            if (j->acc) {
                                j->acc[token * j->rows_total + row] = dot;
                            } else if (j->block_size == 0) {
                                j->y[token * j->rows_total + row] =
                                    (float)dot / j->act_scales[token] * j->w_scales[0];
                            } else {
                                totals[rr][tt] += (float)dot * j->w_scales[row * segments + s];
                            }
                        }
                    }
                }
                if (j->block_size != 0 && !j->acc) {
                    for (int tt = 0; tt < tokens; tt++)
                        for (int rr = 0; rr < rows; rr++)
                            j->y[(t + (size_t)tt) * j->rows_total + r + (size_t)rr] =
                                totals[rr][tt] / j->act_scales[t + (size_t)tt];
                }
            }
        }
    }
}

// --- scalar -------------------------------------------------------------------------------------------------

static void tile_scalar(const uint8_t *w, size_t stride, const int8_t *q, size_t cols, size_t b0, size_t b1,
                        int rows, int tokens, int32_t sums[4][4]) {
    size_t end = b1 * BLOCK_COLS < cols ? b1 * BLOCK_COLS : cols;
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t)r * stride;
        for (int t = 0; t < tokens; t++) {
            const int8_t *a = q + (size_t)t * cols;
            int32_t s = 0;
            for (size_t c = b0 * BLOCK_COLS; c < end; c++) {
                size_t within = c % BLOCK_COLS;
                int code = (row[c / BLOCK_COLS * BLOCK_BYTES + within % 64] >> ((within / 64) * 2)) & 3;
                s += code * a[c];
            }
            sums[r][t] = s;
        }
    }
}

// --- AVX2: vpmaddubsw (u8 code x s8 activation -> s16 pairs), vpmaddwd by ones -> s32 -----------------------

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma")))

// Activations of 32 columns starting at c, zero past cols.
AVX2 static inline __m256i load_act_avx2(const int8_t *a, size_t c, size_t cols) {
    if (c + 32 <= cols) return _mm256_loadu_si256((const __m256i *)(a + c));
    int8_t tail[32] = {0};
    if (c < cols) memcpy(tail, a + c, cols - c);
    return _mm256_loadu_si256((const __m256i *)tail);
}

AVX2 static inline __attribute__((always_inline)) void tile_avx2_rt(const uint8_t *w, size_t stride,
                                                                     const int8_t *q, size_t cols, size_t b0,
                                                                     size_t b1, const int R, const int T,
                                                                     int32_t sums[4][4]) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[2][2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_si256();
    for (size_t b = b0; b < b1; b++) {
        // Per block each s16 lane sums 8 pairs of |code * a| <= 256: at most 4096, no saturation.
        __m256i part[2][2];
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) part[r][t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i raw[2];
            for (int r = 0; r < R; r++) {
                const uint8_t *half = w + (size_t)r * stride + b * BLOCK_BYTES + 32 * h;
                _mm_prefetch((const char *)(half + 8 * stride), _MM_HINT_T0);
                raw[r] = _mm256_loadu_si256((const __m256i *)half);
            }
            for (int k = 0; k < 4; k++) {
                size_t c = b * BLOCK_COLS + 64 * (size_t)k + 32 * (size_t)h;
                __m256i a[2];
                for (int t = 0; t < T; t++) a[t] = load_act_avx2(q + (size_t)t * cols, c, cols);
                for (int r = 0; r < R; r++) {
                    __m256i u = _mm256_and_si256(_mm256_srli_epi16(raw[r], 2 * k), mask);
                    for (int t = 0; t < T; t++) part[r][t] = _mm256_add_epi16(part[r][t], _mm256_maddubs_epi16(u, a[t]));
                }
            }
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(part[r][t], ones));
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[r][t]), _mm256_extracti128_si256(acc[r][t], 1));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
            sums[r][t] = _mm_cvtsi128_si32(s);
        }
}

AVX2 static void tile_avx2(const uint8_t *w, size_t stride, const int8_t *q, size_t cols, size_t b0, size_t b1,
                           int rows, int tokens, int32_t sums[4][4]) {
    if (rows == 2 && tokens == 2) tile_avx2_rt(w, stride, q, cols, b0, b1, 2, 2, sums);
    else if (rows == 2) tile_avx2_rt(w, stride, q, cols, b0, b1, 2, 1, sums);
    else if (tokens == 2) tile_avx2_rt(w, stride, q, cols, b0, b1, 1, 2, sums);
    else tile_avx2_rt(w, stride, q, cols, b0, b1, 1, 1, sums);
}

// --- AVX-512 VNNI: vpdpbusd (u8 code x s8 activation, four products summed into each s32 lane) ---------------

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

VNNI static inline __mmask64 tail_mask(size_t c, size_t cols) {
    if (c + 64 <= cols) return ~(__mmask64)0;
    return c >= cols ? 0 : (((__mmask64)1 << (cols - c)) - 1);
}

VNNI static inline __attribute__((always_inline)) void tile_vnni_rt(const uint8_t *w, size_t stride,
                                                                     const int8_t *q, size_t cols, size_t b0,
                                                                     size_t b1, const int R, const int T,
                                                                     int32_t sums[4][4]) {
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_si512();
    // Full blocks load activations unmasked; only a final partial block (cols not a multiple of 256) masks them.
    size_t full_end = cols / BLOCK_COLS < b1 ? cols / BLOCK_COLS : b1;
    for (size_t b = b0; b < b1; b++) {
        int full = b < full_end;
        __m512i raw[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *block = w + (size_t)r * stride + b * BLOCK_BYTES;
            // The hardware prefetcher alone leaves bandwidth unused here: fetch the rows two tiles ahead.
            _mm_prefetch((const char *)(block + 8 * stride), _MM_HINT_T0);
            raw[r] = _mm512_loadu_si512(block);
        }
        for (int k = 0; k < 4; k++) {
            size_t c = b * BLOCK_COLS + 64 * (size_t)k;
            __m512i a[4];
            if (full) {
                for (int t = 0; t < T; t++) a[t] = _mm512_loadu_si512(q + (size_t)t * cols + c);
            } else {
                __mmask64 m = tail_mask(c, cols);
                for (int t = 0; t < T; t++) a[t] = _mm512_maskz_loadu_epi8(m, q + (size_t)t * cols + c);
            }
            for (int r = 0; r < R; r++) {
                __m512i u = _mm512_and_si512(_mm512_srli_epi16(raw[r], 2 * k), mask);
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], u, a[t]);
            }
        }
    }
    if (R == 4) {
        // Four rows reduced together: pairwise interleaved adds leave [r0 r1 r2 r3] sums in each 128-bit lane.
        for (int t = 0; t < T; t++) {
            __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[0][t], acc[1][t]),
                                          _mm512_unpackhi_epi32(acc[0][t], acc[1][t]));
            __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2][t], acc[3][t]),
                                          _mm512_unpackhi_epi32(acc[2][t], acc[3][t]));
            __m512i abcd = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
            __m256i half = _mm256_add_epi32(_mm512_castsi512_si256(abcd), _mm512_extracti64x4_epi64(abcd, 1));
            __m128i quarter = _mm_add_epi32(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
            int32_t lanes[4];
            _mm_storeu_si128((__m128i *)lanes, quarter);
            for (int r = 0; r < 4; r++) sums[r][t] = lanes[r];
        }
        return;
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) sums[r][t] = _mm512_reduce_add_epi32(acc[r][t]);
}

VNNI static void tile_vnni(const uint8_t *w, size_t stride, const int8_t *q, size_t cols, size_t b0, size_t b1,
                           int rows, int tokens, int32_t sums[4][4]) {
    // Full tiles get their own unrolled copies; edges share the generic one.
    if (rows == 4 && tokens == 4) tile_vnni_rt(w, stride, q, cols, b0, b1, 4, 4, sums);
    else if (rows == 4 && tokens == 1) tile_vnni_rt(w, stride, q, cols, b0, b1, 4, 1, sums);
    else if (rows == 4 && tokens == 2) tile_vnni_rt(w, stride, q, cols, b0, b1, 4, 2, sums);
    else if (rows == 4 && tokens == 3) tile_vnni_rt(w, stride, q, cols, b0, b1, 4, 3, sums);
    else {
        for (int r = 0; r < rows; r++) {
            int32_t one[4][4];
            for (int t = 0; t < tokens; t++) {
                tile_vnni_rt(w + (size_t)r * stride, stride, q + (size_t)t * cols, cols, b0, b1, 1, 1, one);
                sums[r][t] = one[0][0];
            }
        }
    }
}
#endif

static void run(int isa, const job *j, const uint8_t *packed, size_t r0, size_t r1) {
    switch (isa) {
#if defined(__x86_64__)
    case OB_ISA_AVX512_VNNI: drive(j, packed, r0, r1, tile_vnni, 4, 4); return;
    case OB_ISA_AVX2: drive(j, packed, r0, r1, tile_avx2, 2, 2); return;
#endif
    default: drive(j, packed, r0, r1, tile_scalar, 4, 4); return;
    }
}

void ob_ternary_matmul_packed(int isa, const uint8_t *packed, size_t cols, size_t row_begin, size_t row_end,
                              size_t rows_total, const float *w_scales, size_t block_size, const int8_t *q,
                              const float *act_scales, size_t tokens, float *y) {
    job j = {cols, rows_total, tokens, w_scales, block_size, q, act_scales, y, NULL};
    run(isa, &j, packed, row_begin, row_end);
}

void ob_ternary_dot_packed(int isa, const uint8_t *packed, size_t cols, size_t row_begin, size_t row_end,
                           size_t rows_total, const int8_t *q, size_t tokens, int32_t *acc) {
    job j = {cols, rows_total, tokens, NULL, 0, q, NULL, NULL, acc};
    run(isa, &j, packed, row_begin, row_end);
}
