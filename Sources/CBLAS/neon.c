/* The neon set: arm64's Advanced SIMD, 4 float lanes (every arm64 CPU has it).
 *
 * skinny_sgemm / conv_gemm: 8 rows × 8 columns = 16 q-register accumulators; per k, two loads
 * of B and eight FMAs by lanes of A (two loads of the packed panel). Each C element is one FMA
 * chain along K, as in every set (the same bits as portable). Columns past the last whole 8
 * (no masked loads here) take the same chain one element at a time with fmaf.
 * sgemm_nt_add / conv_gemm_nt_add: 4 rows of A × 4 rows of B = 16 accumulators of 4 partial
 * sums, reduced at the end of K; the K tail is added one product at a time.
 * im2col copies rows 4 floats at a time (up to 3 past a row's end, inside the 16-float slack);
 * the 2×2 max pooling splits even and odd columns with vld2q; col2im is portable.c's.
 *
 * Verified under qemu-aarch64 by scripts/kernel-test.sh --arm64 (bit-for-bit and bound checks
 * against portable); ollie itself is not built or run on arm64 yet. */
#include "kernels_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

enum { MR = 8, NR = 8, DOT_MR = 4, DOT_NR = 4 };

/* One 8×8 tile, whole columns: B's row k at B + k·ldb or B + row_offsets[k]; the two 4-column
 * quarters at `q0` and `q0 + 4` floats into it. */
static inline void tile(int K, const float *a, const float *B, int ldb, const int *row_offsets, int q0,
                        float *C, int ldc, int rows, float alpha, float beta, const float *bias, int relu) {
    float32x4_t acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = vdupq_n_f32(0);
    for (int k = 0; k < K; k++) {
        const float *b = (row_offsets ? B + row_offsets[k] : B + (size_t)k * ldb) + q0;
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
        float32x4_t a0 = vld1q_f32(a + k * MR), a1 = vld1q_f32(a + k * MR + 4);
        acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0); acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0);
        acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1); acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1);
        acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2); acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2);
        acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3); acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3);
        acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0); acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0);
        acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1); acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1);
        acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2); acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2);
        acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3); acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3);
    }
    for (int r = 0; r < rows; r++) {
        float *c = C + (size_t)r * ldc;
        for (int h = 0; h < 2; h++) {
            float32x4_t y = vmulq_n_f32(acc[r][h], alpha);
            if (beta != 0.0f) y = vfmaq_n_f32(y, vld1q_f32(c + 4 * h), beta);
            if (bias) {
                y = vaddq_f32(y, vdupq_n_f32(bias[r]));
                /* max(y, 0) as the other sets: 0 for NaN and −0 too */
                if (relu) y = vbslq_f32(vcgtq_f32(y, vdupq_n_f32(0)), y, vdupq_n_f32(0));
            }
            vst1q_f32(c + 4 * h, y);
        }
    }
}

/* Columns past the whole tiles: the same chain per element (fmaf is one fmadd here). */
static void tail_columns(int K, const float *a, const float *B, int ldb, int rows, int n0, int cols,
                         float *C, int ldc, float alpha, float beta, const float *bias, int relu) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++) acc = fmaf(a[k * MR + r], B[(size_t)k * ldb + n0 + j], acc);
            float y = alpha * acc;
            float *c = C + (size_t)r * ldc + n0 + j;
            if (beta != 0.0f) y = fmaf(beta, *c, y);
            if (bias) {
                y += bias[r];
                if (relu) y = y > 0 ? y : 0;
            }
            *c = y;
        }
}

static int skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                        const float *bias, int relu) {
    const float *panels = ollie_packed_a(MR, transA, M, K, A, lda, sameA);
    if (!panels) return -1;
    int whole = N - N % NR;
    for (int m0 = 0; m0 < M; m0 += MR) {
        int rows = M - m0 < MR ? M - m0 : MR;
        const float *a = panels + (size_t)(m0 / MR) * K * MR;
        for (int n0 = 0; n0 < whole; n0 += NR)
            tile(K, a, B, ldb, NULL, n0, C + (size_t)m0 * ldc + n0, ldc, rows, alpha, beta, bias ? bias + m0 : NULL, relu);
        if (whole < N) tail_columns(K, a, B, ldb, rows, whole, N - whole, C + (size_t)m0 * ldc, ldc, alpha, beta,
                                    bias ? bias + m0 : NULL, relu);
    }
    return 0;
}

/* Widths: multiples of 8 (the table offers 16 and 8); N in whole 8s. */
static int conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                     const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu) {
    if (N % NR != 0 || width < 8 || width % 8 != 0) return -1;
    const float *panels = ollie_packed_a(MR, 0, M, K, A, lda, sameA);
    if (!panels) return -1;
    for (int n0 = 0; n0 < N; n0 += NR) {
        int q0 = segments[n0 / width] + n0 % width;
        for (int m0 = 0; m0 < M; m0 += MR) {
            int rows = M - m0 < MR ? M - m0 : MR;
            tile(K, panels + (size_t)(m0 / MR) * K * MR, src, 0, row_offsets, q0, C + (size_t)m0 * ldc + n0, ldc, rows,
                 1.0f, 0.0f, bias ? bias + m0 : NULL, relu);
        }
    }
    return 0;
}

/* C += A·Bᵀ in 4×4 tiles; B's row j at B + j·ldb, or src + row_offsets[j] read through segments. */
static void dot_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const int *row_offsets,
                     const int *segments, int width, float *C, int ldc) {
    int whole = K & ~3;
    for (int n0 = 0; n0 < N; n0 += DOT_NR) {
        const float *b[DOT_NR];
        for (int j = 0; j < DOT_NR; j++) {
            int row = n0 + j < N ? n0 + j : N - 1;
            b[j] = row_offsets ? B + row_offsets[row] : B + (size_t)row * ldb;
        }
        for (int m0 = 0; m0 < M; m0 += DOT_MR) {
            const float *a[DOT_MR];
            for (int i = 0; i < DOT_MR; i++) a[i] = A + (size_t)(m0 + i < M ? m0 + i : M - 1) * lda;
            float32x4_t acc[DOT_MR][DOT_NR];
            for (int i = 0; i < DOT_MR; i++)
                for (int j = 0; j < DOT_NR; j++) acc[i][j] = vdupq_n_f32(0);
            int segment = 0, within = 0;   /* k = segment·width + within: no division per step */
            for (int k = 0; k < whole; k += 4) {
                float32x4_t x[DOT_MR];
                for (int i = 0; i < DOT_MR; i++) x[i] = vld1q_f32(a[i] + k);
                int at = k;
                if (segments) {
                    at = segments[segment] + within;
                    within += 4;
                    if (within == width) { within = 0; segment++; }
                }
                for (int j = 0; j < DOT_NR; j++) {
                    float32x4_t y = vld1q_f32(b[j] + at);
                    for (int i = 0; i < DOT_MR; i++) acc[i][j] = vfmaq_f32(acc[i][j], x[i], y);
                }
            }
            for (int i = 0; i < DOT_MR && m0 + i < M; i++)
                for (int j = 0; j < DOT_NR && n0 + j < N; j++) {
                    float sum = vaddvq_f32(acc[i][j]);
                    for (int k = whole; k < K; k++) sum = fmaf(a[i][k], b[j][k], sum);   /* only without segments */
                    C[(size_t)(m0 + i) * ldc + n0 + j] += sum;
                }
        }
    }
}

static int sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (M > 0 && N > 0) dot_gemm(M, N, K, A, lda, B, ldb, NULL, NULL, 8, C, ldc);
    return 0;
}

static int conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                            const int *segments, int width, float *C, int ldc) {
    if (K % 8 != 0 || width < 8 || width % 8 != 0) return -1;
    if (M > 0 && N > 0) dot_gemm(M, N, K, A, lda, src, 0, row_offsets, segments, width, C, ldc);
    return 0;
}

static inline __attribute__((always_inline)) void copy_row_neon(float *dst, const float *src, int width) {
    for (int x = 0; x < width; x += 4) vst1q_f32(dst + x, vld1q_f32(src + x));
}

static void im2col3d(const float *padded, float *cols, int c, int n, int first, int count,
                     int z0, int zn, int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow) {
    im2col_rows(copy_row_neon, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow);
}

static float relu_mask_sum(const float *dy, const float *y, float *masked, int count) {
    float32x4_t sum = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= count; i += 4) {
        uint32x4_t keep = vcgtq_f32(vld1q_f32(y + i), vdupq_n_f32(0));
        float32x4_t g = vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(vld1q_f32(dy + i))));
        vst1q_f32(masked + i, g);
        sum = vaddq_f32(sum, g);
    }
    float total = vaddvq_f32(sum);
    for (; i < count; i++) {
        masked[i] = y[i] > 0 ? dy[i] : 0;
        total += masked[i];
    }
    return total;
}

/* 2×2 max pooling, 4 outputs per step (vld2q splits even and odd columns), compared as
 * portable.c's loop, which does the last ow mod 4. */
static int maxpool2(const float *x, float *y, int *winners, int h, int w) {
    int oh = h / 2, ow = w / 2;
    const int32_t even_lanes[4] = {0, 2, 4, 6};
    const int32x4_t even = vld1q_s32(even_lanes), down = vdupq_n_s32(w), one = vdupq_n_s32(1);
    for (int oy = 0; oy < oh; oy++) {
        const float *r0 = x + (size_t)2 * oy * w, *r1 = r0 + w;
        int ox = 0;
        for (; ox + 4 <= ow; ox += 4) {
            float32x4x2_t t = vld2q_f32(r0 + 2 * ox), b = vld2q_f32(r1 + 2 * ox);
            int32x4_t first = vaddq_s32(vdupq_n_s32(2 * oy * w + 2 * ox), even);
            uint32x4_t right = vcgtq_f32(t.val[1], t.val[0]), rightBelow = vcgtq_f32(b.val[1], b.val[0]);
            float32x4_t top = vbslq_f32(right, t.val[1], t.val[0]), bottom = vbslq_f32(rightBelow, b.val[1], b.val[0]);
            int32x4_t topIndex = vbslq_s32(right, vaddq_s32(first, one), first);
            int32x4_t belowFirst = vaddq_s32(first, down);
            int32x4_t bottomIndex = vbslq_s32(rightBelow, vaddq_s32(belowFirst, one), belowFirst);
            uint32x4_t below = vcgtq_f32(bottom, top);
            vst1q_f32(y + (size_t)oy * ow + ox, vbslq_f32(below, bottom, top));
            vst1q_s32(winners + (size_t)oy * ow + ox, vbslq_s32(below, bottomIndex, topIndex));
        }
        for (; ox < ow; ox++) ollie_maxpool2_window(x, y, winners, w, ow, oy, ox);
    }
    return 0;
}

static int maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                          float *frame_y, int *frame_winners) {
    return ollie_maxpool_frames_with(maxpool2, x, y, winners, d, h, w, kd, frame_y, frame_winners);
}

const ollie_kernels ollie_kernels_neon = {
    .name = "neon", .fast_gemm = 1, .conv_widths = {16, 8, 0}, .conv_columns = 8,
    .skinny_sgemm = skinny_sgemm, .sgemm_nt_add = sgemm_nt_add,
    .conv_gemm = conv_gemm, .conv_gemm_nt_add = conv_gemm_nt_add,
    .im2col3d = im2col3d, .col2im = ollie_portable_col2im, .relu_mask_sum = relu_mask_sum,
    .maxpool2 = maxpool2, .maxpool_frames = maxpool_frames,
    .maxpool2_route = ollie_portable_maxpool2_route, .bias_relu = ollie_portable_bias_relu,
    .adam_step = ollie_portable_adam_step,
};
#endif
