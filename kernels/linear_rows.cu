// linear_rows.cu: the small-batch classifier (see linear_rows.cuh). Block (32, kLinearRowsWarps): warp w of
// block x takes output row x * kLinearRowsWarps + w; blockIdx.y strides over the tiles of images. Lanes
// stride along the row in 16-byte vectors (8 halves or 4 floats; coalesced 512-byte warp reads), two
// vectors in flight per lane, and each vector meets the same 16 bytes of every image in the tile (read
// through L1: the tile's inputs are shared by the block's 8 warps). Sums are float, reduced over the warp
// at the end; lane t writes image t's output with the bias added. Before waiting on the kernel before it,
// each warp of the first image tile asks L2 for its row (KernelStream::prefetch_weights).
#include "linear_rows.cuh"

#include <cstdint>

#include "kernel_common.cuh"

namespace resnest {

__device__ __forceinline__ float linear_rows_warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// dot[t] += w[i] * x[t][i] for V consecutive elements at i (V = 1, or kVec16<T> 16-byte aligned).
template <int V, typename T>
__device__ __forceinline__ void accumulate_linear_chunk(const T* w_row, const T* x_tile, int in, int i, int tile,
                                                        float* dot) {
    float wv[V];
    load_as_floats<V>(w_row + i, wv);
#pragma unroll
    for (int t = 0; t < kLinearRowsImagesPerTile; t++) {
        if (t >= tile) break;
        float xv[V];
        load_as_floats<V>(x_tile + (long long)t * in + i, xv);
#pragma unroll
        for (int k = 0; k < V; k++) dot[t] = fmaf(wv[k], xv[k], dot[t]);
    }
}

template <typename T>
__global__ void linear_bias_warp_per_output_row_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                       const float* __restrict__ bias, T* __restrict__ y, int n,
                                                       int in, int out, int vector_end, bool prefetch) {
    constexpr int V = kVec16<T>;
    const int lane = threadIdx.x, row = blockIdx.x * kLinearRowsWarps + threadIdx.y;
    // The first tile of images' warp asks L2 for its row (every tile's warp of this row reads it).
    if (prefetch && blockIdx.y == 0 && row < out)
        prefetch_l2_rows(w, WeightSlice{(long long)row * in, in, 1, in}, lane, 32);
    wait_for_producer_then_release_consumer();
    if (row >= out) return;
    const T* w_row = w + (long long)row * in;
    const int tiles = (n + kLinearRowsImagesPerTile - 1) / kLinearRowsImagesPerTile;
    for (int tile_index = blockIdx.y; tile_index < tiles; tile_index += gridDim.y) {
        const int n0 = tile_index * kLinearRowsImagesPerTile, tile = min(kLinearRowsImagesPerTile, n - n0);
        const T* x_tile = x + (long long)n0 * in;
        float dot[kLinearRowsImagesPerTile] = {};
        // [0, vector_end): 16-byte vectors, two per lane per step; [vector_end, in): one element at a time.
        int i = lane * V;
        for (; i + 32 * V < vector_end; i += 64 * V) {
            accumulate_linear_chunk<V>(w_row, x_tile, in, i, tile, dot);
            accumulate_linear_chunk<V>(w_row, x_tile, in, i + 32 * V, tile, dot);
        }
        if (i < vector_end) accumulate_linear_chunk<V>(w_row, x_tile, in, i, tile, dot);
        for (int j = vector_end + lane; j < in; j += 32) accumulate_linear_chunk<1>(w_row, x_tile, in, j, tile, dot);
        const float b = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int t = 0; t < kLinearRowsImagesPerTile; t++) {
            if (t >= tile) break;
            const float v = linear_rows_warp_sum(dot[t]);
            if (lane == t) store_from_float(&y[(long long)(n0 + t) * out + row], v + b);
        }
    }
}

bool linear_rows_vectorized(const void* x, const void* w, int in, int element_bytes) {
    const int vec = 16 / element_bytes;
    return in % vec == 0 && aligned16(x) && aligned16(w);
}

template <typename T>
void linear_bias_warp_per_output_row(const T* x, const T* w, const float* bias, T* y, int n, int in, int out,
                                     KernelStream stream) {
    if (n < 1 || in < 1 || out < 1) return;
    const int vector_end = linear_rows_vectorized(x, w, in, (int)sizeof(T)) ? in : 0;
    const int tiles = ceil_div(n, kLinearRowsImagesPerTile);
    dim3 grid((unsigned)ceil_div(out, kLinearRowsWarps), (unsigned)(tiles < 65535 ? tiles : 65535));
    launch_kernel("linear_bias_warp_per_output_row", linear_bias_warp_per_output_row_kernel<T>, grid,
                  dim3(32, kLinearRowsWarps), 0, stream, x, w, bias, y, n, in, out, vector_end,
                  stream.prefetch_weights);
}

template void linear_bias_warp_per_output_row<float>(const float*, const float*, const float*, float*, int, int, int,
                                                     KernelStream);
template void linear_bias_warp_per_output_row<__half>(const __half*, const __half*, const float*, __half*, int, int,
                                                      int, KernelStream);

}  // namespace resnest
