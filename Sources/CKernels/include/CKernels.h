#ifndef ONEBIT_CKERNELS_H
#define ONEBIT_CKERNELS_H

// onebit's CPU kernels. Every function names the layout it reads; none allocates or knows what a model is.
//
// Layouts:
//   activations   row-major float [tokens][width]
//   quantized     row-major int8 [tokens][width] + one float scale per token (s = 127 / max|x|)
//   ternary       canonical 2-bit codes (w + 1), row-major [rows][cols / 4]; column 4b + k of a row sits in
//                 bits 2k..2k+1 of the row's byte b; cols is a multiple of 4

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Per-token int8 quantization (the BitNet b1.58 activation rule):
/// s = 127 / max(max|x|, 1e-5), q = clamp(round_half_even(x * s), -128, 127). Writes `scales[t] = s`.
void ob_quantize_rows(const float *x, size_t tokens, size_t width, int8_t *q, float *scales);

/// RMSNorm then per-token quantization, fused: y = x / sqrt(mean(x^2) + eps) * weight, then as ob_quantize_rows.
void ob_rms_norm_quantize_rows(const float *x, const float *weight, float eps, size_t tokens, size_t width,
                               int8_t *q, float *scales);

/// RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight, row by row. `y` may equal `x`.
void ob_rms_norm_rows(const float *x, const float *weight, float eps, size_t tokens, size_t width, float *y);

/// Exact integer products of ternary rows [row_begin, row_end) with int8 tokens:
/// acc[t * rows_total + r] = sum_c w[r][c] * q[t][c], for the canonical ternary layout.
/// The scalar reference every optimised kernel is tested against.
void ob_ternary_dot_reference(const uint8_t *codes, size_t cols, size_t row_begin, size_t row_end,
                              size_t rows_total, const int8_t *q, size_t tokens, int32_t *acc);

/// The ternary matrix product of the numerics contract for rows [row_begin, row_end):
/// y[t][r] = acc / s_t * w_scale, with one weight scale per tensor (`block_size` 0, `w_scales[0]`) or one per
/// `block_size` columns of each row (`w_scales[r * (cols / block_size) + b]`).
void ob_ternary_matmul_reference(const uint8_t *codes, size_t cols, size_t row_begin, size_t row_end,
                                 size_t rows_total, const float *w_scales, size_t block_size, const int8_t *q,
                                 const float *act_scales, size_t tokens, float *y);

/// Rotary position embedding, NeoX / rotate-half pairing (element i pairs with i + head_dim / 2), in place on
/// `heads` heads of `head_dim` for each token; `positions[t]` is the position of token t.
void ob_rope_neox(float *x, size_t tokens, size_t heads, size_t head_dim, const int32_t *positions, float theta);

/// Causal attention of `tokens` query rows against a key/value cache that holds positions [0, positions[t]]
/// for token t. q: [tokens][heads * head_dim]; k_cache, v_cache: [capacity][kv_heads * head_dim];
/// out: [tokens][heads * head_dim]. Query head h reads KV head h / (heads / kv_heads). `scores` is scratch of at
/// least (max position + 1) floats.
void ob_attention(const float *q, const float *k_cache, const float *v_cache, size_t tokens, size_t heads,
                  size_t kv_heads, size_t head_dim, const int32_t *positions, float scale, float *scores,
                  float *out);

/// ob_attention over a paged cache: position p's row of kv_heads * head_dim floats starts at
/// block_table[p / block_positions] * block_stride + (p % block_positions) * kv_heads * head_dim.
void ob_attention_paged(const float *q, const float *k_cache, const float *v_cache, const int32_t *block_table,
                        size_t block_positions, size_t block_stride, size_t tokens, size_t heads, size_t kv_heads,
                        size_t head_dim, const int32_t *positions, float scale, float *scores, float *out);

/// gate <- relu(gate)^2 * up (BitNet b1.58) over n elements.
void ob_relu2_mul(float *gate, const float *up, size_t n);

/// gate <- silu(gate) * up over n elements.
void ob_silu_mul(float *gate, const float *up, size_t n);

/// y[r] = dot(x, row r) for a bf16 row-major matrix, rows [row_begin, row_end).
void ob_dense_gemv_bf16(const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                        float *y);

/// y[r] = dot(x, row r) for an fp16 row-major matrix, rows [row_begin, row_end).
void ob_dense_gemv_f16(const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                       float *y);

/// y[r] = dot(x, row r) for an fp32 row-major matrix, rows [row_begin, row_end).
void ob_dense_gemv_f32(const float *w, size_t cols, size_t row_begin, size_t row_end, const float *x, float *y);

// ---- Optimised kernels (ternary.c, dense.c, attention.c) ----------------------------------------------------
//
// Each takes the instruction set to run as its first argument, so one binary serves every x86-64 CPU and tests can
// compare every variant the machine supports against the scalar reference.

/// Instruction sets the optimised kernels have variants for.
enum {
    /// Portable C.
    OB_ISA_SCALAR = 0,
    /// AVX2 + FMA (vpmaddubsw for the ternary products).
    OB_ISA_AVX2 = 1,
    /// AVX-512 F/BW + VNNI (vpdpbusd).
    OB_ISA_AVX512_VNNI = 2,
};

/// Whether this CPU can run `isa`.
int ob_isa_supported(int isa);

/// The fastest instruction set this CPU supports.
int ob_isa_best(void);

/// Bytes of one row of `cols` columns in the packed ternary layout (ternary.c names it): ceil(cols / 256) * 64.
size_t ob_packed_row_bytes(size_t cols);

/// Repacks `rows` canonical ternary rows into the packed layout; `packed` holds rows * ob_packed_row_bytes(cols).
void ob_ternary_pack(const uint8_t *codes, size_t rows, size_t cols, uint8_t *packed);

/// ob_ternary_dot_reference over the packed layout: exact integer products of rows [row_begin, row_end).
void ob_ternary_dot_packed(int isa, const uint8_t *packed, size_t cols, size_t row_begin, size_t row_end,
                           size_t rows_total, const int8_t *q, size_t tokens, int32_t *acc);

/// ob_ternary_matmul_reference over the packed layout, with bit-identical results. `block_size` is 0 (one
/// scale per tensor) or a multiple of 256. Each group of rows is multiplied with up to four tokens at once, so
/// every weight block loaded serves several tokens of a prompt.
void ob_ternary_matmul_packed(int isa, const uint8_t *packed, size_t cols, size_t row_begin, size_t row_end,
                              size_t rows_total, const float *w_scales, size_t block_size, const int8_t *q,
                              const float *act_scales, size_t tokens, float *y);

/// ob_rms_norm_quantize_rows with bit-identical results (same double sum order, exact element-wise vector steps).
void ob_rms_norm_quantize(int isa, const float *x, const float *weight, float eps, size_t tokens, size_t width,
                          int8_t *q, float *scales);

/// y[r] = dot(x, row r) for a bf16 row-major matrix, rows [row_begin, row_end). Vector variants sum in a
/// different order than ob_dense_gemv_bf16 (fp32 lanes, then a tree).
void ob_bf16_gemv(int isa, const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                  float *y);

/// ob_bf16_gemv for `batch` tokens at once: y[b * rows_total + r] = dot(x[b], row r) for x [batch][cols], rows
/// [row_begin, row_end), each row read once for all tokens. Bit-identical to ob_bf16_gemv over the same row range
/// for each token.
void ob_bf16_gemm(int isa, const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                  size_t batch, size_t rows_total, float *y);
/// Quantizes `rows` bf16 rows to int8 with one scale per row (w = q * row_scales[r], scale = max|w| / 127,
/// round-half-even) and records each row's sum of q (the vector kernel's offset correction).
void ob_int8_rows_from_bf16(const uint16_t *w, size_t rows, size_t cols, int8_t *q, float *row_scales,
                            int32_t *row_sums);

/// y[r] = dot(q_r, xq) * row_scales[r] / x_scale for int8 rows [row_begin, row_end) and one int8 token `xq`
/// quantized with scale `x_scale` (ob_quantize_rows). The integer dot product is exact in every variant.
void ob_int8_gemv(int isa, const int8_t *q, const float *row_scales, const int32_t *row_sums, size_t cols,
                  size_t row_begin, size_t row_end, const int8_t *xq, float x_scale, float *y);

/// ob_int8_gemv for `batch` tokens at once (xq [batch][cols], token b quantized with x_scales[b]): y[b * rows_total +
/// r] for rows [row_begin, row_end), each row read from memory once for all tokens. Bit-identical to ob_int8_gemv
/// for each token.
void ob_int8_gemm(int isa, const int8_t *q, const float *row_scales, const int32_t *row_sums, size_t cols,
                  size_t row_begin, size_t row_end, const int8_t *xq, const float *x_scales, size_t batch,
                  size_t rows_total, float *y);

/// ob_attention in work units threads can share (attention.c): unit u is token u / (kv_heads * splits), KV head
/// u / splits % kv_heads and the (u % splits)-th of `splits` ranges of its positions (equal shares rounded down to
/// multiples of 32 positions; a range may be empty), for every query head of that KV head's group. A thread should
/// take consecutive units: each one fetches the first rows of the next ahead of use. The caches hold position p of
/// KV head g at p * kv_row_stride + g * kv_head_stride (ob_attention's layout: kv_heads * head_dim and head_dim;
/// head-major [kv_heads][capacity][head_dim]: head_dim and capacity * head_dim). With `splits` 1 units write `out`
/// directly; otherwise they write
/// partial [tokens][heads][splits][head_dim + 2] (unnormalised output, max, sum) for ob_attention_merge. Vector
/// variants sum in a different order than the reference.
void ob_attention_units(int isa, const float *q, const float *k_cache, const float *v_cache, size_t kv_row_stride,
                        size_t kv_head_stride, size_t tokens, size_t heads, size_t kv_heads, size_t head_dim,
                        const int32_t *positions, float scale, size_t splits, size_t unit_begin, size_t unit_end,
                        float *partial, float *out);
/// ob_attention_units over a paged cache: position p of KV head g is at
/// block_table[p / block_positions] * block_stride + p % block_positions * kv_row_stride + g * kv_head_stride.
/// Bit-identical to ob_attention_units over the same rows stored contiguously (same variant, same splits).
void ob_attention_paged_units(int isa, const float *q, const float *k_cache, const float *v_cache,
                              const int32_t *block_table, size_t block_positions, size_t block_stride,
                              size_t kv_row_stride, size_t kv_head_stride, size_t tokens, size_t heads,
                              size_t kv_heads, size_t head_dim, const int32_t *positions, float scale, size_t splits,
                              size_t unit_begin, size_t unit_end, float *partial, float *out);
/// Writes `tokens` rows of `width` keys and values to their positions of a paged cache whose rows are `width`
/// floats apart (ob_attention_paged_units' layout with kv_row_stride = width).
void ob_kv_store_paged(const float *keys, const float *values, size_t tokens, size_t width, const int32_t *positions,
                       const int32_t *block_table, size_t block_positions, size_t block_stride, float *k_cache,
                       float *v_cache);
/// Combines the `splits` partial results of every head of ob_attention_units into out [tokens][heads * head_dim].
void ob_attention_merge(size_t tokens, size_t heads, size_t head_dim, size_t splits, const float *partial,
                        float *out);
/// Physical cores this process may run on (distinct cores in its affinity mask), at least 1.
int ob_physical_core_count(void);

/// Reads `count` words and folds them into one value: the inner loop of a memory read-bandwidth probe.
uint64_t ob_read_words(const uint64_t *p, size_t count);

/// A pause for spin-wait loops (tells the core a thread is spinning).
static inline void ob_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

#ifdef __cplusplus
}
#endif

#endif
