// Attention over the KV cache in work units that threads share: unit u is token t = u / (kv_heads * splits), KV
// head g = u / splits % kv_heads and position range s = u % splits of [0, positions[t]]. A unit serves all query
// heads of its group at once, so each cached key and value row is read from memory once per step, not once per
// query head; splitting positions gives both threads work when a decode step has fewer KV heads than threads need.
// The ranges are equal shares rounded to whole softmax blocks. Softmax runs online over blocks of positions (running
// max and sum), so a unit needs no scratch beyond a block.
//
// Decoding at a long context reads the cache at memory speed only if the arithmetic hides the memory latency: the
// AVX-512 variant (twice the arithmetic per instruction of AVX2, and the same sums in the same order, so a seed
// gives the same tokens on both) requests the rows of the next block, and past a unit's last block those of the
// next unit, a few cache lines at a time from inside its loops.
//
// Layouts: q and out [tokens][heads * head_dim] as ob_attention; k_cache, v_cache hold position p of KV head g at
// p * kv_row_stride + g * kv_head_stride (ob_attention's [capacity][kv_heads * head_dim] is row stride
// kv_heads * head_dim, head stride head_dim; the CPU backend's head-major cache [kv_heads][capacity][head_dim], whose
// units each stream one contiguous run, is row stride head_dim, head stride capacity * head_dim);
// partial [tokens][heads][splits][head_dim + 2] (unnormalised output, then running max and sum).
//
// Paged caches: position p lives in block table[p / block_positions], at offset p % block_positions inside it, and
// block b starts b * block_stride floats after the cache pointer. Every softmax block first turns its positions into
// row offsets, so the arithmetic (and its order) is the same whether rows are contiguous or scattered over blocks.

#include "CKernels.h"

#include <math.h>

// Positions per softmax block: a block's key rows (and then its value rows) stay in L1 while every head of a pass
// reads them.
#define BLOCK 32
// Query heads one pass over a block handles (their accumulators fill the vector registers).
#define HEADS_PER_PASS 4

// Where a unit finds its rows: KV head g's keys and values in block 0, and how positions map to rows.
typedef struct {
    const float *k, *v;
    const int32_t *table;  // block ids, or NULL: position p is row p of one contiguous run
    size_t block_positions, block_stride, row_stride;
} kv_rows;

// A unit's rows: positions p0 ..< p1 of one KV head.
typedef struct {
    kv_rows kv;
    size_t p0, p1;
} span;

// The row offsets (from kv->k, and kv->v) of positions p ..< p + n: one table lookup per block, not a division per
// row.
static inline void row_offsets(const kv_rows *kv, size_t p, size_t n, size_t *off) {
    if (!kv->table) {
        for (size_t i = 0; i < n; i++) off[i] = (p + i) * kv->row_stride;
        return;
    }
    size_t block = p / kv->block_positions, row = p % kv->block_positions;
    size_t base = (size_t)kv->table[block] * kv->block_stride;
    for (size_t i = 0; i < n; i++) {
        off[i] = base + row * kv->row_stride;
        if (++row == kv->block_positions && i + 1 < n) {
            row = 0;
            base = (size_t)kv->table[++block] * kv->block_stride;
        }
    }
}

// expf, with inputs below its underflow threshold answered directly: a peaked softmax sends most scores there,
// and libm's slow path for them costs more than the rest of the loop. The result is the same 0.
static inline float exp_or_zero(float x) { return x < -104.0f ? 0.0f : expf(x); }

// Where a unit's query head j writes its running output, and the stride between its heads' outputs.
typedef struct {
    float *o;
    size_t stride;
    float *stats;  // max and sum per head at stats + j * stride, or NULL: normalise into o instead
} destination;

// Folds the block's scores sc[j][0 ..< n] into head j's running max m[j] and sum l[j], rescaling its output so far
// when the max grows, and turns the scores into weights exp(score - max).
static void online_softmax(float sc[HEADS_PER_PASS][BLOCK], size_t heads, size_t n, float *m, float *l, float **o,
                           size_t head_dim) {
    for (size_t j = 0; j < heads; j++) {
        float block_max = -INFINITY;
        for (size_t i = 0; i < n; i++) block_max = fmaxf(block_max, sc[j][i]);
        if (block_max > m[j]) {
            float factor = exp_or_zero(m[j] - block_max);
            for (size_t d = 0; d < head_dim; d++) o[j][d] *= factor;
            l[j] *= factor;
            m[j] = block_max;
        }
        float sum = 0.0f;
        for (size_t i = 0; i < n; i++) {
            sc[j][i] = exp_or_zero(sc[j][i] - m[j]);
            sum += sc[j][i];
        }
        l[j] += sum;
    }
}

static void finish(const float *m, const float *l, float **o, size_t heads, size_t head_dim, destination dst,
                   size_t j0) {
    for (size_t j = 0; j < heads; j++) {
        if (dst.stats) {
            dst.stats[(j0 + j) * dst.stride] = m[j];
            dst.stats[(j0 + j) * dst.stride + 1] = l[j];
        } else {
            float inverse = 1.0f / l[j];
            for (size_t d = 0; d < head_dim; d++) o[j][d] *= inverse;
        }
    }
}

// Starts a pass over heads j0 .. j0 + hs: empty running maxima and sums, zeroed outputs.
static inline void start_pass(size_t j0, size_t hs, size_t head_dim, destination dst, float *m, float *l, float **o) {
    for (size_t j = 0; j < hs; j++) {
        m[j] = -INFINITY;
        l[j] = 0.0f;
        o[j] = dst.o + (j0 + j) * dst.stride;
        for (size_t d = 0; d < head_dim; d++) o[j][d] = 0.0f;
    }
}

static void unit_scalar(const float *qg, const kv_rows *kv, size_t head_dim, size_t group, size_t p0, size_t p1,
                        float scale, destination dst) {
    size_t off[BLOCK];
    for (size_t j0 = 0; j0 < group; j0 += HEADS_PER_PASS) {
        size_t hs = group - j0 < HEADS_PER_PASS ? group - j0 : HEADS_PER_PASS;
        float m[HEADS_PER_PASS], l[HEADS_PER_PASS], sc[HEADS_PER_PASS][BLOCK];
        float *o[HEADS_PER_PASS];
        start_pass(j0, hs, head_dim, dst, m, l, o);
        for (size_t p = p0; p < p1; p += BLOCK) {
            size_t n = p1 - p < BLOCK ? p1 - p : BLOCK;
            row_offsets(kv, p, n, off);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hs; j++) {
                    float dot = 0.0f;
                    for (size_t d = 0; d < head_dim; d++) dot += qg[(j0 + j) * head_dim + d] * kv->k[off[i] + d];
                    sc[j][i] = dot * scale;
                }
            online_softmax(sc, hs, n, m, l, o, head_dim);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hs; j++)
                    for (size_t d = 0; d < head_dim; d++) o[j][d] += sc[j][i] * kv->v[off[i] + d];
        }
        finish(m, l, o, hs, head_dim, dst, j0);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Touches the cache lines of a row segment ahead of use: rows may be far apart, a stride the hardware prefetcher
// follows late, and a unit's segment is only head_dim floats of each row.
AVX2 static inline void prefetch_row(const float *row, size_t head_dim) {
    for (size_t d = 0; d < head_dim; d += 16) _mm_prefetch((const char *)(row + d), _MM_HINT_T0);
}

// exp(x) for x <= 0, eight at a time: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor series to r^6
// (relative error below 2e-7), times 2^n built in the exponent field. Inputs below -87 (where 2^n would leave the
// normal range) give 0, as the scalar path's underflow does. A softmax evaluates one per score: libm's scalar expf
// cost more than the dot products.
AVX2 static inline __m256 exp_nonpositive_avx2(__m256 x) {
    const __m256 log2e = _mm256_set1_ps(1.44269504f), ln2_hi = _mm256_set1_ps(0.693359375f),
                 ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    __m256 clamped = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, clamped);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ), result);
}

// The sums of eight vectors' lanes, as one vector: lane i holds the sum of a[i].
AVX2 static inline __m256 reduce8_avx2(const __m256 a[8]) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// The dot product of a query head and a key row, as the AVX2 pass computes a row outside a group of eight.
AVX2 static inline float row_dot_avx2(const float *qh, const float *krow, size_t head_dim) {
    const size_t vec = head_dim / 8 * 8;
    __m256 acc = _mm256_setzero_ps();
    for (size_t d = 0; d < vec; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), _mm256_loadu_ps(krow + d), acc);
    float dot = hsum_avx2(acc);
    for (size_t d = vec; d < head_dim; d++) dot += qh[d] * krow[d];
    return dot;
}

// online_softmax for one head's block, eight scores at a time.
AVX2 static inline void online_softmax_avx2(float *sc, size_t n, float *m, float *l, float *o, size_t head_dim) {
    size_t vec = n / 8 * 8;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (size_t i = 0; i < vec; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(sc + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float block_max = _mm_cvtss_f32(h);
    for (size_t i = vec; i < n; i++) block_max = fmaxf(block_max, sc[i]);
    if (block_max > *m) {
        float factor = exp_or_zero(*m - block_max);
        for (size_t d = 0; d < head_dim; d++) o[d] *= factor;
        *l *= factor;
        *m = block_max;
    }
    __m256 shift = _mm256_set1_ps(*m), vsum = _mm256_setzero_ps();
    for (size_t i = 0; i < vec; i += 8) {
        __m256 e = exp_nonpositive_avx2(_mm256_sub_ps(_mm256_loadu_ps(sc + i), shift));
        _mm256_storeu_ps(sc + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum_avx2(vsum);
    for (size_t i = vec; i < n; i++) {
        sc[i] = exp_or_zero(sc[i] - *m);
        sum += sc[i];
    }
    *l += sum;
}

// One pass: heads j0 ..< j0 + hs of a group. Each key row loaded once serves every head of the pass, each value
// row likewise, its columns 32 at a time so the heads' accumulators stay in registers. Always inlined, so the call
// with hs fixed at four (the usual group) gets its head loops unrolled and its accumulators kept out of memory.
AVX2 static inline __attribute__((always_inline)) void pass_avx2(const float *qg, const kv_rows *kv,
                                                                 size_t head_dim, size_t j0, size_t hs, size_t p0,
                                                                 size_t p1, float scale, destination dst) {
    const size_t vec = head_dim / 8 * 8;
    const float *k = kv->k, *v = kv->v;
    // Row offsets of this block and of the next one, whose key rows are fetched while this one's values are summed.
    size_t offsets[2][BLOCK];
    size_t *off = offsets[0], *next = offsets[1];
    row_offsets(kv, p0, p1 - p0 < BLOCK ? p1 - p0 : BLOCK, off);
    float m[HEADS_PER_PASS], l[HEADS_PER_PASS], sc[HEADS_PER_PASS][BLOCK];
    float *o[HEADS_PER_PASS];
    start_pass(j0, hs, head_dim, dst, m, l, o);
    for (size_t p = p0; p < p1; p += BLOCK) {
        size_t n = p1 - p < BLOCK ? p1 - p : BLOCK;
        size_t next_n = p1 - p > BLOCK ? (p1 - p - BLOCK < BLOCK ? p1 - p - BLOCK : BLOCK) : 0;
        row_offsets(kv, p + BLOCK, next_n, next);
        if (p == p0)
            for (size_t i = 0; i < n; i++) prefetch_row(k + off[i], head_dim);
        // This block's value rows load while its scores are computed, the next block's key rows while its values
        // are summed: a block of lookahead keeps both streams at memory speed, which a few rows ahead did not.
        for (size_t i = 0; i < n; i++) prefetch_row(v + off[i], head_dim);
        // Scores eight positions at a time per head: one query load serves eight key rows (the block's rows stay
        // in cache for the other heads), and one reduction turns eight accumulators into eight scores.
        size_t n8 = vec == head_dim ? n / 8 * 8 : 0;
        for (size_t j = 0; j < hs; j++) {
            const float *qh = qg + (j0 + j) * head_dim;
            for (size_t i = 0; i < n8; i += 8) {
                __m256 acc[8];
                for (size_t r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
                for (size_t d = 0; d < vec; d += 8) {
                    __m256 qv = _mm256_loadu_ps(qh + d);
                    for (size_t r = 0; r < 8; r++)
                        acc[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + off[i + r] + d), acc[r]);
                }
                _mm256_storeu_ps(sc[j] + i, _mm256_mul_ps(reduce8_avx2(acc), _mm256_set1_ps(scale)));
            }
            for (size_t i = n8; i < n; i++) sc[j][i] = row_dot_avx2(qh, k + off[i], head_dim) * scale;
        }
        for (size_t j = 0; j < hs; j++) online_softmax_avx2(sc[j], n, &m[j], &l[j], o[j], head_dim);
        size_t d0 = 0;
        // 16 columns per pass over the block: four heads' accumulators, the value vectors and a weight fit the
        // 16 vector registers AVX2 has; the block's value rows stay in cache between passes.
        for (; d0 + 16 <= vec; d0 += 16) {
            __m256 acc[HEADS_PER_PASS][2];
            for (size_t j = 0; j < hs; j++)
                for (size_t c = 0; c < 2; c++) acc[j][c] = _mm256_loadu_ps(o[j] + d0 + 8 * c);
            for (size_t i = 0; i < n; i++) {
                const float *vrow = v + off[i] + d0;
                if (d0 == 0 && i < next_n) prefetch_row(k + next[i], head_dim);
                __m256 x0 = _mm256_loadu_ps(vrow), x1 = _mm256_loadu_ps(vrow + 8);
                for (size_t j = 0; j < hs; j++) {
                    __m256 w = _mm256_set1_ps(sc[j][i]);
                    acc[j][0] = _mm256_fmadd_ps(w, x0, acc[j][0]);
                    acc[j][1] = _mm256_fmadd_ps(w, x1, acc[j][1]);
                }
            }
            for (size_t j = 0; j < hs; j++)
                for (size_t c = 0; c < 2; c++) _mm256_storeu_ps(o[j] + d0 + 8 * c, acc[j][c]);
        }
        for (; d0 < vec; d0 += 8) {
            __m256 acc[HEADS_PER_PASS];
            for (size_t j = 0; j < hs; j++) acc[j] = _mm256_loadu_ps(o[j] + d0);
            for (size_t i = 0; i < n; i++) {
                __m256 x = _mm256_loadu_ps(v + off[i] + d0);
                for (size_t j = 0; j < hs; j++) acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(sc[j][i]), x, acc[j]);
            }
            for (size_t j = 0; j < hs; j++) _mm256_storeu_ps(o[j] + d0, acc[j]);
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < hs; j++)
                for (size_t d = vec; d < head_dim; d++) o[j][d] += sc[j][i] * v[off[i] + d];
        size_t *done = off;
        off = next;
        next = done;
    }
    finish(m, l, o, hs, head_dim, dst, j0);
}

AVX2 static void unit_avx2(const float *qg, const kv_rows *kv, size_t head_dim, size_t group, size_t p0, size_t p1,
                           float scale, destination dst) {
    for (size_t j0 = 0; j0 < group; j0 += HEADS_PER_PASS) {
        size_t hs = group - j0 < HEADS_PER_PASS ? group - j0 : HEADS_PER_PASS;
        if (hs == HEADS_PER_PASS)
            pass_avx2(qg, kv, head_dim, j0, HEADS_PER_PASS, p0, p1, scale, dst);
        else
            pass_avx2(qg, kv, head_dim, j0, hs, p0, p1, scale, dst);
    }
}

#define AVX512 __attribute__((target("avx2,fma,avx512f")))

// The lanes of columns d ..< d + 16 that exist in a row of head_dim columns.
static inline __mmask16 column_mask(size_t d, size_t head_dim) {
    return head_dim - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (head_dim - d)) - 1);
}

// The scores of 8 * groups consecutive rows (row r at k + off[r]), scaled, into out: bit for bit what pass_avx2
// computes for its groups of eight (each row's eight-lane sums in the same order, the same reduction), so a seed
// gives the same tokens on either variant. One 512-bit vector carries two rows, one per half. Rows of the next
// block (nk + next[r], r < next_count) are requested along the way, the share of head j of the pass's hs.
AVX512 static inline __attribute__((always_inline)) void group_scores_avx512(
    const float *qh, const float *k, const size_t *off, size_t groups, size_t head_dim, float scale, float *out,
    const float *nk, const size_t *next, size_t next_count, size_t j, size_t hs) {
    __m512 acc[8];
    for (size_t m = 0; m < 4 * groups; m++) acc[m] = _mm512_setzero_ps();
    for (size_t d = 0; d < head_dim; d += 8) {
        __m512 qv = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(qh + d))));
        for (size_t m = 0; m < 4 * groups; m++) {
            __m512 low = _mm512_castps256_ps512(_mm256_loadu_ps(k + off[2 * m] + d));
            __m256d high = _mm256_castps_pd(_mm256_loadu_ps(k + off[2 * m + 1] + d));
            __m512 rows = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(low), high, 1));
            acc[m] = _mm512_fmadd_ps(qv, rows, acc[m]);
        }
        if (d % 16 == 0)
            for (size_t r = 0; r < 8 * groups; r++)
                if (r % hs == j && r < next_count) _mm_prefetch((const char *)(nk + next[r] + d), _MM_HINT_T0);
    }
    for (size_t g = 0; g < groups; g++) {
        __m256 rows[8];
        for (size_t r = 0; r < 8; r++) {
            __m512 pair = acc[4 * g + r / 2];
            rows[r] = r % 2 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(pair), 1))
                            : _mm512_castps512_ps256(pair);
        }
        _mm256_storeu_ps(out + 8 * g, _mm256_mul_ps(reduce8_avx2(rows), _mm256_set1_ps(scale)));
    }
}

// o[j][d0 ..< d0 + 16 * vectors] += sum over the block's rows i of sc[j][i] * v[off[i] + d], for the pass's heads:
// up to four heads' four accumulators, a row's four vectors and a weight fit the 32 vector registers. `last` masks
// the final vector's columns.
AVX512 static inline __attribute__((always_inline)) void accumulate_values_avx512(
    const float *v, const size_t *off, size_t n, const float *nv, const size_t *next, size_t next_n,
    float sc[HEADS_PER_PASS][BLOCK], size_t hs, float **o, size_t d0, size_t vectors, __mmask16 last) {
    __m512 acc[HEADS_PER_PASS][4];
    for (size_t j = 0; j < hs; j++)
        for (size_t z = 0; z < vectors; z++)
            acc[j][z] = _mm512_maskz_loadu_ps(z + 1 == vectors ? last : 0xFFFF, o[j] + d0 + 16 * z);
    for (size_t i = 0; i < n; i++) {
        const float *row = v + off[i] + d0;
        if (i < next_n)  // the next block's value rows, a few lines per row summed
            for (size_t z = 0; z < vectors; z++)
                _mm_prefetch((const char *)(nv + next[i] + d0 + 16 * z), _MM_HINT_T0);
        __m512 x[4];
        for (size_t z = 0; z < vectors; z++)
            x[z] = _mm512_maskz_loadu_ps(z + 1 == vectors ? last : 0xFFFF, row + 16 * z);
        for (size_t j = 0; j < hs; j++) {
            __m512 w = _mm512_set1_ps(sc[j][i]);
            for (size_t z = 0; z < vectors; z++) acc[j][z] = _mm512_fmadd_ps(w, x[z], acc[j][z]);
        }
    }
    for (size_t j = 0; j < hs; j++)
        for (size_t z = 0; z < vectors; z++)
            _mm512_mask_storeu_ps(o[j] + d0 + 16 * z, z + 1 == vectors ? last : 0xFFFF, acc[j][z]);
}

// pass_avx2 with 512-bit vectors, and the same result bit for bit: scores two rows per instruction in the AVX2
// pass's order (group_scores_avx512), the same softmax, values 64 columns per pass over the block (each output
// element still sums its rows in order). While a block is computed, the rows of the block after it (in this span,
// else the first block of `after`, the rows the thread reads next) are requested a few lines at a time from inside
// the arithmetic: memory stays busy without a burst of requests that would fill the load queue, and a short span
// does not start with a stall.
AVX512 static inline __attribute__((always_inline)) void pass_avx512(const float *qg, const span *rows,
                                                                     const span *after, size_t head_dim, size_t j0,
                                                                     size_t hs, float scale, destination dst) {
    const float *k = rows->kv.k, *v = rows->kv.v;
    const size_t p0 = rows->p0, p1 = rows->p1;
    size_t offsets[2][BLOCK];
    size_t *off = offsets[0], *next = offsets[1];
    row_offsets(&rows->kv, p0, p1 - p0 < BLOCK ? p1 - p0 : BLOCK, off);
    float m[HEADS_PER_PASS], l[HEADS_PER_PASS], sc[HEADS_PER_PASS][BLOCK];
    float *o[HEADS_PER_PASS];
    start_pass(j0, hs, head_dim, dst, m, l, o);
    for (size_t p = p0; p < p1; p += BLOCK) {
        size_t n = p1 - p < BLOCK ? p1 - p : BLOCK;
        const float *nk = k, *nv = v;
        size_t next_n = 0;
        if (p + BLOCK < p1) {
            next_n = p1 - p - BLOCK < BLOCK ? p1 - p - BLOCK : BLOCK;
            row_offsets(&rows->kv, p + BLOCK, next_n, next);
        } else if (after && after->p1 > after->p0) {
            next_n = after->p1 - after->p0 < BLOCK ? after->p1 - after->p0 : BLOCK;
            row_offsets(&after->kv, after->p0, next_n, next);
            nk = after->kv.k;
            nv = after->kv.v;
        }
        size_t n8 = head_dim % 8 == 0 ? n / 8 * 8 : 0;  // the rows pass_avx2 scores in groups of eight
        for (size_t j = 0; j < hs; j++) {
            const float *qh = qg + (j0 + j) * head_dim;
            size_t i = 0;
            for (; i + 16 <= n8; i += 16)
                group_scores_avx512(qh, k, off + i, 2, head_dim, scale, sc[j] + i, nk, next + i,
                                    next_n > i ? next_n - i : 0, j, hs);
            if (i < n8) {
                group_scores_avx512(qh, k, off + i, 1, head_dim, scale, sc[j] + i, nk, next + i,
                                    next_n > i ? next_n - i : 0, j, hs);
                i += 8;
            }
            for (; i < n; i++) sc[j][i] = row_dot_avx2(qh, k + off[i], head_dim) * scale;
        }
        // A short last block computes few scores in groups: its rows of the next block are requested here.
        for (size_t i = n8; i < next_n; i++) prefetch_row(nk + next[i], head_dim);
        for (size_t j = 0; j < hs; j++) online_softmax_avx2(sc[j], n, &m[j], &l[j], o[j], head_dim);
        size_t d0 = 0;
        for (; d0 + 64 <= head_dim; d0 += 64)
            accumulate_values_avx512(v, off, n, nv, next, next_n, sc, hs, o, d0, 4, 0xFFFF);
        if (d0 < head_dim)
            accumulate_values_avx512(v, off, n, nv, next, next_n, sc, hs, o, d0, (head_dim - d0 + 15) / 16,
                                     column_mask(d0 + (head_dim - d0 - 1) / 16 * 16, head_dim));
        for (size_t i = n; i < next_n; i++) prefetch_row(nv + next[i], head_dim);
        size_t *done = off;
        off = next;
        next = done;
    }
    finish(m, l, o, hs, head_dim, dst, j0);
}

AVX512 static void unit_avx512(const float *qg, const span *rows, const span *after, size_t head_dim, size_t group,
                               float scale, destination dst) {
    for (size_t j0 = 0; j0 < group; j0 += HEADS_PER_PASS) {
        size_t hs = group - j0 < HEADS_PER_PASS ? group - j0 : HEADS_PER_PASS;
        // A pass with more heads of this group after it reads these rows again next.
        const span *following = j0 + hs < group ? rows : after;
        if (hs == HEADS_PER_PASS)
            pass_avx512(qg, rows, following, head_dim, j0, HEADS_PER_PASS, scale, dst);
        else
            pass_avx512(qg, rows, following, head_dim, j0, hs, scale, dst);
    }
}
#endif

// Where the s-th of `splits` ranges of `length` positions starts: equal shares, rounded down to whole softmax
// blocks, so no range but the last ends in a short block (a short block costs nearly as much as a full one).
static inline size_t split_start(size_t length, size_t s, size_t splits) {
    return s == splits ? length : length * s / splits / BLOCK * BLOCK;
}

// Unit u's rows: its KV head's rows and its range of the token's positions.
static span unit_span(size_t u, const float *k_cache, const float *v_cache, const int32_t *block_table,
                      size_t block_positions, size_t block_stride, size_t kv_row_stride, size_t kv_head_stride,
                      size_t kv_heads, const int32_t *positions, size_t splits) {
    size_t t = u / (kv_heads * splits), g = u / splits % kv_heads, s = u % splits;
    size_t length = (size_t)positions[t] + 1;
    kv_rows kv = {k_cache + g * kv_head_stride, v_cache + g * kv_head_stride, block_table, block_positions,
                  block_stride, kv_row_stride};
    return (span){kv, split_start(length, s, splits), split_start(length, s + 1, splits)};
}

void ob_attention_paged_units(int isa, const float *q, const float *k_cache, const float *v_cache,
                              const int32_t *block_table, size_t block_positions, size_t block_stride,
                              size_t kv_row_stride, size_t kv_head_stride, size_t tokens, size_t heads,
                              size_t kv_heads, size_t head_dim, const int32_t *positions, float scale, size_t splits,
                              size_t unit_begin, size_t unit_end, float *partial, float *out) {
    (void)tokens;
    size_t group = heads / kv_heads;
    size_t q_width = heads * head_dim;
    span rows = {{0}, 0, 0}, after = {{0}, 0, 0};
    if (unit_begin < unit_end)
        after = unit_span(unit_begin, k_cache, v_cache, block_table, block_positions, block_stride, kv_row_stride,
                          kv_head_stride, kv_heads, positions, splits);
    for (size_t u = unit_begin; u < unit_end; u++) {
        size_t t = u / (kv_heads * splits), g = u / splits % kv_heads, s = u % splits;
        rows = after;
        if (u + 1 < unit_end)
            after = unit_span(u + 1, k_cache, v_cache, block_table, block_positions, block_stride, kv_row_stride,
                              kv_head_stride, kv_heads, positions, splits);
        size_t first = g * group;
        const float *qg = q + t * q_width + first * head_dim;  // the group's query heads are adjacent
        destination dst;
        if (splits == 1) {
            dst = (destination){out + t * q_width + first * head_dim, head_dim, NULL};
        } else {
            size_t stride = splits * (head_dim + 2);
            float *base = partial + (t * heads + first) * stride + s * (head_dim + 2);
            dst = (destination){base, stride, base + head_dim};
        }
#if defined(__x86_64__)
        if (isa == OB_ISA_AVX512_VNNI) {
            unit_avx512(qg, &rows, u + 1 < unit_end ? &after : NULL, head_dim, group, scale, dst);
            continue;
        }
        if (isa == OB_ISA_AVX2) {
            unit_avx2(qg, &rows.kv, head_dim, group, rows.p0, rows.p1, scale, dst);
            continue;
        }
#endif
        (void)isa;
        unit_scalar(qg, &rows.kv, head_dim, group, rows.p0, rows.p1, scale, dst);
    }
}

void ob_attention_units(int isa, const float *q, const float *k_cache, const float *v_cache, size_t kv_row_stride,
                        size_t kv_head_stride, size_t tokens, size_t heads, size_t kv_heads, size_t head_dim,
                        const int32_t *positions, float scale, size_t splits, size_t unit_begin, size_t unit_end,
                        float *partial, float *out) {
    ob_attention_paged_units(isa, q, k_cache, v_cache, NULL, 1, 0, kv_row_stride, kv_head_stride, tokens, heads,
                             kv_heads, head_dim, positions, scale, splits, unit_begin, unit_end, partial, out);
}

void ob_kv_store_paged(const float *keys, const float *values, size_t tokens, size_t width, const int32_t *positions,
                       const int32_t *block_table, size_t block_positions, size_t block_stride, float *k_cache,
                       float *v_cache) {
    for (size_t t = 0; t < tokens; t++) {
        size_t p = (size_t)positions[t];
        size_t at = (size_t)block_table[p / block_positions] * block_stride + p % block_positions * width;
        for (size_t i = 0; i < width; i++) {
            k_cache[at + i] = keys[t * width + i];
            v_cache[at + i] = values[t * width + i];
        }
    }
}

void ob_attention_merge(size_t tokens, size_t heads, size_t head_dim, size_t splits, const float *partial,
                        float *out) {
    size_t stride = head_dim + 2;
    for (size_t th = 0; th < tokens * heads; th++) {
        const float *part = partial + th * splits * stride;
        float max = -INFINITY;
        for (size_t s = 0; s < splits; s++) max = fmaxf(max, part[s * stride + head_dim]);
        float *o = out + th * head_dim;
        for (size_t d = 0; d < head_dim; d++) o[d] = 0.0f;
        float sum = 0.0f;
        for (size_t s = 0; s < splits; s++) {
            float w = exp_or_zero(part[s * stride + head_dim] - max);
            sum += w * part[s * stride + head_dim + 1];
            for (size_t d = 0; d < head_dim; d++) o[d] += w * part[s * stride + d];
        }
        float inverse = 1.0f / sum;
        for (size_t d = 0; d < head_dim; d++) o[d] *= inverse;
    }
}
