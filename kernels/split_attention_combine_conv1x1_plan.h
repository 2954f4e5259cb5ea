// split_attention_combine_conv1x1_plan.h: the problem of kernels/split_attention_combine_conv1x1.cu (split
// attention's weighted radix sum folded into the 1x1 convolution after it) and how it divides the work:
// 64x64 tiles of (N*HW, Cout), K (= C) in steps of 32 channels, split into contiguous ranges where the tiles
// alone do not fill one wave. Plain C++ where not compiled by nvcc, so it is unit-tested on any machine.
#pragma once

#ifdef __CUDACC__
#define RESNEST_COMBINE_HOST_DEVICE __host__ __device__
#else
#define RESNEST_COMBINE_HOST_DEVICE
#endif

namespace resnest {

constexpr int kCombineTileM = 64, kCombineTileN = 64, kCombineTileK = 32;
constexpr int kCombineMaxRadix = 2;  // ResNeSt50's radix; the fast model's is 1
constexpr int kCombineMaxSplits = 16;

// u (N, HW, R*C) -> a (N, HW, C) = half(sum_r attn * u_r) -> y (N, HW, Cout) = relu?(a W^T + bias + z), as
// one matrix product with M = N*HW rows (m = n*HW + p), K = C, and the columns of W^T: the element offsets
// below are what the kernel addresses with, and what its host test (tests/unit/test_kernel_plans.cpp)
// multiplies on the CPU.
struct CombineConv1x1Shape {
    int n, hw, radix, c, cout;

    RESNEST_COMBINE_HOST_DEVICE long long m() const { return (long long)n * hw; }
    RESNEST_COMBINE_HOST_DEVICE int k_steps() const { return c / kCombineTileK; }
    RESNEST_COMBINE_HOST_DEVICE int tiles_m() const { return (int)((m() + kCombineTileM - 1) / kCombineTileM); }
    RESNEST_COMBINE_HOST_DEVICE int tiles_n() const { return cout / kCombineTileN; }
    RESNEST_COMBINE_HOST_DEVICE int tiles() const { return tiles_m() * tiles_n(); }
    // u[m, r*C + k]; the gate of image n (= m / HW) for channel r*C + k; w[o, k] (Cout, C); y and z[m, o].
    RESNEST_COMBINE_HOST_DEVICE long long u_offset(long long m, int r, int k) const {
        return m * radix * c + (long long)r * c + k;
    }
    RESNEST_COMBINE_HOST_DEVICE long long attn_offset(long long image, int r, int k) const {
        return image * radix * c + (long long)r * c + k;
    }
    RESNEST_COMBINE_HOST_DEVICE long long w_offset(int o, int k) const { return (long long)o * c + k; }
    RESNEST_COMBINE_HOST_DEVICE long long y_offset(long long m, int o) const { return m * cout + o; }
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
    // The kernel's requirements: radix 1..2, whole K steps and whole N tiles.
    bool fits() const {
        return n >= 1 && hw >= 1 && radix >= 1 && radix <= kCombineMaxRadix && c >= kCombineTileK &&
               c % kCombineTileK == 0 && cout >= kCombineTileN && cout % kCombineTileN == 0;
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
