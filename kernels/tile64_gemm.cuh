// tile64_gemm.cuh: what the kernels that multiply into 64x64 float tiles with four warps share
// (conv3x3_implicit_gemm.cu, split_attention_combine_conv1x1.cu):
// - one shared-memory K step of the block's MMAs: each warp its 32x32 corner, 2x2 wmma 16x16x16 fragments
//   (half in, float accumulators);
// - the warps' accumulators into the block's float tile in shared memory;
// - K split across blocks: each block of a tile writes its partial tile to its own slot and counts its
//   arrival; the last of the tile's blocks adds the slots in split order (the sum does not depend on which
//   block came last), keeps the sum in its shared tile and sets the count back to zero, so the next launch on
//   the stream can use the same counts.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

namespace resnest {

using Tile64Accumulators = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>[2][2];

// acc += A B over `k` (a multiple of 16) columns for warp (wm, wn) of the 2x2 grid: a, the tile's A rows
// (64 rows of ld halves, row-major), b, its B columns (64 rows of ld halves: B transposed, wmma col_major).
__device__ __forceinline__ void tile64_warp_mma(Tile64Accumulators& acc, const __half* a, const __half* b, int ld,
                                                int k, int wm, int wn) {
    using namespace nvcuda;
    for (int kk = 0; kk < k; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
        for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], a + (wm * 32 + i * 16) * ld + kk, ld);
        for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], b + (wn * 32 + j * 16) * ld + kk, ld);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
}

constexpr int kSplitTileSide = 64;  // the tile is 64 x 64 floats; a slot holds one, row-major

// The accumulators of warp (wm, wn) into its 32x32 corner of the float tile c (64 rows of ldc floats).
__device__ __forceinline__ void tile64_warp_store(float* c, int ldc, const Tile64Accumulators& acc, int wm, int wn) {
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            nvcuda::wmma::store_matrix_sync(c + (wm * 32 + i * 16) * ldc + wn * 32 + j * 16, acc[i][j], ldc,
                                            nvcuda::wmma::mem_row_major);
}

// Called by every thread of the block, after the block's tile is complete in shared memory `c` (rows of
// `ldc` floats). slots: the tile's partials, split q's at slots + q * slot_stride floats. arrival: the
// tile's count; last: a shared int of the kernel's. Returns true in the last block of the tile, whose c
// then holds the sum of every split, and false in the others, which have nothing left to do.
__device__ __forceinline__ bool split_k_tile_sum(float* c, int ldc, float* slots, long long slot_stride, int split,
                                                 int splits, int* arrival, int* last) {
    constexpr int kQuads = kSplitTileSide * kSplitTileSide / 4, kQuadsPerRow = kSplitTileSide / 4;
    const int t = threadIdx.x;
    float* mine = slots + split * slot_stride;
    for (int v = t; v < kQuads; v += blockDim.x) {
        const int row = v / kQuadsPerRow, col = (v % kQuadsPerRow) * 4;
        *(float4*)&mine[row * kSplitTileSide + col] = *(const float4*)&c[row * ldc + col];
    }
    // The hand-off's ordering, which every change here must keep: each thread fences its own partial stores
    // (__threadfence, a sequentially consistent fence at GPU scope) before the barrier that precedes thread
    // 0's count; the last block fences after its barrier and before its first partial load, which bypasses
    // L1 (__ldcg). Fences of that kind are totally ordered, so the last block's loads see every earlier
    // block's stores. Weaker fences (acquire/release) or a fence moved past the barrier would break it.
    __threadfence();  // this block's partial is visible before its arrival is counted
    __syncthreads();
    if (t == 0) *last = atomicAdd(arrival, 1) == splits - 1;
    __syncthreads();
    if (!*last) return false;
    __threadfence();
    for (int v = t; v < kQuads; v += blockDim.x) {
        const int row = v / kQuadsPerRow, col = (v % kQuadsPerRow) * 4;
        float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int q = 0; q < splits; q++) {  // split order, whichever block came last
            const float4 p = __ldcg((const float4*)&slots[q * slot_stride + row * kSplitTileSide + col]);
            sum.x += p.x, sum.y += p.y, sum.z += p.z, sum.w += p.w;
        }
        *(float4*)&c[row * ldc + col] = sum;
    }
    if (t == 0) *arrival = 0;  // every split has arrived: ready for the next launch
    __syncthreads();
    return true;
}

}  // namespace resnest
