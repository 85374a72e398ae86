/* The portable set: plain C, no intrinsics, every CPU and every shape. It is the reference the
 * other sets are tested against (scripts/kernel-test.c) and the set OLLIE_KERNELS=portable
 * runs. Its GEMMs are references, not fast (fast_gemm = 0, no conv widths: layers send their
 * GEMMs to OpenBLAS and write cols), so they are written for the same rounding as the vector
 * kernels, not for speed: each C element is one fmaf chain along K, as the vector kernels'
 * FMA lanes compute it, so skinny_sgemm and conv_gemm match them bit for bit. */
#include "kernels_internal.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

static int skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                        const float *bias, int relu) {
    (void)sameA;   /* nothing is packed */
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++)
                acc = fmaf(transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k], B[(size_t)k * ldb + j], acc);
            float y = alpha * acc;
            if (beta != 0.0f) y = fmaf(beta, C[(size_t)i * ldc + j], y);
            if (bias) {
                y += bias[i];
                if (relu) y = y > 0 ? y : 0;
            }
            C[(size_t)i * ldc + j] = y;
        }
    return 0;
}

static int sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++) acc = fmaf(A[(size_t)i * lda + k], B[(size_t)j * ldb + k], acc);
            C[(size_t)i * ldc + j] += acc;
        }
    return 0;
}

/* An implicit im2col's element: B[k][j] (see ollie_kernels.h). */
static inline float implicit(const float *src, const int *row_offsets, const int *segments, int width, int k, int j) {
    return src[row_offsets[k] + segments[j / width] + j % width];
}

static int conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                     const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu) {
    (void)sameA;
    if (width < 1) return -1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++) acc = fmaf(A[(size_t)i * lda + k], implicit(src, row_offsets, segments, width, k, j), acc);
            if (bias) {
                acc += bias[i];
                if (relu) acc = acc > 0 ? acc : 0;
            }
            C[(size_t)i * ldc + j] = acc;
        }
    return 0;
}

static int conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                            const int *segments, int width, float *C, int ldc) {
    if (width < 1) return -1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++) acc = fmaf(A[(size_t)i * lda + k], implicit(src, row_offsets, segments, width, j, k), acc);
            C[(size_t)i * ldc + j] += acc;
        }
    return 0;
}

static inline __attribute__((always_inline)) void copy_row_portable(float *dst, const float *src, int width) {
    for (int x = 0; x < width; x++) dst[x] = src[x];
}

static void im2col3d(const float *padded, float *cols, int c, int n, int first, int count,
                     int z0, int zn, int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow) {
    im2col_rows(copy_row_portable, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow);
}

/* dx[ch, b, iy, ix] = Σ over ky, kx of cols[(ch·kh + ky)·kw + kx, (b', iy + pad − ky, ix + pad − kx)]
 * where that output position exists: col2im as a gather, so each dx row is summed once and
 * written once (a scatter would read and write every row kh·kw times). The vector sets add
 * in the same order (ky, then kx), so every set gives the same bits. */
void ollie_portable_col2im(const float *cols, float *dx, int c, int n, int first, int count,
                          int h, int w, int pad, int kh, int kw, int oh, int ow) {
    size_t row_length = (size_t)count * oh * ow;
    for (int ch = 0; ch < c; ch++)
        for (int b = first; b < first + count; b++)
            for (int iy = 0; iy < h; iy++) {
                float *out = dx + (((size_t)ch * n + b) * h + iy) * w;
                for (int ix = 0; ix < w; ix++) out[ix] = 0;
                for (int ky = 0; ky < kh; ky++) {
                    int oy = iy + pad - ky;
                    if (oy < 0 || oy >= oh) continue;
                    for (int kx = 0; kx < kw; kx++) {
                        const float *src = cols + ((size_t)(ch * kh + ky) * kw + kx) * row_length
                                         + ((size_t)(b - first) * oh + oy) * ow + pad - kx;
                        int lo = kx - pad > 0 ? kx - pad : 0, hi = ow + kx - pad < w ? ow + kx - pad : w;
                        for (int ix = lo; ix < hi; ix++) out[ix] += src[ix];
                    }
                }
            }
}

static float relu_mask_sum(const float *dy, const float *y, float *masked, int count) {
    float total = 0;
    for (int i = 0; i < count; i++) {
        masked[i] = y[i] > 0 ? dy[i] : 0;
        total += masked[i];
    }
    return total;
}

/* g where y > 0, else +0: a select on the bits, not a branch (the signs are random, and a
 * mispredicted branch per element cost more than the scatter). */
static inline float kept_where_positive(float g, float y) {
    uint32_t bits;
    memcpy(&bits, &g, sizeof bits);
    bits &= -(uint32_t)(y > 0);
    memcpy(&g, &bits, sizeof g);
    return g;
}

float ollie_portable_maxpool2_route(const float *dy, const float *y, const int *winners, int count, int masked, float *dx) {
    float sums[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= count; i += 4)
        for (int j = 0; j < 4; j++) {
            float g = masked ? kept_where_positive(dy[i + j], y[i + j]) : dy[i + j];
            dx[winners[i + j]] = g;
            sums[j] += g;
        }
    float total = sums[0] + sums[1] + sums[2] + sums[3];
    for (; i < count; i++) {
        float g = masked ? kept_where_positive(dy[i], y[i]) : dy[i];
        dx[winners[i]] = g;
        total += g;
    }
    return total;
}

void ollie_portable_bias_relu(float *y, const float *bias, int rows, int columns, int stride, int relu) {
    ollie_bias_relu_rows(y, bias, rows, columns, stride, relu);
}

/* One statement per rounding, as Adam.swift rounds: a compiler may fuse a·b + c within one
 * expression (C's FP_CONTRACT), never across statements. */
void ollie_portable_adam_step(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam) {
    const float b1 = adam->beta1, b2 = adam->beta2, rest1 = 1 - b1, rest2 = 1 - b2;
    for (int i = 0; i < count; i++) {
        float wi = w[i];
        if (adam->mode == 1) wi *= adam->keep;
        float gi = g[i];
        if (adam->mode == 2) {
            float decay = adam->wd * wi;
            gi = gi + decay;
        }
        float m1 = b1 * m[i], m2 = rest1 * gi;
        float mi = m1 + m2;
        float v1 = b2 * v[i], v2 = rest2 * gi;
        v2 = v2 * gi;
        float vi = v1 + v2;
        float mhat = mi / adam->correction1, vhat = vi / adam->correction2;
        float step = adam->lr * mhat, denominator = sqrtf(vhat);
        denominator = denominator + adam->epsilon;
        step = step / denominator;
        m[i] = mi; v[i] = vi; w[i] = wi - step;
    }
}

/* Each window as the vector sets compare it (ollie_maxpool2_window). */
static int maxpool2(const float *x, float *y, int *winners, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) ollie_maxpool2_window(x, y, winners, w, ow, oy, ox);
    return 0;
}

static int maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                          float *frame_y, int *frame_winners) {
    return ollie_maxpool_frames_with(maxpool2, x, y, winners, d, h, w, kd, frame_y, frame_winners);
}

const ollie_kernels ollie_kernels_portable = {
    .name = "portable", .fast_gemm = 0, .conv_widths = {0}, .conv_columns = 1,
    .skinny_sgemm = skinny_sgemm, .sgemm_nt_add = sgemm_nt_add,
    .conv_gemm = conv_gemm, .conv_gemm_nt_add = conv_gemm_nt_add,
    .im2col3d = im2col3d, .col2im = ollie_portable_col2im, .relu_mask_sum = relu_mask_sum,
    .maxpool2 = maxpool2, .maxpool_frames = maxpool_frames,
    .maxpool2_route = ollie_portable_maxpool2_route, .bias_relu = ollie_portable_bias_relu,
    .adam_step = ollie_portable_adam_step,
};
