// Output-head kernels: the bf16 matrix as stored, and the opt-in int8 copy of it.
//
// Layouts: bf16 row-major uint16 [rows][cols] (the top half of each fp32); int8 row-major [rows][cols] with one
// float scale and one int32 sum of codes per row.

#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

static inline float bf16_to_float(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)h << 16};
    return v.f;
}

AVX2 static inline __m256 load_bf16x8(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Four rows at a time share each load of x; two accumulators per row hide the FMA latency.
AVX2 static void bf16_gemv_avx2(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, float *y) {
    size_t vec_end = cols / 16 * 16;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        __m256 acc[4][2];
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        for (size_t c = 0; c < vec_end; c += 16) {
            __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            for (int i = 0; i < 4; i++) {
                const uint16_t *row = w + (r + (size_t)i) * cols + c;
                // Rows two tiles ahead: the hardware prefetcher alone reached half the read bandwidth.
                _mm_prefetch((const char *)(row + 8 * cols), _MM_HINT_T0);
                acc[i][0] = _mm256_fmadd_ps(load_bf16x8(row), x0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(load_bf16x8(row + 8), x1, acc[i][1]);
            }
        }
        for (int i = 0; i < 4; i++) {
            float s = hsum256(_mm256_add_ps(acc[i][0], acc[i][1]));
            for (size_t c = vec_end; c < cols; c++) s += bf16_to_float(w[(r + (size_t)i) * cols + c]) * x[c];
            y[r + (size_t)i] = s;
        }
    }
    for (; r < r1; r++) {
        __m256 acc = _mm256_setzero_ps();
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) acc = _mm256_fmadd_ps(load_bf16x8(w + r * cols + c), _mm256_loadu_ps(x + c), acc);
        float s = hsum256(acc);
        for (; c < cols; c++) s += bf16_to_float(w[r * cols + c]) * x[c];
        y[r] = s;
    }
}

// One row at a time against up to four tokens: each tile of a row is converted from bf16 once and serves every
// token, and the row (consecutive rows are consecutive memory) stays in L1 while further groups of four tokens reuse
// it, so the matrix is read from memory once for the whole batch. Each token's sum runs in the order
// bf16_gemv_avx2 uses for the same row of the same range (two accumulators for rows it takes four at a time, one
// for the rest), so a batched step's logits are bit-identical to one token's.
AVX2 static void bf16_gemm_avx2(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t batch,
                                size_t rows_total, float *y) {
    size_t quads_end = r0 + (r1 - r0) / 4 * 4, vec16 = cols / 16 * 16, vec8 = cols / 8 * 8;
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * cols;
        int paired = r < quads_end;
        for (size_t b0 = 0; b0 < batch; b0 += 4) {
            size_t nb = batch - b0 < 4 ? batch - b0 : 4;
            const float *xb = x + b0 * cols;
            __m256 acc[4][2];
            for (size_t j = 0; j < 4; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
            size_t c = 0;
            if (paired) {
                for (; c < vec16; c += 16) {
                    if (b0 == 0) _mm_prefetch((const char *)(row + 8 * cols + c), _MM_HINT_T0);
                    __m256 w0 = load_bf16x8(row + c), w1 = load_bf16x8(row + c + 8);
                    for (size_t j = 0; j < nb; j++) {
                        acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb + j * cols + c), acc[j][0]);
                        acc[j][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + j * cols + c + 8), acc[j][1]);
                    }
                }
                for (size_t j = 0; j < nb; j++) acc[j][0] = _mm256_add_ps(acc[j][0], acc[j][1]);
            } else {
                for (; c < vec8; c += 8) {
                    __m256 w0 = load_bf16x8(row + c);
                    for (size_t j = 0; j < nb; j++)
                        acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb + j * cols + c), acc[j][0]);
                }
            }
            for (size_t j = 0; j < nb; j++) {
                float s = hsum256(acc[j][0]);
                for (size_t k = c; k < cols; k++) s += bf16_to_float(row[k]) * xb[j * cols + k];
                y[(b0 + j) * rows_total + r] = s;
            }
        }
    }
}

AVX2 static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n) {
    __m256i acc = _mm256_setzero_si256();
    size_t c = 0;
    for (; c + 16 <= n; c += 16) {
        __m256i va = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + c)));
        __m256i vb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + c)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vb));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    int32_t total = _mm_cvtsi128_si32(s);
    for (; c < n; c++) total += a[c] * b[c];
    return total;
}

// vpdpbusd wants unsigned x signed: the token is offset to u = x + 128 (a sign-bit flip), and the row's code sum
// times 128 is taken back off. Four rows at a time share each activation load.
VNNI static void int8_gemv_vnni(const int8_t *q, const float *row_scales, const int32_t *row_sums, size_t cols,
                                size_t r0, size_t r1, const int8_t *xq, float x_scale, float *y) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    size_t r = r0;
    for (; r < r1; r += 4) {
        int rows = r1 - r < 4 ? (int)(r1 - r) : 4;
        __m512i acc[4];
        for (int i = 0; i < 4; i++) acc[i] = _mm512_setzero_si512();
        for (size_t c = 0; c < cols; c += 64) {
            __mmask64 m = c + 64 <= cols ? ~(__mmask64)0 : (((__mmask64)1 << (cols - c)) - 1);
            __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, xq + c), flip);
            u = _mm512_maskz_mov_epi8(m, u);
            for (int i = 0; i < rows; i++) {
                const int8_t *row = q + (r + (size_t)i) * cols + c;
                _mm_prefetch((const char *)(row + 8 * cols), _MM_HINT_T0);
                acc[i] = _mm512_dpbusd_epi32(acc[i], u, _mm512_maskz_loadu_epi8(m, row));
            }
        }
        for (int i = 0; i < rows; i++) {
            size_t row = r + (size_t)i;
            int32_t dot = _mm512_reduce_add_epi32(acc[i]) - 128 * row_sums[row];
            y[row] = (float)dot * row_scales[row] / x_scale;
        }
    }
}

// ob_int8_gemm's vector kernel: rows in pairs, tokens in blocks of up to 8 (16 accumulators). A pair's chunks come
// from memory for the first block of tokens and from L1 for the others, so the head is read once for the batch.
VNNI static void int8_gemm_vnni(const int8_t *q, const float *row_scales, const int32_t *row_sums, size_t cols,
                                size_t r0, size_t r1, const int8_t *xq, const float *x_scales, size_t batch,
                                size_t rows_total, float *y) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (size_t r = r0; r < r1; r += 2) {
        const int pair = r + 1 < r1;
        const int8_t *first = q + r * cols, *second = q + (r + (size_t)pair) * cols;
        for (size_t b0 = 0; b0 < batch; b0 += 8) {
            const size_t tokens = batch - b0 < 8 ? batch - b0 : 8;
            __m512i acc[2][8];
            for (int j = 0; j < 8; j++) acc[0][j] = acc[1][j] = _mm512_setzero_si512();
            for (size_t c = 0; c < cols; c += 64) {
                __mmask64 m = c + 64 <= cols ? ~(__mmask64)0 : (((__mmask64)1 << (cols - c)) - 1);
                const __m512i w0 = _mm512_maskz_loadu_epi8(m, first + c), w1 = _mm512_maskz_loadu_epi8(m, second + c);
                for (size_t j = 0; j < 8; j++) {
                    if (j >= tokens) break;
                    __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, xq + (b0 + j) * cols + c), flip);
                    u = _mm512_maskz_mov_epi8(m, u);
                    acc[0][j] = _mm512_dpbusd_epi32(acc[0][j], u, w0);
                    acc[1][j] = _mm512_dpbusd_epi32(acc[1][j], u, w1);
                }
            }
            for (size_t j = 0; j < tokens; j++)
                for (int i = 0; i <= pair; i++) {
                    const size_t row = r + (size_t)i;
                    const int32_t dot = _mm512_reduce_add_epi32(acc[i][j]) - 128 * row_sums[row];
                    y[(b0 + j) * rows_total + row] = (float)dot * row_scales[row] / x_scales[b0 + j];
                }
        }
    }
}
#endif

void ob_bf16_gemv(int isa, const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                  float *y) {
#if defined(__x86_64__)
    // The AVX2 variant already streams the matrix at memory speed; wider vectors would not read it faster.
    if (isa == OB_ISA_AVX2 || isa == OB_ISA_AVX512_VNNI) {
        bf16_gemv_avx2(w, cols, row_begin, row_end, x, y);
        return;
    }
#endif
    (void)isa;
    ob_dense_gemv_bf16(w, cols, row_begin, row_end, x, y);
}

void ob_bf16_gemm(int isa, const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                  size_t batch, size_t rows_total, float *y) {
#if defined(__x86_64__)
    if (isa == OB_ISA_AVX2 || isa == OB_ISA_AVX512_VNNI) {
        bf16_gemm_avx2(w, cols, row_begin, row_end, x, batch, rows_total, y);
        return;
    }
#endif
    (void)isa;
    for (size_t b = 0; b < batch; b++)
        ob_dense_gemv_bf16(w, cols, row_begin, row_end, x + b * cols, y + b * rows_total);
}

void ob_int8_rows_from_bf16(const uint16_t *w, size_t rows, size_t cols, int8_t *q, float *row_scales,
                            int32_t *row_sums) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = w + r * cols;
        float max = 0.0f;
        for (size_t c = 0; c < cols; c++) {
            union {
                uint32_t u;
                float f;
            } v = {(uint32_t)row[c] << 16};
            max = fmaxf(max, fabsf(v.f));
        }
        float scale = max > 0.0f ? max / 127.0f : 1.0f;
        int32_t sum = 0;
        for (size_t c = 0; c < cols; c++) {
            union {
                uint32_t u;
                float f;
            } v = {(uint32_t)row[c] << 16};
            int8_t code = (int8_t)fminf(127.0f, fmaxf(-127.0f, rintf(v.f / scale)));
            q[r * cols + c] = code;
            sum += code;
        }
        row_scales[r] = scale;
        row_sums[r] = sum;
    }
}

void ob_int8_gemv(int isa, const int8_t *q, const float *row_scales, const int32_t *row_sums, size_t cols,
                  size_t row_begin, size_t row_end, const int8_t *xq, float x_scale, float *y) {
#if defined(__x86_64__)
    if (isa == OB_ISA_AVX512_VNNI) {
        int8_gemv_vnni(q, row_scales, row_sums, cols, row_begin, row_end, xq, x_scale, y);
        return;
    }
    if (isa == OB_ISA_AVX2) {
        for (size_t r = row_begin; r < row_end; r++)
            y[r] = (float)dot_i8_avx2(q + r * cols, xq, cols) * row_scales[r] / x_scale;
        return;
    }
#endif
    (void)isa;
    (void)row_sums;
    for (size_t r = row_begin; r < row_end; r++) {
        int32_t dot = 0;
        for (size_t c = 0; c < cols; c++) dot += q[r * cols + c] * xq[c];
        y[r] = (float)dot * row_scales[r] / x_scale;
    }
}

void ob_int8_gemm(int isa, const int8_t *q, const float *row_scales, const int32_t *row_sums, size_t cols,
                  size_t row_begin, size_t row_end, const int8_t *xq, const float *x_scales, size_t batch,
                  size_t rows_total, float *y) {
#if defined(__x86_64__)
    if (isa == OB_ISA_AVX512_VNNI) {
        int8_gemm_vnni(q, row_scales, row_sums, cols, row_begin, row_end, xq, x_scales, batch, rows_total, y);
        return;
    }
#endif
    // Each row against every token while it is in L1: the head is read once for the batch.
    for (size_t r = row_begin; r < row_end; r++)
        for (size_t b = 0; b < batch; b++)
            ob_int8_gemv(isa, q, row_scales, row_sums, cols, r, r + 1, xq + b * cols, x_scales[b],
                         y + b * rows_total);
}
