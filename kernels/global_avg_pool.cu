// global_avg_pool.cu: a block of 32 channels x 8 rows per (image, channel tile): each thread sums every 8th
// spatial position of one channel (reads coalesced across the 32 channels), then the 8 partial sums meet
// in shared memory. First, where given, the first row of threads asks L2 for the classifier's weights
// (kernel_common.cuh, prefetch_l2_across_grid).
#include "global_avg_pool.cuh"

#include "kernel_common.cuh"

namespace resnest {

constexpr int kGapChannels = 32, kGapRows = 8;

template <typename T>
__global__ void global_avg_pool_channel_tile(const T* __restrict__ x, T* __restrict__ y, int hw, int c, int tiles,
                                             L2Prefetch next) {
    if (threadIdx.y == 0) prefetch_l2_across_grid(next);  // one row of the block: the grid-stride is over x
    wait_for_producer_then_release_consumer();
    __shared__ float partial[kGapRows][kGapChannels + 1];
    const int ch = (int)(blockIdx.x % tiles) * kGapChannels + threadIdx.x;
    const long long n = blockIdx.x / tiles;  // blockIdx.x: image and channel tile, so any batch size fits
    float sum = 0.0f;
    if (ch < c)
        for (int p = threadIdx.y; p < hw; p += kGapRows) sum += load_as_float(&x[(n * hw + p) * c + ch]);
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && ch < c) {
        float total = 0.0f;
        for (int r = 0; r < kGapRows; r++) total += partial[r][threadIdx.x];
        store_from_float(&y[n * c + ch], total / (float)hw);
    }
}

template <typename T>
void global_avg_pool_nhwc(const T* x, T* y, int n, int hw, int c, KernelStream stream, const L2Prefetch& next) {
    const int tiles = ceil_div(c, kGapChannels);
    dim3 grid((unsigned)((long long)tiles * n)), block(kGapChannels, kGapRows);
    launch_kernel("global_avg_pool_nhwc", global_avg_pool_channel_tile<T>, grid, block, 0, stream, x, y, hw, c,
                  tiles, l2_prefetch_for(next, stream));
}

template void global_avg_pool_nhwc<float>(const float*, float*, int, int, int, KernelStream, const L2Prefetch&);
template void global_avg_pool_nhwc<__half>(const __half*, __half*, int, int, int, KernelStream, const L2Prefetch&);

}  // namespace resnest
