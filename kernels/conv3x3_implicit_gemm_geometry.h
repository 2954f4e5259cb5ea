// conv3x3_implicit_gemm_geometry.h: the index arithmetic of a grouped 3x3 convolution (stride 1, padding 1)
// read as one matrix product per group without an im2col matrix (implicit GEMM): what the kernel
// (conv3x3_implicit_gemm.cu) computes its addresses with, and its host test (tests/unit/test_kernel_plans.cpp)
// multiplies the matrices these offsets describe and compares with a direct convolution. Plain C++ where
// not compiled by nvcc.
//
//   x (N, H, W, Cin) NHWC, w (Cout, 3, 3, Cin/G) OHWI as stored, y (N, H, W, Cout); per group g:
//   A (M = N*H*W, K = 9*Cin/G):  A[m][k] = x[n, oy + ky - 1, ox + kx - 1, g*Cin/G + c]  (0 in the padding)
//   B (K, Cout/G):               B[k][o] = w[g*Cout/G + o, ky, kx, c]
//   y[m][g*Cout/G + o] = relu?( sum_k A[m][k] * B[k][o] + bias[g*Cout/G + o] )
// with m = (n*H + oy)*W + ox and k = (ky*3 + kx)*Cin/G + c: tap-major, so a run of k inside one tap is a
// run of contiguous channels in both x and w.
//
// Split-K: the K/kImplicitTileK steps of a tile are cut into `splits` contiguous ranges, one block each; the
// last block of a tile to finish adds the ranges' float partial sums in split order (the sum does not depend
// on which block finished last) and writes y.
//
// Rows are tiled over all of M (tiles may straddle images), or, with split attention's pool in the epilogue
// (pool_radix > 0), image by image: ceil(H*W / 64) tiles an image, the last one short, so that a tile's
// column sums belong to one image. They go to split attention's pool partials (N, chunks, C), C = Cout / R,
// as chunk (tile of the image) * R + (radix split of the tile's channels): the gate adds the chunks in
// order (kernels/split_attention_gate.cuh), which sums the positions and the radix splits at once.
#pragma once
#include <cstdint>

#include "weight_slice.h"

#ifdef __CUDACC__
#define RESNEST_IMPLICIT_HOST_DEVICE __host__ __device__
#else
#define RESNEST_IMPLICIT_HOST_DEVICE
#endif

namespace resnest {

// A block's tile of (M, Cout/G) and its K step.
constexpr int kImplicitTileM = 64, kImplicitTileN = 64, kImplicitTileK = 32;

struct ImplicitConv3x3Shape {
    int n, h, w, cin, cout, groups;
    int pool_radix = 0;  // > 0: rows tiled image by image, the pool partials written with this radix

    RESNEST_IMPLICIT_HOST_DEVICE int cin_g() const { return cin / groups; }
    RESNEST_IMPLICIT_HOST_DEVICE int cout_g() const { return cout / groups; }
    RESNEST_IMPLICIT_HOST_DEVICE long long m() const { return (long long)n * h * w; }
    RESNEST_IMPLICIT_HOST_DEVICE int k() const { return 9 * cin_g(); }
    RESNEST_IMPLICIT_HOST_DEVICE int k_steps() const { return k() / kImplicitTileK; }
    RESNEST_IMPLICIT_HOST_DEVICE int tiles_per_image() const { return (h * w + kImplicitTileM - 1) / kImplicitTileM; }
    RESNEST_IMPLICIT_HOST_DEVICE int tiles_m() const {
        return pool_radix > 0 ? n * tiles_per_image() : (int)((m() + kImplicitTileM - 1) / kImplicitTileM);
    }
    // M tile tm covers rows tile_row0(tm) .. + tile_rows(tm) - 1 (the tile's rows past that hold nothing).
    RESNEST_IMPLICIT_HOST_DEVICE long long tile_row0(int tm) const {
        if (pool_radix <= 0) return (long long)tm * kImplicitTileM;
        return (long long)(tm / tiles_per_image()) * (h * w) + (long long)(tm % tiles_per_image()) * kImplicitTileM;
    }
    RESNEST_IMPLICIT_HOST_DEVICE int tile_rows(int tm) const {
        const long long left = pool_radix > 0 ? (long long)h * w - (long long)(tm % tiles_per_image()) * kImplicitTileM
                                              : m() - (long long)tm * kImplicitTileM;
        return left < kImplicitTileM ? (int)left : kImplicitTileM;
    }
    RESNEST_IMPLICIT_HOST_DEVICE int tiles_n() const { return cout_g() / kImplicitTileN; }
    RESNEST_IMPLICIT_HOST_DEVICE int tiles() const { return tiles_m() * tiles_n() * groups; }  // all groups'
    // The kernel's requirements: whole K steps inside one tap (16-byte loads of 8 halves) and whole N tiles.
    bool fits() const {
        return n >= 1 && h >= 1 && w >= 1 && groups >= 1 && cin % groups == 0 && cout % groups == 0 &&
               cin_g() >= kImplicitTileK && cin_g() % kImplicitTileK == 0 && cout_g() >= kImplicitTileN &&
               cout_g() % kImplicitTileN == 0;
    }

    // Split attention's pool in the epilogue: it needs each N tile inside one radix split.
    bool pool_fits() const {
        return pool_radix >= 1 && cout % pool_radix == 0 && (cout / pool_radix) % kImplicitTileN == 0;
    }
    RESNEST_IMPLICIT_HOST_DEVICE int pool_channels() const { return cout / pool_radix; }  // C
    RESNEST_IMPLICIT_HOST_DEVICE int pool_chunks() const { return tiles_per_image() * pool_radix; }
    // Element offset in the pool partials (N, chunks, C) of M tile tm's column sum of output channel o (of
    // all Cout): chunk (tm's tile of its image) * R + o's radix split.
    RESNEST_IMPLICIT_HOST_DEVICE long long pool_offset(int tm, int o) const {
        const int image = tm / tiles_per_image(), chunk = (tm % tiles_per_image()) * pool_radix + o / pool_channels();
        return ((long long)image * pool_chunks() + chunk) * pool_channels() + o % pool_channels();
    }

    // Where output row m's window starts: the image's first pixel and (oy, ox); invalid past M. A kernel
    // computes this once per row it loads, outside its K loop (64-bit divisions), then a_offset per step.
    struct RowOrigin {
        long long pixel0;  // n*H*W
        int oy, ox;
        bool valid;
    };
    RESNEST_IMPLICIT_HOST_DEVICE RowOrigin row_origin(long long row) const {
        if (row >= m()) return {0, 0, 0, false};
        return {row / ((long long)w * h) * ((long long)w * h), (int)((row / w) % h), (int)(row % w), true};
    }
    // The window origin of row r (0..63) of M tile tm; invalid past the tile's rows.
    RESNEST_IMPLICIT_HOST_DEVICE RowOrigin tile_row_origin(int tm, int r) const {
        if (r >= tile_rows(tm)) return {0, 0, 0, false};
        return row_origin(tile_row0(tm) + r);
    }
    // Element offset in x of A[m][k] of group g for the row at r, or -1 where the window reads the padding
    // (or the row is past M).
    RESNEST_IMPLICIT_HOST_DEVICE long long a_offset(const RowOrigin& r, int g, int col) const {
        if (!r.valid) return -1;
        const int tap = col / cin_g(), c = col - tap * cin_g();
        const int iy = r.oy + tap / 3 - 1, ix = r.ox + tap % 3 - 1;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) return -1;
        return (r.pixel0 + (long long)iy * w + ix) * cin + (long long)g * cin_g() + c;
    }
    RESNEST_IMPLICIT_HOST_DEVICE long long a_offset(int g, long long row, int col) const {
        return a_offset(row_origin(row), g, col);
    }
    // Element offset in w of B[k][o] of group g.
    RESNEST_IMPLICIT_HOST_DEVICE long long b_offset(int g, int col, int o) const {
        return ((long long)g * cout_g() + o) * k() + col;
    }
    // Element offset in y of output row m, channel o of group g.
    RESNEST_IMPLICIT_HOST_DEVICE long long y_offset(int g, long long row, int o) const {
        return row * cout + (long long)g * cout_g() + o;
    }
    // The filter a block of N tile tile_n and group g reads over K steps [begin, end): B's columns
    // tile_n*64 .. + 63 of the group, each the run of its K steps' elements in that filter row.
    RESNEST_IMPLICIT_HOST_DEVICE WeightSlice b_slice(int g, int tile_n, int begin, int end) const {
        return {b_offset(g, begin * kImplicitTileK, tile_n * kImplicitTileN), k(), kImplicitTileN,
                (long long)(end - begin) * kImplicitTileK};
    }
    // The tile counter and partial-sum slot of block (tile_m, tile_n) of group g: tiles are numbered group by
    // group, N tile by N tile; split s of a tile writes its 64x64 floats at partial_offset(s, tile).
    RESNEST_IMPLICIT_HOST_DEVICE int tile_index(int g, int tile_n, int tile_m) const {
        return (g * tiles_n() + tile_n) * tiles_m() + tile_m;
    }
    RESNEST_IMPLICIT_HOST_DEVICE long long partial_offset(int split, int tile) const {
        return ((long long)split * tiles() + tile) * (kImplicitTileM * kImplicitTileN);
    }
    // The K steps split s of `splits` runs: [*begin, *end).
    RESNEST_IMPLICIT_HOST_DEVICE void split_range(int s, int splits, int* begin, int* end) const {
        *begin = (int)((long long)k_steps() * s / splits);
        *end = (int)((long long)k_steps() * (s + 1) / splits);
    }
};

// Whether split attention's pool may go into the epilogue of s (tiled over all of M as timed): tiling image by
// image may add at most an eighth more tiles (ResNeSt50's layer 1, 56x56 = 49 whole tiles, adds none, and
// batch 1 none anywhere; layer 2, 28x28 = 12.25 tiles an image, adds 6 %; layers 3 and 4 add 30 %), the
// cost the pool kernel it removes is predicted to outweigh: a launch and one read of U.
inline bool conv3x3_implicit_gemm_pool_tiles_allowed(const ImplicitConv3x3Shape& s) {
    ImplicitConv3x3Shape flat = s, per_image = s;
    flat.pool_radix = 0, per_image.pool_radix = 1;
    return (long long)per_image.tiles_m() * 8 <= (long long)flat.tiles_m() * 9;
}

// The split count: the largest power of two up to 16 that keeps the blocks within one wave of `sms`
// multiprocessors and every split at least 8 K steps long; 1 where the tiles alone fill the card.
inline int conv3x3_implicit_gemm_splits(const ImplicitConv3x3Shape& s, int sms) {
    int splits = 1;
    while (splits < 16 && (long long)s.tiles() * splits * 2 <= sms && s.k_steps() / (splits * 2) >= 8) splits *= 2;
    return splits;
}

}  // namespace resnest
