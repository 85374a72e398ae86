#ifndef OLLIE_BLAS_H
#define OLLIE_BLAS_H

#include "ollie_kernels.h"

/* OpenBLAS, loaded at run time with dlopen.
 *
 * Why not link it: Debian's OpenBLAS is built with DYNAMIC_ARCH and picks its kernels in a
 * library constructor from OPENBLAS_CORETYPE. Loading it ourselves lets ollie choose the core
 * type (AVX-512 "SkylakeX" kernels where the CPU has them) before that constructor runs,
 * instead of inheriting whatever the shell exported. */

/* Loads libopenblas once. `coretype` may be NULL (keep the environment's choice) or an
 * OpenBLAS core name such as "SkylakeX" or "Haswell". Returns 0 on success; on failure
 * ollie_blas_error() says why. Later calls return the first call's result. */
int ollie_blas_open(const char *coretype);
const char *ollie_blas_error(void);
const char *ollie_blas_corename(void);
void ollie_blas_set_threads(int n);
int ollie_blas_get_threads(void);
/* Row-major C[M×N] = alpha·op(A)[M×K]·op(B)[K×N] + beta·C. transA/transB: 0 or 1. */
void ollie_sgemm(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

/* ollie's own kernels, through the set chosen in ollie_kernels.h; see the table's fields for
 * what each takes. skinny_sgemm and the conv GEMMs return 0, or -1 when they cannot run
 * (out of memory, a width or N/K the set does not take): callers check. */
int ollie_skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                       const float *bias, int relu);
int ollie_sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc);
int ollie_conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                    const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu);
int ollie_conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                           const int *segments, int width, float *C, int ldc);

/* winograd.c: the weights of a 3×3×3 convolution, w [OC, C, 3, 3, 3], as the set's winograd3
 * reads them: u [64][C][ollie_winograd3_rows(OC)] (G·g·Gᵀ along each axis; rows past OC zero).
 * The same in every set. */
int ollie_winograd3_rows(int oc);
void ollie_winograd3_weights(const float *w, int oc, int c, float *u);
/* dw [OC, C, 3, 3, 3] += the weight gradient that du [64][OC][C] holds in Winograd's domain
 * (Gᵀ·du·G along each axis, the adjoint of ollie_winograd3_weights). The same in every set. */
void ollie_winograd3_weight_gradient_add(const float *du, int oc, int c, float *dw);
/* The set's winograd3 and winograd3_weight_gradient (see ollie_kernels.h); -1 where the set
 * has none. */
int ollie_winograd3(int c, int oc, int n, int first, int count, int d, int h, int w, const float *padded,
                    const float *u, const float *bias, int relu, float *y, int ldy);
int ollie_winograd3_weight_gradient(int c, int oc, int n, int first, int count, int d, int h, int w,
                                    const float *padded, const float *dy, int ldy, float *du);

/* im2col.c: a convolution's im2col and col2im for the images first..<first+count (stride 1,
 * kh×kw kernel, output OH×OW).
 * im2col reads a zero-bordered input padded [C, N, Hp, Wp]:
 *   cols[(c·kh + ky)·kw + kx, ((b − first)·OH + y)·OW + x] = padded[c, b, y + ky, x + kx]
 * and may write up to 7 floats past each row (keep 16 floats of slack after cols, and after
 * padded, which it may read as far).
 * col2im is its adjoint, into the unpadded gradient dx [C, N, H, W] (padding `pad`): it
 * writes (not adds) dx's rows for those images. */
void ollie_im2col(const float *padded, float *cols, int c, int n, int first, int count,
                  int hp, int wp, int kh, int kw, int oh, int ow);
void ollie_col2im(const float *cols, float *dx, int c, int n, int first, int count,
                  int h, int w, int pad, int kh, int kw, int oh, int ow);
/* im2col in 3-D, for the output frames z0..<z0+zn of the images first..<first+count, from a
 * zero-bordered padded [C, N, Dp, Hp, Wp] (kernel kd×kh×kw, stride 1):
 *   cols[((c·kd + kz)·kh + ky)·kw + kx, (((b − first)·zn + z − z0)·OH + y)·OW + x] = padded[c, b, z + kz, y + ky, x + kx]
 * with the same slack rules; ollie_im2col is its one-frame case. */
void ollie_im2col3d(const float *padded, float *cols, int c, int n, int first, int count, int z0, int zn,
                    int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow);
/* masked[i] = dy[i] where y[i] > 0, else 0 (a ReLU's derivative), returning Σ masked; dy is
 * only read. */
float ollie_relu_mask_sum(const float *dy, const float *y, float *masked, int count);
/* 2×2 max pooling, stride 2, of one [H, W] plane into y [H/2, W/2] and winners (each output's
 * input offset in the plane, the first in row-major order on ties). Returns 0. */
int ollie_maxpool2(const float *x, float *y, int *winners, int h, int w);
/* Max pooling of one [D, H, W] volume, window kd×2×2 and the same stride, into y [D/kd, H/2, W/2]
 * and winners (offsets in the volume, the first in (z, y, x) order on ties); frame_y and
 * frame_winners hold one pooled frame. Returns 0. */
int ollie_maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                         float *frame_y, int *frame_winners);
/* The backward of a max pool (fused with the convolution before it, or not) whose windows do
 * not overlap (2×2, or k×2×2 over a volume), one pooled plane or volume (count outputs): each
 * output's gradient g = dy[i] (0 where `masked` and not y[i] > 0: the ReLU's derivative, y the
 * pooled output) goes to its winner, dx[winners[i]] = g, in a zeroed input plane or volume;
 * returns Σ g, summed as four partial sums (i mod 4) added in order, then the last count mod 4
 * (every set alike: same bits). */
float ollie_maxpool2_route(const float *dy, const float *y, const int *winners, int count, int masked, float *dx);
/* y[r·stride + i] += bias[r] for i < columns, r < rows; then y = (y ≤ 0 ? 0 : y) when relu
 * (NaN kept). Same bits in every set. */
void ollie_bias_relu(float *y, const float *bias, int rows, int columns, int stride, int relu);
/* One Adam or AdamW step of `count` weights w with gradient g and moments m, v (updated in
 * place), element by element as NN/Optimizers/Adam.swift wrote it: no fused multiply-adds, so
 * every set gives the same bits. */
void ollie_adam_step(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam);
#endif
