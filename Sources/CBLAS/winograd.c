/* A 3×3×3 convolution, stride 1, padding 1, by Winograd's minimal filtering F(2×2×2, 3×3×3)
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2×2
 * block of outputs ("tile") comes from a 4×4×4 block of input through 64 products per channel
 * pair in place of 216, 3.4× fewer multiply-adds than the direct convolution:
 *
 *   Y = Aᵀ·[ Σ_c (G·g_c·Gᵀ) ⊙ (Bᵀ·d_c·B) ]·A   along each of the three axes,
 *
 *   Bᵀ = | 1  0 −1  0 |    G = |  1    0    0  |    Aᵀ = | 1  1  1  0 |
 *        | 0  1  1  0 |        | 1/2  1/2  1/2 |         | 0  1 −1 −1 |
 *        | 0 −1  1  0 |        | 1/2 −1/2  1/2 |
 *        | 0  1  0 −1 |        |  0    0    1  |
 *
 * The sum over channels is, for each of the 64 points, a GEMM [OC × C]·[C × tiles]. The weight
 * gradient runs the same way back: per point dU = Σ over tiles of (A·dy·Aᵀ)·(Bᵀ·d·B)ᵀ, a GEMM
 * along the tiles, and dW = Gᵀ·dU·G. Results
 * differ from the direct convolution's by rounding (the transforms add and subtract inputs
 * before multiplying); kernel-test bounds the difference. */
#include "kernels_internal.h"
#include "ollie_blas.h"
#include <stdlib.h>
#include <string.h>

int ollie_winograd3_rows(int oc) { return (oc + 7) & ~7; }

void ollie_winograd3_weights(const float *w, int oc, int c, float *u) {
    int rows = ollie_winograd3_rows(oc);
    memset(u, 0, sizeof(float) * 64 * (size_t)c * rows);
    for (int o = 0; o < oc; o++)
        for (int ch = 0; ch < c; ch++) {
            const float *g = w + ((size_t)o * c + ch) * 27;
            float a[4][3][3], b[4][4][3];
            /* G along z, then y, then x: 27 → 36 → 48 → 64. */
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) {
                    float g0 = g[y * 3 + x], g1 = g[9 + y * 3 + x], g2 = g[18 + y * 3 + x];
                    a[0][y][x] = g0;
                    a[1][y][x] = 0.5f * (g0 + g1 + g2);
                    a[2][y][x] = 0.5f * (g0 - g1 + g2);
                    a[3][y][x] = g2;
                }
            for (int z = 0; z < 4; z++)
                for (int x = 0; x < 3; x++) {
                    float g0 = a[z][0][x], g1 = a[z][1][x], g2 = a[z][2][x];
                    b[z][0][x] = g0;
                    b[z][1][x] = 0.5f * (g0 + g1 + g2);
                    b[z][2][x] = 0.5f * (g0 - g1 + g2);
                    b[z][3][x] = g2;
                }
            for (int z = 0; z < 4; z++)
                for (int y = 0; y < 4; y++) {
                    float g0 = b[z][y][0], g1 = b[z][y][1], g2 = b[z][y][2];
                    float v[4] = {g0, 0.5f * (g0 + g1 + g2), 0.5f * (g0 - g1 + g2), g2};
                    for (int x = 0; x < 4; x++) u[((size_t)((z * 4 + y) * 4 + x) * c + ch) * rows + o] = v[x];
                }
        }
}

void ollie_winograd3_weight_gradient_add(const float *du, int oc, int c, float *dw) {
    /* Gᵀ along x, then y, then z: 64 → 48 → 36 → 27 (the adjoint of ollie_winograd3_weights). */
    for (int o = 0; o < oc; o++)
        for (int ch = 0; ch < c; ch++) {
            float a[4][4][3], b[4][3][3];
            for (int z = 0; z < 4; z++)
                for (int y = 0; y < 4; y++) {
                    const float *u = du + ((size_t)((z * 4 + y) * 4) * oc + o) * c + ch;
                    size_t step = (size_t)oc * c;
                    float u0 = u[0], u1 = u[step], u2 = u[2 * step], u3 = u[3 * step];
                    a[z][y][0] = u0 + 0.5f * (u1 + u2);
                    a[z][y][1] = 0.5f * (u1 - u2);
                    a[z][y][2] = 0.5f * (u1 + u2) + u3;
                }
            for (int z = 0; z < 4; z++)
                for (int x = 0; x < 3; x++) {
                    float u0 = a[z][0][x], u1 = a[z][1][x], u2 = a[z][2][x], u3 = a[z][3][x];
                    b[z][0][x] = u0 + 0.5f * (u1 + u2);
                    b[z][1][x] = 0.5f * (u1 - u2);
                    b[z][2][x] = 0.5f * (u1 + u2) + u3;
                }
            float *g = dw + ((size_t)o * c + ch) * 27;
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) {
                    float u0 = b[0][y][x], u1 = b[1][y][x], u2 = b[2][y][x], u3 = b[3][y][x];
                    g[y * 3 + x] += u0 + 0.5f * (u1 + u2);
                    g[9 + y * 3 + x] += 0.5f * (u1 - u2);
                    g[18 + y * 3 + x] += 0.5f * (u1 + u2) + u3;
                }
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

/* Tiles are taken 8 along x at a time (one ymm lane each) and in blocks of up to 64: whole tile
 * rows of one tile frame. V (the transformed input, [64][C][tiles]) and M (the products, [64][8]
 * [tiles] for 8 output channels) are kept per thread; each point's rows are padded by 16 floats
 * so that the 64 points do not fall on the same L1 sets (a 4 KB stride made the transforms 5×
 * slower). */
enum { MAX_TILES = 64, POINT_PAD = 16 };

static __thread float *scratch;
static __thread size_t scratch_floats;

static float *scratch_for(size_t floats) {
    if (floats > scratch_floats) {
        free(scratch);
        scratch = aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64);
        scratch_floats = scratch ? floats : 0;
    }
    return scratch;
}

/* A 16-float vector's even floats (0, 2, …) and odd floats, as permuted by even_odd. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void halves(__m512 v, __m256 *even, __m256 *odd) {
    *even = _mm512_castps512_ps256(v);
    *odd = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/* Bᵀ·d along x for 8 tiles, from 16 floats split even | odd (halves) at the tiles' first
 * column (from0) and at their third (from2). */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void input_row(__m512 from0, __m512 from2, __m256 out[4]) {
    __m256 e0, o0, e2, o2;
    halves(from0, &e0, &o0);
    halves(from2, &e2, &o2);
    out[0] = _mm256_sub_ps(e0, e2);
    out[1] = _mm256_add_ps(o0, e2);
    out[2] = _mm256_sub_ps(e2, o0);
    out[3] = _mm256_sub_ps(o0, o2);
}

/* For one 18-float stretch of an input row, 8 tiles: lane j reads row[2j…2j+3]. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void row_transform(const float *row, __m256 out[4]) {
    const __m512i even_odd = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    input_row(_mm512_permutexvar_ps(even_odd, _mm512_loadu_ps(row)), _mm512_permutexvar_ps(even_odd, _mm512_loadu_ps(row + 2)),
              out);
}

/* The same for two rows 8 floats wide (10 with the border), 4 tiles each: lanes 0–3 from
 * `row`, 4–7 from `next`. Masked loads: nothing past the 10 floats is read. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void row_pair_transform(const float *row, const float *next, __m256 out[4]) {
    const __m512i even_odd = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 1, 3, 5, 7, 17, 19, 21, 23);
    input_row(_mm512_permutex2var_ps(_mm512_maskz_loadu_ps(0xFF, row), even_odd, _mm512_maskz_loadu_ps(0xFF, next)),
              _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(0xFF, row + 2), even_odd, _mm512_maskz_loadu_ps(0xFF, next + 2)),
              out);
}

/* Bᵀ·d·B of the 8 tiles starting at tile row th, column x0 / 2 of tile frame td in one
 * channel's zero-bordered volume: point p's 8 values at out + p·point_stride. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void input_tiles(const float *volume, int hp, int wp, int w, int td, int th, int x0, float *out,
                               size_t point_stride) {
    __m256 t[4][4][4];   /* [z][y][x point] */
    for (int z = 0; z < 4; z++)
        for (int y = 0; y < 4; y++) {
            const float *row = volume + ((size_t)(2 * td + z) * hp + 2 * th + y) * wp + x0;
            if (w == 8) row_pair_transform(row, row + 2 * wp, t[z][y]);
            else row_transform(row, t[z][y]);
        }
    __m256 s[4][4][4];   /* [z][y point][x point] */
    for (int z = 0; z < 4; z++)
        for (int i = 0; i < 4; i++) {
            s[z][0][i] = _mm256_sub_ps(t[z][0][i], t[z][2][i]);
            s[z][1][i] = _mm256_add_ps(t[z][1][i], t[z][2][i]);
            s[z][2][i] = _mm256_sub_ps(t[z][2][i], t[z][1][i]);
            s[z][3][i] = _mm256_sub_ps(t[z][1][i], t[z][3][i]);
        }
    for (int j = 0; j < 16; j++) {
        __m256 z0 = s[0][j / 4][j % 4], z1 = s[1][j / 4][j % 4], z2 = s[2][j / 4][j % 4], z3 = s[3][j / 4][j % 4];
        _mm256_storeu_ps(out + (size_t)j * point_stride, _mm256_sub_ps(z0, z2));
        _mm256_storeu_ps(out + (size_t)(16 + j) * point_stride, _mm256_add_ps(z1, z2));
        _mm256_storeu_ps(out + (size_t)(32 + j) * point_stride, _mm256_sub_ps(z2, z1));
        _mm256_storeu_ps(out + (size_t)(48 + j) * point_stride, _mm256_sub_ps(z1, z3));
    }
}

/* V[p][c][t] for the block's tiles: tile rows th0…th0+rows−1 of tile frame td of sample b
 * (8 wide: two tile rows a step). */
__attribute__((target("avx512f,avx512vl")))
static void transform_input(const float *padded, int c, int n, int b, int d, int h, int w, int td, int th0, int rows,
                            float *v, size_t point_stride, int tiles) {
    int hp = h + 2, wp = w + 2;
    for (int ch = 0; ch < c; ch++) {
        const float *volume = padded + ((size_t)ch * n + b) * (d + 2) * hp * wp;
        for (int th = th0; th < th0 + rows; th += w == 8 ? 2 : 1)
            for (int x0 = 0; x0 < w; x0 += 16)
                input_tiles(volume, hp, wp, w, td, th, x0, v + (size_t)ch * tiles + (th - th0) * (w / 2) + x0 / 2, point_stride);
    }
}

/* M[p][r][t] = Σ_ch U[p][ch][o0 + r]·V[p][ch][t] for r < 8: per point, 8 rows × 32 tiles a step. */
__attribute__((target("avx512f")))
static void multiply(const float *u, int c, int rows_u, int o0, const float *v, size_t v_stride, int tiles,
                     float *m, size_t m_stride) {
    for (int p = 0; p < 64; p++) {
        const float *up = u + (size_t)p * c * rows_u + o0, *vp = v + (size_t)p * v_stride;
        float *mp = m + (size_t)p * m_stride;
        for (int t0 = 0; t0 < tiles; t0 += 32) {
            int left = tiles - t0;
            __mmask16 mask0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
            __mmask16 mask1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
            __m512 acc[8][2];
            for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
            for (int k = 0; k < c; k++) {
                const float *row = vp + (size_t)k * tiles + t0, *a = up + (size_t)k * rows_u;
                __m512 b0 = _mm512_maskz_loadu_ps(mask0, row), b1 = _mm512_maskz_loadu_ps(mask1, row + 16);
                for (int r = 0; r < 8; r++) {
                    __m512 x = _mm512_set1_ps(a[r]);
                    acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
                }
            }
            for (int r = 0; r < 8; r++) {
                _mm512_mask_storeu_ps(mp + (size_t)r * tiles + t0, mask0, acc[r][0]);
                _mm512_mask_storeu_ps(mp + (size_t)r * tiles + t0 + 16, mask1, acc[r][1]);
            }
        }
    }
}

/* y (output channels o0…o0+count−1) from M: Aᵀ·m·A along z, y and x, then bias and ReLU. */
__attribute__((target("avx512f,avx512vl")))
static void transform_output(const float *m, size_t m_stride, int tiles, int o0, int count, const float *bias, int relu,
                             int d, int h, int w, int b, int td, int th0, int rows, float *y, int ldy) {
    const __m512i interleave = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    for (int r = 0; r < count; r++) {
        __m512 vb = _mm512_set1_ps(bias ? bias[o0 + r] : 0.0f);
        float *out = y + (size_t)(o0 + r) * ldy + (size_t)b * d * h * w;
        for (int th = th0; th < th0 + rows; th += w == 8 ? 2 : 1)
            for (int x0 = 0; x0 < w; x0 += 16) {
                const float *mp = m + (size_t)r * tiles + (th - th0) * (w / 2) + x0 / 2;
                __m256 a[2][4][4];   /* [z out][y point][x point] */
                for (int j = 0; j < 16; j++) {
                    __m256 m0 = _mm256_loadu_ps(mp + (size_t)j * m_stride), m1 = _mm256_loadu_ps(mp + (size_t)(16 + j) * m_stride);
                    __m256 m2 = _mm256_loadu_ps(mp + (size_t)(32 + j) * m_stride), m3 = _mm256_loadu_ps(mp + (size_t)(48 + j) * m_stride);
                    a[0][j / 4][j % 4] = _mm256_add_ps(m0, _mm256_add_ps(m1, m2));
                    a[1][j / 4][j % 4] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
                }
                for (int oz = 0; oz < 2; oz++) {
                    __m256 s[2][4];   /* [y out][x point] */
                    for (int i = 0; i < 4; i++) {
                        s[0][i] = _mm256_add_ps(a[oz][0][i], _mm256_add_ps(a[oz][1][i], a[oz][2][i]));
                        s[1][i] = _mm256_sub_ps(_mm256_sub_ps(a[oz][1][i], a[oz][2][i]), a[oz][3][i]);
                    }
                    for (int oy = 0; oy < 2; oy++) {
                        __m256 x0v = _mm256_add_ps(s[oy][0], _mm256_add_ps(s[oy][1], s[oy][2]));
                        __m256 x1v = _mm256_sub_ps(_mm256_sub_ps(s[oy][1], s[oy][2]), s[oy][3]);
                        __m512 row = _mm512_permutex2var_ps(_mm512_castps256_ps512(x0v), interleave, _mm512_castps256_ps512(x1v));
                        row = _mm512_add_ps(row, vb);
                        if (relu) row = _mm512_max_ps(row, _mm512_setzero_ps());
                        float *at = out + ((size_t)(2 * td + oz) * h + 2 * th + oy) * w + x0;
                        if (w == 8) {   /* the second tile row's 8 floats two rows down */
                            _mm256_storeu_ps(at, _mm512_castps512_ps256(row));
                            _mm256_storeu_ps(at + 2 * w, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(row), 1)));
                        } else {
                            _mm512_storeu_ps(at, row);
                        }
                    }
                }
            }
    }
}

/* A·g·Aᵀ of the 8 tiles starting at tile row th, column x0 / 2 of tile frame td in one
 * channel's output gradient (an unbordered [D, H, W] volume), each tile's 2×2×2 gradient taken
 * back through the output transform ([g0, g0 + g1, g0 − g1, −g1] along each axis): point p's
 * 8 values at out + p·point_stride. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void gradient_tiles(const float *plane, int h, int w, int td, int th, int x0, float *out, size_t point_stride) {
    const __m512i even_odd = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m512i pair = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 1, 3, 5, 7, 17, 19, 21, 23);
    __m256 g[2][2][4];   /* [z][y][x point] */
    for (int z = 0; z < 2; z++)
        for (int y = 0; y < 2; y++) {
            const float *row = plane + ((size_t)(2 * td + z) * h + 2 * th + y) * w + x0;
            __m512 v = w == 8 ? _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(0xFF, row), pair, _mm512_maskz_loadu_ps(0xFF, row + 2 * w))
                              : _mm512_permutexvar_ps(even_odd, _mm512_loadu_ps(row));
            __m256 e, o;
            halves(v, &e, &o);
            g[z][y][0] = e;
            g[z][y][1] = _mm256_add_ps(e, o);
            g[z][y][2] = _mm256_sub_ps(e, o);
            g[z][y][3] = _mm256_sub_ps(_mm256_setzero_ps(), o);
        }
    __m256 s[2][4][4];   /* [z][y point][x point] */
    for (int z = 0; z < 2; z++)
        for (int i = 0; i < 4; i++) {
            s[z][0][i] = g[z][0][i];
            s[z][1][i] = _mm256_add_ps(g[z][0][i], g[z][1][i]);
            s[z][2][i] = _mm256_sub_ps(g[z][0][i], g[z][1][i]);
            s[z][3][i] = _mm256_sub_ps(_mm256_setzero_ps(), g[z][1][i]);
        }
    for (int j = 0; j < 16; j++) {
        __m256 z0 = s[0][j / 4][j % 4], z1 = s[1][j / 4][j % 4];
        _mm256_storeu_ps(out + (size_t)j * point_stride, z0);
        _mm256_storeu_ps(out + (size_t)(16 + j) * point_stride, _mm256_add_ps(z0, z1));
        _mm256_storeu_ps(out + (size_t)(32 + j) * point_stride, _mm256_sub_ps(z0, z1));
        _mm256_storeu_ps(out + (size_t)(48 + j) * point_stride, _mm256_sub_ps(_mm256_setzero_ps(), z1));
    }
}

/* The 8 rows of 8 floats at in (a stride of 8) as 8 columns, each stored at out + j·stride. */
__attribute__((target("avx2"), always_inline))
static inline void transpose8(const float *in, float *out, size_t stride) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + 8 * i);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + (size_t)i * stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(out + (size_t)(i + 4) * stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

/* One block's points for the weight gradient: Vt[p][t][c], tile-major (channels padded to 8),
 * for the vectors of the outer products, and M[p][o][t] (rows padded to 16, zero) for their
 * broadcasts. Each tile group's input transforms go to a small staging area, [p][8 channels]
 * [8 tiles], whose 8×8 squares are transposed into place; the gradient needs no transpose. */
__attribute__((target("avx512f,avx512vl")))
static void transform_for_weights(const float *padded, int c, const float *dy, int ldy, int oc, int n, int b, int d, int h,
                                  int w, int td, int th0, int rows, int tiles, float *vt, size_t vt_stride, int c_pad,
                                  float *m, size_t m_stride, int o_pad, float *staging) {
    int hp = h + 2, wp = w + 2;
    for (int th = th0; th < th0 + rows; th += w == 8 ? 2 : 1)
        for (int x0 = 0; x0 < w; x0 += 16) {
            int t0 = (th - th0) * (w / 2) + x0 / 2;
            for (int c0 = 0; c0 < c_pad; c0 += 8) {
                for (int ch = c0; ch < c0 + 8; ch++) {
                    if (ch < c)
                        input_tiles(padded + ((size_t)ch * n + b) * (d + 2) * hp * wp, hp, wp, w, td, th, x0, staging + (ch - c0) * 8, 64);
                    else
                        for (int p = 0; p < 64; p++) _mm256_storeu_ps(staging + p * 64 + (ch - c0) * 8, _mm256_setzero_ps());
                }
                for (int p = 0; p < 64; p++) transpose8(staging + p * 64, vt + p * vt_stride + (size_t)t0 * c_pad + c0, c_pad);
            }
        }
    /* Channel by channel, so that each line of M is written whole while in L1 (two tile groups
     * a line) and dy is read one plane at a time: tile group by channel took 2.2× as long. */
    for (int o = 0; o < oc; o++)
        for (int th = th0; th < th0 + rows; th += w == 8 ? 2 : 1)
            for (int x0 = 0; x0 < w; x0 += 16)
                gradient_tiles(dy + (size_t)o * ldy + (size_t)b * d * h * w, h, w, td, th, x0,
                               m + (size_t)o * tiles + (th - th0) * (w / 2) + x0 / 2, m_stride);
    for (int p = 0; p < 64; p++) memset(m + p * m_stride + (size_t)oc * tiles, 0, sizeof(float) * (size_t)(o_pad - oc) * tiles);
}

/* du[p][o][c] += Σ_t M[p][o][t]·Vt[p][t][c]: per point, 16 output channels × 16 channels a tile
 * of accumulators, one outer product a tile. */
__attribute__((target("avx512f")))
static void accumulate_weights(const float *vt, size_t vt_stride, int c, int c_pad, const float *m, size_t m_stride, int oc,
                               int tiles, float *du) {
    for (int p = 0; p < 64; p++) {
        const float *vp = vt + (size_t)p * vt_stride, *mp = m + (size_t)p * m_stride;
        for (int o0 = 0; o0 < oc; o0 += 16)
            for (int c0 = 0; c0 < c; c0 += 16) {
                __mmask16 lanes = c - c0 >= 16 ? 0xFFFF : (__mmask16)((1u << (c - c0)) - 1);
                __m512 acc[16];
                for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
                const float *g = mp + (size_t)o0 * tiles;
                for (int t = 0; t < tiles; t++) {
                    __m512 x = _mm512_maskz_loadu_ps(lanes, vp + (size_t)t * c_pad + c0);
                    for (int r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(g[(size_t)r * tiles + t]), x, acc[r]);
                }
                for (int r = 0; r < 16 && o0 + r < oc; r++) {
                    float *row = du + ((size_t)p * oc + o0 + r) * c + c0;
                    _mm512_mask_storeu_ps(row, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, row), acc[r]));
                }
            }
    }
}

static int takes(int d, int h, int w) {
    return d >= 2 && d % 2 == 0 && h >= 2 && h % (w == 8 ? 4 : 2) == 0 && w >= 8 && (w % 16 == 0 || w == 8);
}

int ollie_avx512_winograd3_weight_gradient(int c, int oc, int n, int first, int count, int d, int h, int w,
                                           const float *padded, const float *dy, int ldy, float *du) {
    if (c < 1 || oc < 1 || !takes(d, h, w)) return -1;
    int tile_rows = MAX_TILES / (w / 2) < 1 ? 1 : MAX_TILES / (w / 2);
    if (tile_rows > h / 2) tile_rows = h / 2;
    int block = tile_rows * (w / 2), c_pad = (c + 7) & ~7, o_pad = (oc + 15) & ~15;
    size_t vt_stride = (size_t)block * c_pad + POINT_PAD, m_stride = (size_t)block * o_pad + POINT_PAD;
    float *vt = scratch_for(64 * (vt_stride + m_stride) + 64 * 64);
    if (!vt) return -1;
    float *m = vt + 64 * vt_stride, *staging = m + 64 * m_stride;
    for (int b = first; b < first + count; b++)
        for (int td = 0; td < d / 2; td++)
            for (int th0 = 0; th0 < h / 2; th0 += tile_rows) {
                int rows = h / 2 - th0 < tile_rows ? h / 2 - th0 : tile_rows, tiles = rows * (w / 2);
                transform_for_weights(padded, c, dy, ldy, oc, n, b, d, h, w, td, th0, rows, tiles, vt, vt_stride, c_pad, m, m_stride,
                                      o_pad, staging);
                accumulate_weights(vt, vt_stride, c, c_pad, m, m_stride, oc, tiles, du);
            }
    return 0;
}

int ollie_avx512_winograd3(int c, int oc, int n, int first, int count, int d, int h, int w, const float *padded,
                           const float *u, const float *bias, int relu, float *y, int ldy) {
    if (c < 1 || oc < 1 || !takes(d, h, w)) return -1;
    int tile_rows = MAX_TILES / (w / 2) < 1 ? 1 : MAX_TILES / (w / 2);
    if (tile_rows > h / 2) tile_rows = h / 2;
    int block = tile_rows * (w / 2), rows_u = ollie_winograd3_rows(oc);
    size_t v_stride = (size_t)c * block + POINT_PAD, m_stride = (size_t)8 * block + POINT_PAD;
    float *v = scratch_for(64 * (v_stride + m_stride));
    if (!v) return -1;
    float *m = v + 64 * v_stride;
    for (int b = first; b < first + count; b++)
        for (int td = 0; td < d / 2; td++)
            for (int th0 = 0; th0 < h / 2; th0 += tile_rows) {
                int rows = h / 2 - th0 < tile_rows ? h / 2 - th0 : tile_rows, tiles = rows * (w / 2);
                transform_input(padded, c, n, b, d, h, w, td, th0, rows, v, v_stride, tiles);
                for (int o0 = 0; o0 < oc; o0 += 8) {
                    multiply(u, c, rows_u, o0, v, v_stride, tiles, m, m_stride);
                    transform_output(m, m_stride, tiles, o0, oc - o0 < 8 ? oc - o0 : 8, bias, relu, d, h, w, b, td, th0, rows,
                                     y, ldy);
                }
            }
    return 0;
}
#endif
