#ifndef OLLIE_BLAS_H
#define OLLIE_BLAS_H

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
/* 1 when the CPU has AVX-512 (F and BW) and OLLIE_NO_AVX512 is not set. */
int ollie_cpu_has_avx512(void);

/* Row-major C[M×N] = alpha·op(A)[M×K]·op(B)[K×N] + beta·C. transA/transB: 0 or 1. */
void ollie_sgemm(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

/* C[M×N] = alpha·op(A)·B + beta·C with B row-major and not transposed, using ollie's AVX-512
 * kernel (skinny_gemm.c). Only call it when ollie_cpu_has_avx512() is true. sameA = 1 says
 * A's values have not changed since this thread's previous call: if that call packed the same
 * A (pointer and shape), the packed copy is reused. Returns 0, or -1 when it cannot run (no
 * AVX-512 build, out of memory). */
int ollie_skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, int sameA);

/* C[M×N] += A[M×K]·B[N×K]ᵀ, A and B row-major (rows along K), using ollie's AVX-512 dot-product
 * kernel (dot_gemm.c). Only call it when ollie_cpu_has_avx512() is true. Returns 0, or -1 when
 * it cannot run (no AVX-512 build). */
int ollie_sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc);

/* The same two GEMMs over an implicit im2col (a stride-1 convolution whose output rows are whole
 * multiples of `width` floats, 16 or 8): B[k][j] = src[row_offsets[k] + segments[j / width] + j % width],
 * where row_offsets[k] is tap k's offset (channel, kz, ky, kx) in a zero-bordered input and
 * segments[s] is where output columns width·s… start (sample, z, y, x) — B is never written out.
 * ollie_conv_gemm: C[M×N] = A[M×K]·B (N a multiple of 16; packs A, sameA as above), plus
 * bias[m] on row m and then max(·, 0) when relu, if bias is not NULL.
 * ollie_conv_gemm_nt_add: C[M×N] += A[M×K]·B[N×K]ᵀ with B's rows given the same way along K
 * (K a multiple of 16). Only call them when ollie_cpu_has_avx512() is true; each returns 0, or -1
 * when it cannot run. */
int ollie_conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                    const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu);
int ollie_conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                           const int *segments, int width, float *C, int ldc);

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
 * input offset in the plane, the first on ties). Returns -1 without AVX-512 (the caller has
 * its own loop), else 0. */
int ollie_maxpool2(const float *x, float *y, int *winners, int h, int w);
/* Max pooling of one [D, H, W] volume, window kd×2×2 and the same stride, into y [D/kd, H/2, W/2]
 * and winners (offsets in the volume, the first in (z, y, x) order on ties); frame_y and
 * frame_winners hold one pooled frame. Returns -1 without AVX-512, else 0. */
int ollie_maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                         float *frame_y, int *frame_winners);
/* Chooses the AVX-512 versions of these kernels (the default where the CPU has AVX-512) or the
 * portable ones. */
void ollie_conv_kernels_use_avx512(int enabled);

#endif
