#ifndef OLLIE_KERNELS_H
#define OLLIE_KERNELS_H

/* ollie's own kernels, one table per instruction set, chosen once.
 *
 * Sets: "portable" (plain C, every CPU, every shape), "avx2" (AVX2 + FMA, 8 float lanes),
 * "avx512" (AVX-512 F + BW, 16 lanes), "neon" (arm64, 4 lanes) where built. The first call to
 * ollie_kernels_current() probes the CPU once and takes the best set it runs, or the one named by
 * OLLIE_KERNELS=portable|avx2|avx512|neon. Callers never know a register width: they ask the
 * table (fast_gemm, conv_widths, conv_columns) what its kernels take.
 *
 * Same set, same inputs → same bits. Between sets, results are bit-identical where the
 * summation order is the same (skinny_sgemm, conv_gemm: one FMA chain along K per element;
 * im2col, col2im, the masks and the pooling) and differ by rounding where it is not
 * (sgemm_nt_add, conv_gemm_nt_add and relu_mask_sum sum in as many partial sums as lanes;
 * winograd3 and its weight gradient, which only some sets have, transform before summing).
 * scripts/kernel-test.c checks both, for every set the machine runs. */

/* One Adam step's numbers for a parameter (NN/Optimizers/Adam.swift). mode: 0 plain Adam,
 * 1 AdamW (w ·= keep first, keep = 1 − lr·wd), 2 Adam with L2 (g + wd·w in place of g). */
typedef struct ollie_adam {
    float lr, beta1, beta2, epsilon, correction1, correction2, wd, keep;
    int mode;
} ollie_adam;

typedef struct ollie_kernels {
    const char *name;
    /* 1: skinny_sgemm and sgemm_nt_add are worth taking over OpenBLAS on the shapes
     * Tensor/BLAS.swift routes to them (portable's are references: 0). */
    int fast_gemm;
    /* The segment widths (floats) conv_gemm and conv_gemm_nt_add read an implicit im2col in,
     * largest first, 0-terminated; none: layers write cols and multiply with BLAS. */
    int conv_widths[4];
    /* conv_gemm's N and conv_gemm_nt_add's K must be multiples of this. */
    int conv_columns;

    /* C[M×N] = alpha·op(A)[M×K]·B[K×N] + beta·C, B row-major, then + bias[m] and max(·, 0)
     * when relu, if bias is not NULL (a convolution's, while the tile is in registers). sameA
     * = 1: A's values have not changed since this thread's previous call; if that call packed
     * the same A (pointer and shape), the packed copy is reused. 0, or -1 out of memory. */
    int (*skinny_sgemm)(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                        const float *bias, int relu);
    /* C[M×N] += A[M×K]·B[N×K]ᵀ, rows along K. Returns 0. */
    int (*sgemm_nt_add)(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float *C, int ldc);
    /* The two GEMMs over an implicit im2col: B[k][j] = src[row_offsets[k] + segments[j / width] + j % width]
     * (row_offsets[k]: tap k's offset in a zero-bordered input; segments[s]: where output columns
     * width·s… start). conv_gemm: C[M×N] = A[M×K]·B (packs A, sameA as above), then + bias[m]
     * and max(·, 0) when relu, if bias is not NULL. conv_gemm_nt_add: C[M×N] += A[M×K]·B[N×K]ᵀ with
     * B's rows given the same way along K. -1 for a width not in conv_widths (portable: any
     * width ≥ 1), N (K) not a multiple of conv_columns, or out of memory; else 0. */
    int (*conv_gemm)(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                     const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu);
    int (*conv_gemm_nt_add)(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                            const int *segments, int width, float *C, int ldc);
    /* See ollie_blas.h's ollie_im2col3d and ollie_col2im (slack rules included). */
    void (*im2col3d)(const float *padded, float *cols, int c, int n, int first, int count, int z0, int zn,
                     int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow);
    void (*col2im)(const float *cols, float *dx, int c, int n, int first, int count,
                   int h, int w, int pad, int kh, int kw, int oh, int ow);
    float (*relu_mask_sum)(const float *dy, const float *y, float *masked, int count);
    /* See ollie_blas.h's ollie_maxpool2 and ollie_maxpool_frames. Return 0. */
    int (*maxpool2)(const float *x, float *y, int *winners, int h, int w);
    int (*maxpool_frames)(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                          float *frame_y, int *frame_winners);
    /* See ollie_blas.h's ollie_maxpool2_route, ollie_bias_relu and ollie_adam_step. */
    float (*maxpool2_route)(const float *dy, const float *y, const int *winners, int count, int masked, float *dx);
    void (*bias_relu)(float *y, const float *bias, int rows, int columns, int stride, int relu);
    void (*adam_step)(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam);
    /* A 3×3×3 convolution, stride 1, padding 1, of samples first…first+count−1 by Winograd's
     * F(2×2×2, 3×3×3) (winograd.c), or NULL where the set has none: from a zero-bordered
     * padded [C, N, D+2, H+2, W+2] and the weights u as ollie_winograd3_weights transforms
     * them, y[o·ldy + ((b·D + z)·H + row)·W + x] = relu?(conv + bias[o]) (bias may be NULL).
     * D and H even and W a multiple of winograd3_width, or W half of it and H a multiple of 4
     * (two rows of tiles fill a vector); else -1, as when out of memory; 0. */
    int (*winograd3)(int c, int oc, int n, int first, int count, int d, int h, int w, const float *padded,
                     const float *u, const float *bias, int relu, float *y, int ldy);
    /* Its weight gradient in Winograd's domain: du[p][o][c] (64 × OC × C) += Σ over the tiles
     * of samples first…first+count−1 of (A·dy·Aᵀ)[p] times (Bᵀ·x′·B)[p], from the same x′ and
     * dy [OC, ldy] as y's layout; ollie_winograd3_weight_gradient_add takes it to dW. The same
     * shapes and -1 as winograd3. */
    int (*winograd3_weight_gradient)(int c, int oc, int n, int first, int count, int d, int h, int w,
                                     const float *padded, const float *dy, int ldy, float *du);
    int winograd3_width;
} ollie_kernels;

/* Chooses the set once (thread-safe): 0, or -1 when OLLIE_KERNELS names a set that is unknown,
 * not built here or not run by this CPU; ollie_kernels_error() then says so in one line.
 * Programs call it at start to report that line; ollie_kernels_current() calls it too, and on
 * failure prints the line to stderr and exits with status 2. */
int ollie_kernels_init(void);
const char *ollie_kernels_error(void);
/* The set in use. */
const ollie_kernels *ollie_kernels_current(void);
/* The set named `name` if this build has it and the CPU runs it, else NULL. */
const ollie_kernels *ollie_kernels_named(const char *name);
/* The names of the sets built here, best last, NULL-terminated (supported or not). */
const char *const *ollie_kernels_all_names(void);
/* FOR TESTS ONLY: switches every later kernel call of the process to set `name` (0), or
 * changes nothing when this CPU cannot run it (-1). Not meant for use while other threads
 * run kernels: they may see either set for a call. */
int ollie_kernels_use(const char *name);

#endif
