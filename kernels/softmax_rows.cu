// softmax_rows.cu: one block of 256 threads per row: a strided pass for the maximum, one for the sum of
// exponentials, one to write; each reduction goes through warp shuffles and a shared array of warp results.
#include "softmax_rows.cuh"

#include <cfloat>

#include "kernel_common.cuh"

namespace resnest {

constexpr int kSoftmaxThreads = 256;

template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
    for (int off = 16; off > 0; off >>= 1) {
        float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = kMax ? fmaxf(v, o) : v + o;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // scratch may still be read by an earlier reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float r = scratch[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) r = kMax ? fmaxf(r, scratch[w]) : r + scratch[w];
    return r;
}

template <typename T>
__global__ void softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int cols) {
    wait_for_producer_then_release_consumer();
    __shared__ float scratch[32];
    const T* xr = x + (long long)blockIdx.x * cols;
    T* yr = y + (long long)blockIdx.x * cols;
    float m = -FLT_MAX;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, load_as_float(&xr[i]));
    m = block_reduce<true>(m, scratch);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) sum += expf(load_as_float(&xr[i]) - m);
    sum = block_reduce<false>(sum, scratch);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) store_from_float(&yr[i], expf(load_as_float(&xr[i]) - m) / sum);
}

template <typename T>
void softmax_rows_block_per_row(const T* x, T* y, int rows, int cols, KernelStream stream) {
    launch_kernel("softmax_rows_block_per_row", softmax_rows_kernel<T>, rows, kSoftmaxThreads, 0, stream, x, y, cols);
}

template void softmax_rows_block_per_row<float>(const float*, float*, int, int, KernelStream);
template void softmax_rows_block_per_row<__half>(const __half*, __half*, int, int, KernelStream);

}  // namespace resnest
