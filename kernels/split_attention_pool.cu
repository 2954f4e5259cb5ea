// split_attention_pool.cu: radix sum + global average pool. A block covers 32 channels of one image with 8
// rows of threads; each thread walks every 8th spatial position and adds all R splits of its channel there,
// so U is read exactly once, coalesced across the 32 channels. Partial sums meet in shared memory.
#include "split_attention_pool.cuh"

#include "kernel_common.cuh"

namespace resnest {

constexpr int kPoolChannels = 32, kPoolRows = 8;

template <typename T>
__global__ void split_attention_radix_sum_pool_kernel(const T* __restrict__ u, float* __restrict__ gap, int hw,
                                                      int radix, int c) {
    __shared__ float partial[kPoolRows][kPoolChannels + 1];
    int ch = blockIdx.x * kPoolChannels + threadIdx.x;
    long long n = blockIdx.y;
    long long rc = (long long)radix * c;
    float sum = 0.0f;
    if (ch < c)
        for (int p = threadIdx.y; p < hw; p += kPoolRows) {
            const T* row = u + (n * hw + p) * rc + ch;  // (R*C) channels of one position
            for (int r = 0; r < radix; r++) sum += load_as_float(&row[(long long)r * c]);
        }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && ch < c) {
        float total = 0.0f;
        for (int r = 0; r < kPoolRows; r++) total += partial[r][threadIdx.x];
        gap[n * c + ch] = total / (float)hw;
    }
}

template <typename T>
void split_attention_radix_sum_pool(const T* u, float* gap, int n, int hw, int radix, int c, cudaStream_t stream) {
    dim3 grid(ceil_div(c, kPoolChannels), n), block(kPoolChannels, kPoolRows);
    split_attention_radix_sum_pool_kernel<T><<<grid, block, 0, stream>>>(u, gap, hw, radix, c);
    check_kernel_launch("split_attention_radix_sum_pool");
}

template void split_attention_radix_sum_pool<float>(const float*, float*, int, int, int, int, cudaStream_t);
template void split_attention_radix_sum_pool<__half>(const __half*, float*, int, int, int, int, cudaStream_t);

}  // namespace resnest
