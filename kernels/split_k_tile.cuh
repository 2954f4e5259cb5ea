// split_k_tile.cuh: K split across blocks, for the kernels that finish a 64x64 float tile in shared memory
// (conv3x3_implicit_gemm.cu, split_attention_combine_conv1x1.cu). Each block of a tile writes its partial
// tile to its own slot and counts its arrival; the last of the tile's blocks adds the slots in split order
// (the sum does not depend on which block came last), keeps the sum in its shared tile and sets the count
// back to zero, so the next launch on the stream can use the same counts.
#pragma once
#include <cuda_runtime.h>

namespace resnest {

constexpr int kSplitTileSide = 64;  // the tile is 64 x 64 floats; a slot holds one, row-major

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
