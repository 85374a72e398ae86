/* What the kernel sets share (not part of the interface). */
#ifndef OLLIE_KERNELS_INTERNAL_H
#define OLLIE_KERNELS_INTERNAL_H

#include "ollie_kernels.h"
#include <stddef.h>

/* op(A) packed into panels of `mr` rows, k-major: panel[p][k][r] = op(A)(p·mr + r, k), rows
 * past M zero, in this thread's buffer (each training worker calls from its own thread). The
 * buffer remembers what it holds, so that a caller whose A has not changed (sameA) skips
 * packing the same A (pointer, shape and panel height) again; every set shares it, so a call
 * of one set never sees another's stale copy. NULL when out of memory. */
const float *ollie_packed_a(int mr, int transA, int M, int K, const float *A, int lda, int sameA);

/* One 2×2 window (output oy, ox of a [H, W] plane) as every set compares it: the left of each
 * row unless the right is strictly greater, then the top unless the bottom is strictly greater
 * (the first in row-major order on ties). The portable loop, and the vector sets' ragged ends. */
static inline void ollie_maxpool2_window(const float *x, float *y, int *winners, int w, int ow, int oy, int ox) {
    int first = 2 * oy * w + 2 * ox;
    float tl = x[first], tr = x[first + 1], bl = x[first + w], br = x[first + w + 1];
    float top = tr > tl ? tr : tl, bottom = br > bl ? br : bl;
    int topIndex = tr > tl ? first + 1 : first, bottomIndex = br > bl ? first + w + 1 : first + w;
    y[(size_t)oy * ow + ox] = bottom > top ? bottom : top;
    winners[(size_t)oy * ow + ox] = bottom > top ? bottomIndex : topIndex;
}

/* Max pooling of [D, H, W] volumes, kd×2×2 (see ollie_blas.h), over a set's 2×2 kernel: each
 * frame is pooled 2×2, and a window's later frames replace the max only when strictly greater. */
static inline int ollie_maxpool_frames_with(int (*maxpool2)(const float *, float *, int *, int, int),
                                            const float *x, float *y, int *winners, int d, int h, int w, int kd,
                                            float *frame_y, int *frame_winners) {
    size_t frame = (size_t)h * w, pooled = (size_t)(h / 2) * (w / 2);
    for (int oz = 0; oz < d / kd; oz++) {
        float *out = y + oz * pooled;
        int *win = winners + oz * pooled;
        int first = oz * kd * (int)frame;
        maxpool2(x + (size_t)first, out, win, h, w);
        for (size_t i = 0; i < pooled; i++) win[i] += first;
        for (int dz = 1; dz < kd; dz++) {
            int offset = first + dz * (int)frame;
            maxpool2(x + (size_t)offset, frame_y, frame_winners, h, w);
            for (size_t i = 0; i < pooled; i++)
                if (frame_y[i] > out[i]) { out[i] = frame_y[i]; win[i] = frame_winners[i] + offset; }
        }
    }
    return 0;
}

/* y[r·stride + i] += bias[r], then (≤ 0 → +0) under a ReLU: the one loop of every set's
 * bias_relu, always inlined, so a set's function compiles it for its own instructions. */
static inline __attribute__((always_inline))
void ollie_bias_relu_rows(float *y, const float *bias, int rows, int columns, int stride, int relu) {
    for (int r = 0; r < rows; r++) {
        float *row = y + (size_t)r * stride, b = bias[r];
        if (relu) {
            for (int i = 0; i < columns; i++) {
                float x = row[i] + b;
                row[i] = x <= 0 ? 0 : x;
            }
        } else {
            for (int i = 0; i < columns; i++) row[i] += b;
        }
    }
}

/* im2col runs as 3-D: a 2-D convolution is one frame (dp = kd = 1, z0 = 0, zn = 1). */

/* The address of padded[ch, b, 0, 0, 0] in a [C, N, Dp, Hp, Wp] buffer. */
#define VOLUME(base, ch, b) ((base) + ((size_t)(ch) * n + (b)) * dp * hp * wp)

/* Copies one row of `width` floats; the vector versions may write up to 7 floats more. */
typedef void copy_row_fn(float *dst, const float *src, int width);

/* The loops of im2col around a row copy. Always inlined into each set's version with its
 * own copy, which is inlined in turn (the call through `copy_row` is resolved at compile time). */
static inline __attribute__((always_inline))
void im2col_rows(copy_row_fn *copy_row, const float *padded, float *cols, int c, int n, int first, int count,
                 int z0, int zn, int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow) {
    for (int ch = 0; ch < c; ch++)
        for (int kz = 0; kz < kd; kz++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                    for (int b = first; b < first + count; b++)
                        for (int z = z0; z < z0 + zn; z++) {
                            const float *src = VOLUME(padded, ch, b) + ((size_t)(z + kz) * hp + ky) * wp + kx;
                            for (int y = 0; y < oh; y++, src += wp, cols += ow) copy_row(cols, src, ow);
                        }
}


#if defined(__x86_64__)
/* The avx512 set's kernels (skinny_gemm.c, dot_gemm.c, im2col.c, winograd.c). */
int ollie_avx512_skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                              const float *bias, int relu);
int ollie_avx512_sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                              float *C, int ldc);
int ollie_avx512_conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                           const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu);
int ollie_avx512_conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                                  const int *segments, int width, float *C, int ldc);
void ollie_avx512_col2im(const float *cols, float *dx, int c, int n, int first, int count,
                         int h, int w, int pad, int kh, int kw, int oh, int ow);
float ollie_avx512_relu_mask_sum(const float *dy, const float *y, float *masked, int count);
int ollie_avx512_maxpool2(const float *x, float *y, int *winners, int h, int w);
int ollie_avx512_maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                                float *frame_y, int *frame_winners);
int ollie_avx512_winograd3(int c, int oc, int n, int first, int count, int d, int h, int w, const float *padded,
                           const float *u, const float *bias, int relu, float *y, int ldy);
int ollie_avx512_winograd3_weight_gradient(int c, int oc, int n, int first, int count, int d, int h, int w,
                                           const float *padded, const float *dy, int ldy, float *du);
#endif

/* portable.c's col2im, which the neon set shares (the compiler vectorizes its inner loop). */
void ollie_portable_col2im(const float *cols, float *dx, int c, int n, int first, int count,
                           int h, int w, int pad, int kh, int kw, int oh, int ow);
/* portable.c's pooled-gradient scatter, bias + ReLU and Adam step (neon's; the avx2 set's
 * ragged ends). */
float ollie_portable_maxpool2_route(const float *dy, const float *y, const int *winners, int count, int masked, float *dx);
void ollie_portable_bias_relu(float *y, const float *bias, int rows, int columns, int stride, int relu);
void ollie_portable_adam_step(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam);
#if defined(__x86_64__)
void ollie_avx2_im2col3d(const float *padded, float *cols, int c, int n, int first, int count, int z0, int zn,
                         int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow);
float ollie_avx2_maxpool2_route(const float *dy, const float *y, const int *winners, int count, int masked, float *dx);
void ollie_avx2_bias_relu(float *y, const float *bias, int rows, int columns, int stride, int relu);
void ollie_avx2_adam_step(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam);
#endif

extern const ollie_kernels ollie_kernels_portable;
#if defined(__x86_64__)
extern const ollie_kernels ollie_kernels_avx2;
extern const ollie_kernels ollie_kernels_avx512;
#endif
#if defined(__aarch64__)
extern const ollie_kernels ollie_kernels_neon;
#endif

#endif
