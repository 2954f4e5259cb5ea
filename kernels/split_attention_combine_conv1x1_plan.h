// split_attention_combine_conv1x1_plan.h: the problem of kernels/split_attention_combine_conv1x1.cu (split
// attention's weighted radix sum, and the avd pool where one follows it, folded into the 1x1 convolution
// after it) and how it divides the work: 64x64 tiles of (N*HW, Cout), K (= C) in steps of 32 channels, split
// into contiguous ranges where the tiles alone do not fill one wave. Plain C++ where not compiled by nvcc,
// so it is unit-tested on any machine.
#pragma once

#include "weight_slice.h"

#ifdef __CUDACC__
#define RESNEST_COMBINE_HOST_DEVICE __host__ __device__
#else
#define RESNEST_COMBINE_HOST_DEVICE
#endif

namespace resnest {

constexpr int kCombineTileM = 64, kCombineTileN = 64, kCombineTileK = 32;
constexpr int kCombineMaxRadix = 2;  // ResNeSt50's radix; the fast model's is 1
constexpr int kCombineMaxSplits = 16;

// The avd average pool between the weighted sum and the convolution (ResNeSt's avd layer after attention),
// where k > 0: U then has in_h x in_w positions an image, and the pool's output grid (hw / out_w rows of
// out_w cells) is the convolution's. Square windows, PyTorch's divisor rule (pool_window.cuh).
struct CombineAvgPool {
    int k = 0, stride = 1, pad = 0;
    bool include_pad = true;
    int in_h = 0, in_w = 0, out_w = 0;
};

// u (N, HW, R*C) -> a (N, HW, C) = half(sum_r attn * u_r) -> y (N, HW, Cout) = relu?(a W^T + bias + z), as
// one matrix product with M = N*HW rows (m = n*HW + p), K = C, and the columns of W^T; with the avd pool,
// a = half(sum_r attn * mean over m's window of u_r) and u has N*in_h*in_w rows. The element offsets below
// are what the kernel addresses with, and what its host test (tests/unit/test_combine_conv_plan.cpp) multiplies
// on the CPU.
struct CombineConv1x1Shape {
    int n, hw, radix, c, cout;
    CombineAvgPool pool = {};

    RESNEST_COMBINE_HOST_DEVICE bool pooled() const { return pool.k > 0; }
    RESNEST_COMBINE_HOST_DEVICE int u_positions() const { return pooled() ? pool.in_h * pool.in_w : hw; }
    // Row m's window in U: rows [*y0, *y1) and columns [*x0, *x1) of its image, and the average's divisor.
    RESNEST_COMBINE_HOST_DEVICE void window(long long m, int* y0, int* y1, int* x0, int* x1, int* divisor) const {
        const int cell = (int)(m % hw), oy = cell / pool.out_w, ox = cell % pool.out_w;
        const int ys = oy * pool.stride - pool.pad, xs = ox * pool.stride - pool.pad;
        *y0 = ys > 0 ? ys : 0, *x0 = xs > 0 ? xs : 0;
        *y1 = ys + pool.k < pool.in_h ? ys + pool.k : pool.in_h;
        *x1 = xs + pool.k < pool.in_w ? xs + pool.k : pool.in_w;
        const int ye = ys + pool.k < pool.in_h + pool.pad ? ys + pool.k : pool.in_h + pool.pad;
        const int xe = xs + pool.k < pool.in_w + pool.pad ? xs + pool.k : pool.in_w + pool.pad;
        *divisor = pool.include_pad ? (ye - ys) * (xe - xs) : (*y1 - *y0) * (*x1 - *x0);
    }
    // U's row of image `image` at (iy, ix) when pooled (else row m is U's row m).
    RESNEST_COMBINE_HOST_DEVICE long long u_row(long long image, int iy, int ix) const {
        return (image * pool.in_h + iy) * pool.in_w + ix;
    }

    RESNEST_COMBINE_HOST_DEVICE long long m() const { return (long long)n * hw; }
    RESNEST_COMBINE_HOST_DEVICE int k_steps() const { return c / kCombineTileK; }
    RESNEST_COMBINE_HOST_DEVICE int tiles_m() const { return (int)((m() + kCombineTileM - 1) / kCombineTileM); }
    RESNEST_COMBINE_HOST_DEVICE int tiles_n() const { return cout / kCombineTileN; }
    RESNEST_COMBINE_HOST_DEVICE int tiles() const { return tiles_m() * tiles_n(); }
    // u[row, r*C + k] (row: m, or u_row when pooled); the gate of image n (= m / HW) for channel r*C + k;
    // w[o, k] (Cout, C); y and z[m, o].
    RESNEST_COMBINE_HOST_DEVICE long long u_offset(long long row, int r, int k) const {
        return row * radix * c + (long long)r * c + k;
    }
    RESNEST_COMBINE_HOST_DEVICE long long attn_offset(long long image, int r, int k) const {
        return image * radix * c + (long long)r * c + k;
    }
    RESNEST_COMBINE_HOST_DEVICE long long w_offset(int o, int k) const { return (long long)o * c + k; }
    RESNEST_COMBINE_HOST_DEVICE long long y_offset(long long m, int o) const { return m * cout + o; }
    // The part of w a block of N tile tile_n reads over K steps [begin, end): rows tile_n*64 .. + 63, each
    // the run of those steps' channels.
    RESNEST_COMBINE_HOST_DEVICE WeightSlice w_slice(int tile_n, int begin, int end) const {
        return {w_offset(tile_n * kCombineTileN, begin * kCombineTileK), c, kCombineTileN,
                (long long)(end - begin) * kCombineTileK};
    }
    // Block (tile_m, tile_n)'s tile counter, and the float slot split s of tile `tile` writes (64x64 floats).
    RESNEST_COMBINE_HOST_DEVICE int tile_index(int tile_m, int tile_n) const { return tile_n * tiles_m() + tile_m; }
    RESNEST_COMBINE_HOST_DEVICE long long partial_offset(int split, int tile) const {
        return ((long long)split * tiles() + tile) * (kCombineTileM * kCombineTileN);
    }
    // The K steps split s of `splits` runs: [*begin, *end).
    RESNEST_COMBINE_HOST_DEVICE void split_range(int s, int splits, int* begin, int* end) const {
        *begin = (int)((long long)k_steps() * s / splits);
        *end = (int)((long long)k_steps() * (s + 1) / splits);
    }
    // The kernel's requirements: radix 1..2, whole K steps and whole N tiles; a pool's output grid whole
    // rows, its padding under its window, and every window over at least one cell of U.
    bool fits() const {
        const bool shape = n >= 1 && hw >= 1 && radix >= 1 && radix <= kCombineMaxRadix && c >= kCombineTileK &&
                           c % kCombineTileK == 0 && cout >= kCombineTileN && cout % kCombineTileN == 0;
        if (!shape || !pooled()) return shape && pool.k == 0;
        const CombineAvgPool& p = pool;
        if (p.stride < 1 || p.pad < 0 || p.pad >= p.k || p.in_h < 1 || p.in_w < 1 || p.out_w < 1 || hw % p.out_w)
            return false;
        const int out_h = hw / p.out_w;
        return (out_h - 1) * p.stride - p.pad < p.in_h && (p.out_w - 1) * p.stride - p.pad < p.in_w;
    }
};

// The split count: the largest power of two up to 16 whose blocks stay within one wave of `sms`
// multiprocessors and leave each split at least 4 K steps (K is C / 32: 2 to 16 steps on ResNeSt50).
inline int split_attention_combine_conv1x1_splits(const CombineConv1x1Shape& s, int sms) {
    int splits = 1;
    while (splits < kCombineMaxSplits && (long long)s.tiles() * splits * 2 <= sms && s.k_steps() / (splits * 2) >= 4)
        splits *= 2;
    return splits;
}

}  // namespace resnest
