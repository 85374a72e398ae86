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
 * The sum over channels is, for each of the 64 points, a GEMM [OC × C]·[C × tiles]. Results
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

/* Bᵀ·d·B along x for one 18-float stretch of an input row, 8 tiles: lane j reads row[2j…2j+3]. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void row_transform(const float *row, __m256 out[4]) {
    const __m512i even_odd = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m512 a = _mm512_permutexvar_ps(even_odd, _mm512_loadu_ps(row));
    __m512 b = _mm512_permutexvar_ps(even_odd, _mm512_loadu_ps(row + 2));
    __m256 e0 = _mm512_castps512_ps256(a), o0 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    __m256 e2 = _mm512_castps512_ps256(b), o2 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1));
    out[0] = _mm256_sub_ps(e0, e2);
    out[1] = _mm256_add_ps(o0, e2);
    out[2] = _mm256_sub_ps(e2, o0);
    out[3] = _mm256_sub_ps(o0, o2);
}

/* The same for two rows 8 floats wide (10 with the border), 4 tiles each: lanes 0–3 from
 * `row`, 4–7 from `next`. Masked loads: nothing past the 10 floats is read. */
__attribute__((target("avx512f,avx512vl"), always_inline))
static inline void row_pair_transform(const float *row, const float *next, __m256 out[4]) {
    const __m512i even_odd = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 1, 3, 5, 7, 17, 19, 21, 23);
    __m512 a = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(0xFF, row), even_odd, _mm512_maskz_loadu_ps(0xFF, next));
    __m512 b = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(0xFF, row + 2), even_odd, _mm512_maskz_loadu_ps(0xFF, next + 2));
    __m256 e0 = _mm512_castps512_ps256(a), o0 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    __m256 e2 = _mm512_castps512_ps256(b), o2 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1));
    out[0] = _mm256_sub_ps(e0, e2);
    out[1] = _mm256_add_ps(o0, e2);
    out[2] = _mm256_sub_ps(e2, o0);
    out[3] = _mm256_sub_ps(o0, o2);
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
            for (int x0 = 0; x0 < w; x0 += 16) {
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
                float *out = v + (size_t)ch * tiles + (th - th0) * (w / 2) + x0 / 2;
                for (int j = 0; j < 16; j++) {
                    __m256 z0 = s[0][j / 4][j % 4], z1 = s[1][j / 4][j % 4], z2 = s[2][j / 4][j % 4], z3 = s[3][j / 4][j % 4];
                    _mm256_storeu_ps(out + (size_t)j * point_stride, _mm256_sub_ps(z0, z2));
                    _mm256_storeu_ps(out + (size_t)(16 + j) * point_stride, _mm256_add_ps(z1, z2));
                    _mm256_storeu_ps(out + (size_t)(32 + j) * point_stride, _mm256_sub_ps(z2, z1));
                    _mm256_storeu_ps(out + (size_t)(48 + j) * point_stride, _mm256_sub_ps(z1, z3));
                }
            }
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

int ollie_avx512_winograd3(int c, int oc, int n, int first, int count, int d, int h, int w, const float *padded,
                           const float *u, const float *bias, int relu, float *y, int ldy) {
    if (c < 1 || oc < 1 || d < 2 || d % 2 || h < 2 || h % (w == 8 ? 4 : 2) || w < 8 || (w % 16 && w != 8)) return -1;
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
