// Scalar kernels: simple, obviously right, and the reference every SIMD kernel is tested against.

#include "CKernels.h"

#include <math.h>

static inline float rms_inverse(const float *x, size_t width, float eps) {
    // Accumulated in double so the result does not depend on the order a vector unit would sum in.
    double sum = 0.0;
    for (size_t i = 0; i < width; i++) sum += (double)x[i] * (double)x[i];
    return 1.0f / sqrtf((float)(sum / (double)width) + eps);
}

static inline void quantize_row(const float *x, size_t width, int8_t *q, float *scale) {
    float max = 0.0f;
    for (size_t i = 0; i < width; i++) max = fmaxf(max, fabsf(x[i]));
    float s = 127.0f / fmaxf(max, 1e-5f);
    for (size_t i = 0; i < width; i++) {
        float v = rintf(x[i] * s); // the default rounding mode is round-half-even
        q[i] = (int8_t)fminf(127.0f, fmaxf(-128.0f, v));
    }
    *scale = s;
}

void ob_quantize_rows(const float *x, size_t tokens, size_t width, int8_t *q, float *scales) {
    for (size_t t = 0; t < tokens; t++) quantize_row(x + t * width, width, q + t * width, scales + t);
}

void ob_rms_norm_rows(const float *x, const float *weight, float eps, size_t tokens, size_t width, float *y) {
    for (size_t t = 0; t < tokens; t++) {
        const float *row = x + t * width;
        float inv = rms_inverse(row, width, eps);
        for (size_t i = 0; i < width; i++) y[t * width + i] = weight[i] * (row[i] * inv);
    }
}

void ob_rms_norm_quantize_rows(const float *x, const float *weight, float eps, size_t tokens, size_t width,
                               int8_t *q, float *scales) {
    float normed[width > 0 ? width : 1];
    for (size_t t = 0; t < tokens; t++) {
        ob_rms_norm_rows(x + t * width, weight, eps, 1, width, normed);
        quantize_row(normed, width, q + t * width, scales + t);
    }
}

void ob_ternary_dot_reference(const uint8_t *codes, size_t cols, size_t row_begin, size_t row_end,
                              size_t rows_total, const int8_t *q, size_t tokens, int32_t *acc) {
    size_t bytes_per_row = cols / 4;
    for (size_t t = 0; t < tokens; t++) {
        const int8_t *a = q + t * cols;
        for (size_t r = row_begin; r < row_end; r++) {
            const uint8_t *row = codes + r * bytes_per_row;
            int32_t sum = 0;
            for (size_t c = 0; c < cols; c++) {
                int w = (int)((row[c >> 2] >> ((c & 3) * 2)) & 3) - 1;
                sum += w * a[c];
            }
            acc[t * rows_total + r] = sum;
        }
    }
}

void ob_ternary_matmul_reference(const uint8_t *codes, size_t cols, size_t row_begin, size_t row_end,
                                 size_t rows_total, const float *w_scales, size_t block_size, const int8_t *q,
                                 const float *act_scales, size_t tokens, float *y) {
    size_t bytes_per_row = cols / 4;
    size_t blocks = block_size ? cols / block_size : 1;
    for (size_t t = 0; t < tokens; t++) {
        const int8_t *a = q + t * cols;
        for (size_t r = row_begin; r < row_end; r++) {
            const uint8_t *row = codes + r * bytes_per_row;
            if (block_size == 0) {
                int32_t sum = 0;
                for (size_t c = 0; c < cols; c++) sum += ((int)((row[c >> 2] >> ((c & 3) * 2)) & 3) - 1) * a[c];
                y[t * rows_total + r] = (float)sum / act_scales[t] * w_scales[0];
            } else {
                float total = 0.0f;
                for (size_t b = 0; b < blocks; b++) {
                    int32_t sum = 0;
                    for (size_t c = b * block_size; c < (b + 1) * block_size; c++)
                        sum += ((int)((row[c >> 2] >> ((c & 3) * 2)) & 3) - 1) * a[c];
                    total += (float)sum * w_scales[r * blocks + b];
                }
                y[t * rows_total + r] = total / act_scales[t];
            }
        }
    }
}

void ob_rope_neox(float *x, size_t tokens, size_t heads, size_t head_dim, const int32_t *positions, float theta) {
    size_t half = head_dim / 2;
    for (size_t t = 0; t < tokens; t++) {
        float pos = (float)positions[t];
        for (size_t i = 0; i < half; i++) {
            // Same float operations as the reference implementation: inv_freq = 1 / theta^(2i/d), angle = pos*inv.
            float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float angle = pos * inv_freq;
            float c = cosf(angle), s = sinf(angle);
            for (size_t h = 0; h < heads; h++) {
                float *v = x + t * heads * head_dim + h * head_dim;
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
}

void ob_attention(const float *q, const float *k_cache, const float *v_cache, size_t tokens, size_t heads,
                  size_t kv_heads, size_t head_dim, const int32_t *positions, float scale, float *scores,
                  float *out) {
    // One block holding every position: the paged reference reads row p at p * kv_width, in the same order.
    const int32_t only_block = 0;
    ob_attention_paged(q, k_cache, v_cache, &only_block, SIZE_MAX, 0, tokens, heads, kv_heads, head_dim, positions,
                       scale, scores, out);
}

void ob_attention_paged(const float *q, const float *k_cache, const float *v_cache, const int32_t *block_table,
                        size_t block_positions, size_t block_stride, size_t tokens, size_t heads, size_t kv_heads,
                        size_t head_dim, const int32_t *positions, float scale, float *scores, float *out) {
    size_t group = heads / kv_heads;
    size_t q_width = heads * head_dim, kv_width = kv_heads * head_dim;
    for (size_t t = 0; t < tokens; t++) {
        size_t length = (size_t)positions[t] + 1;
        for (size_t h = 0; h < heads; h++) {
            const float *qh = q + t * q_width + h * head_dim;
            size_t kvh = h / group;
            float max = -INFINITY;
            for (size_t p = 0; p < length; p++) {
                size_t row = (size_t)block_table[p / block_positions] * block_stride + p % block_positions * kv_width;
                const float *k = k_cache + row + kvh * head_dim;
                float dot = 0.0f;
                for (size_t i = 0; i < head_dim; i++) dot += qh[i] * k[i];
                scores[p] = dot * scale;
                max = fmaxf(max, scores[p]);
            }
            float sum = 0.0f;
            for (size_t p = 0; p < length; p++) {
                scores[p] = expf(scores[p] - max);
                sum += scores[p];
            }
            float *o = out + t * q_width + h * head_dim;
            for (size_t i = 0; i < head_dim; i++) o[i] = 0.0f;
            for (size_t p = 0; p < length; p++) {
                size_t row = (size_t)block_table[p / block_positions] * block_stride + p % block_positions * kv_width;
                const float *v = v_cache + row + kvh * head_dim;
                float w = scores[p] / sum;
                for (size_t i = 0; i < head_dim; i++) o[i] += w * v[i];
            }
        }
    }
}

void ob_relu2_mul(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float r = fmaxf(gate[i], 0.0f);
        gate[i] = r * r * up[i];
    }
}

void ob_silu_mul(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

void ob_dense_gemv_bf16(const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                        float *y) {
    for (size_t r = row_begin; r < row_end; r++) {
        const uint16_t *row = w + r * cols;
        float sum = 0.0f;
        for (size_t c = 0; c < cols; c++) sum += bf16_to_float(row[c]) * x[c];
        y[r] = sum;
    }
}

void ob_dense_gemv_f16(const uint16_t *w, size_t cols, size_t row_begin, size_t row_end, const float *x,
                       float *y) {
    for (size_t r = row_begin; r < row_end; r++) {
        const _Float16 *row = (const _Float16 *)(w + r * cols);
        float sum = 0.0f;
        for (size_t c = 0; c < cols; c++) sum += (float)row[c] * x[c];
        y[r] = sum;
    }
}

void ob_dense_gemv_f32(const float *w, size_t cols, size_t row_begin, size_t row_end, const float *x, float *y) {
    for (size_t r = row_begin; r < row_end; r++) {
        const float *row = w + r * cols;
        float sum = 0.0f;
        for (size_t c = 0; c < cols; c++) sum += row[c] * x[c];
        y[r] = sum;
    }
}
