/* The avx512 set's passes over memory: col2im (im2col's adjoint) on a range of images, the
 * ReLU mask of the output gradient, and the 2×2 max pooling of its output (portable.c has the
 * plain versions, avx2.c the 8-lane ones, and the im2col this set takes: its rows move in
 * whole 8-float copies either way, and avx2's straight-line copy per row width ran the
 * reference net's conv2 im2col 1.3× faster than a loop of them on Zen 4, conv3's 1.15×
 * slower: 60 µs gained of a 7 ms step, one thread).
 *
 * Rows are short (OW = 7, 14 or 28 floats in the reference model), so a plain vector loop
 * spends much of its time in scalar tails; AVX-512 masks cut col2im's and the pooling's rows
 * to size. */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* The gather of col2im_portable, 16 columns of a dx row at a time: masked loads pick the
 * shifted cols rows' valid lanes (the masks depend only on the segment and kx, so they are
 * worked out once). Stores are whole 16 floats where the spill stays inside this (c, b)
 * plane, in rows written after this one; near the plane's end they are masked. */
__attribute__((target("avx512f")))
void ollie_avx512_col2im(const float *cols, float *dx, int c, int n, int first, int count,
                          int h, int w, int pad, int kh, int kw, int oh, int ow) {
    size_t row_length = (size_t)count * oh * ow;
    int segments = (w + 15) / 16;
    __mmask16 lanes[segments][kw];
    for (int s = 0; s < segments; s++)
        for (int kx = 0; kx < kw; kx++) {
            /* Lanes j with 0 ≤ 16s + j + pad − kx < ow and 16s + j < w. */
            int x0 = 16 * s, lo = kx - pad - x0, hi = ow + kx - pad - x0;
            if (lo < 0) lo = 0;
            if (hi > 16) hi = 16;
            if (hi > w - x0) hi = w - x0;
            lanes[s][kx] = lo < hi ? (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
        }
    for (int ch = 0; ch < c; ch++)
        for (int b = first; b < first + count; b++)
            for (int iy = 0; iy < h; iy++) {
                float *out = dx + (((size_t)ch * n + b) * h + iy) * w;
                for (int s = 0; s < segments; s++) {
                    int x0 = 16 * s;
                    __m512 sum = _mm512_setzero_ps();
                    for (int ky = 0; ky < kh; ky++) {
                        int oy = iy + pad - ky;
                        if (oy < 0 || oy >= oh) continue;
                        const float *row = cols + (size_t)(ch * kh + ky) * kw * row_length
                                         + ((size_t)(b - first) * oh + oy) * ow + x0 + pad;
                        for (int kx = 0; kx < kw; kx++)
                            sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(lanes[s][kx], row + kx * row_length - kx));
                    }
                    if ((size_t)iy * w + x0 + 16 <= (size_t)h * w) _mm512_storeu_ps(out + x0, sum);
                    else _mm512_mask_storeu_ps(out + x0, (__mmask16)((1u << (w - x0 < 16 ? w - x0 : 16)) - 1), sum);
                }
            }
}

/* masked[i] = dy[i] where y[i] > 0, else 0 (the ReLU's derivative); returns Σ masked (the bias
 * gradient's share of this row). dy is only read: it may feed other consumers. One read of dy
 * and y and one write of masked, as the in-place mask it replaces. */
__attribute__((target("avx512f")))
float ollie_avx512_relu_mask_sum(const float *dy, const float *y, float *masked, int count) {
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < count; i += 16) {
        __mmask16 lanes = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, y + i), _mm512_setzero_ps(), _CMP_GT_OQ);
        __m512 g = _mm512_maskz_loadu_ps(keep, dy + i);
        _mm512_mask_storeu_ps(masked + i, lanes, g);
        sum = _mm512_add_ps(sum, g);
    }
    return _mm512_reduce_add_ps(sum);
}

/* 2×2 max pooling, stride 2, of one [H, W] plane into [H/2, W/2], with each output's winner
 * (its input's offset in the plane; ties go to the first in row-major order, as in SquareMaxPool's
 * own loop). 16 outputs per step: even and odd columns of two input rows are split with
 * permutes, then compared. */
__attribute__((target("avx512f")))
int ollie_avx512_maxpool2(const float *x, float *y, int *winners, int h, int w) {
    int oh = h / 2, ow = w / 2;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i even = _mm512_slli_epi32(lane, 1), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32(w);
    for (int oy = 0; oy < oh; oy++) {
        const float *r0 = x + (size_t)2 * oy * w, *r1 = r0 + w;
        for (int ox = 0; ox < ow; ox += 16) {
            int n = ow - ox < 16 ? ow - ox : 16;                  /* outputs this step */
            __mmask16 out = (__mmask16)((1u << n) - 1);
            __mmask16 lo = n >= 8 ? (__mmask16)0xFFFF : (__mmask16)((1u << (2 * n)) - 1);
            __mmask16 hi = n > 8 ? (__mmask16)((1u << (2 * (n - 8))) - 1) : 0;
            const float *p0 = r0 + 2 * ox, *p1 = r1 + 2 * ox;
            __m512 a0 = _mm512_maskz_loadu_ps(lo, p0), b0 = _mm512_maskz_loadu_ps(hi, p0 + 16);
            __m512 a1 = _mm512_maskz_loadu_ps(lo, p1), b1 = _mm512_maskz_loadu_ps(hi, p1 + 16);
            __m512 tl = _mm512_permutex2var_ps(a0, even, b0), tr = _mm512_permutex2var_ps(a0, odd, b0);
            __m512 bl = _mm512_permutex2var_ps(a1, even, b1), br = _mm512_permutex2var_ps(a1, odd, b1);
            __m512i first = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), even);
            __mmask16 right = _mm512_cmp_ps_mask(tr, tl, _CMP_GT_OQ);
            __m512 top = _mm512_mask_blend_ps(right, tl, tr);
            __m512i topIndex = _mm512_mask_add_epi32(first, right, first, one);
            __mmask16 rightBelow = _mm512_cmp_ps_mask(br, bl, _CMP_GT_OQ);
            __m512 bottom = _mm512_mask_blend_ps(rightBelow, bl, br);
            __m512i belowFirst = _mm512_add_epi32(first, down);
            __m512i bottomIndex = _mm512_mask_add_epi32(belowFirst, rightBelow, belowFirst, one);
            __mmask16 below = _mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ);
            _mm512_mask_storeu_ps(y + (size_t)oy * ow + ox, out, _mm512_mask_blend_ps(below, top, bottom));
            _mm512_mask_storeu_epi32(winners + (size_t)oy * ow + ox, out, _mm512_mask_blend_epi32(below, topIndex, bottomIndex));
        }
    }
    return 0;
}

int ollie_avx512_maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                                float *frame_y, int *frame_winners) {
    return ollie_maxpool_frames_with(ollie_avx512_maxpool2, x, y, winners, d, h, w, kd, frame_y, frame_winners);
}
#endif
