// split_attention_pool_row_lanes.cu: radix sum + global pool per chunk of positions, 16 bytes a load
// (split_attention_pool_row_lanes.cuh). A block takes one image (blockIdx.x) and one chunk of its positions
// (blockIdx.y). Its threads are lanes x rows: a lane is 16 bytes of the R*C channel row (8 halves or 4
// floats), R*C / V lanes cover a position's whole row, and the rows of threads take every rows-th position
// of the chunk, four at a time (four 16-byte loads in flight a thread). Each thread keeps V float sums; the
// block then puts them in shared memory (rows, R*C) and one thread per channel adds its rows and its R
// splits in a fixed order, writing the chunk's plain sum (the gate adds the chunks and divides).
#include "split_attention_pool_row_lanes.cuh"

#include <cstdint>
#include <string>

#include "kernel_common.cuh"

namespace resnest {

template <typename T>
__global__ void split_attention_radix_sum_pool_row_lanes_kernel(const T* __restrict__ u, float* __restrict__ partial,
                                                                int hw, int radix, int c, int chunks) {
    wait_for_producer_then_release_consumer();
    constexpr int V = kVec16<T>;
    __shared__ float row_sums[kPoolRowLanesThreads * V];  // (rows, R*C): at most 256 lanes x V floats
    const int rc = radix * c, lanes = rc / V, rows = kPoolRowLanesThreads / lanes;
    const int lane = threadIdx.x % lanes, row = threadIdx.x / lanes;
    const long long n = blockIdx.x;
    const int chunk = blockIdx.y, per = split_attention_pool_chunk_positions(hw, chunks);
    const int p0 = chunk * per, p1 = min(hw, p0 + per);
    if (row < rows) {
        float acc[V] = {};
        const T* x = u + n * hw * (long long)rc + lane * V;  // this lane's 16 bytes of position 0
        int p = p0 + row;
        for (; p + 3 * rows < p1; p += 4 * rows) {
            float a[V], b[V], d[V], e[V];
            load16_as_float(x + (long long)p * rc, a);
            load16_as_float(x + (long long)(p + rows) * rc, b);
            load16_as_float(x + (long long)(p + 2 * rows) * rc, d);
            load16_as_float(x + (long long)(p + 3 * rows) * rc, e);
            for (int k = 0; k < V; k++) acc[k] += (a[k] + b[k]) + (d[k] + e[k]);
        }
        for (; p < p1; p += rows) {
            float a[V];
            load16_as_float(x + (long long)p * rc, a);
            for (int k = 0; k < V; k++) acc[k] += a[k];
        }
        for (int k = 0; k < V; k++) row_sums[row * rc + lane * V + k] = acc[k];
    }
    __syncthreads();
    for (int ch = threadIdx.x; ch < c; ch += blockDim.x) {
        float total = 0.0f;
        for (int r = 0; r < rows; r++)
            for (int s = 0; s < radix; s++) total += row_sums[r * rc + s * c + ch];
        partial[(n * chunks + chunk) * c + ch] = total;
    }
}

template <typename T>
void split_attention_radix_sum_pool_row_lanes(const T* u, float* partial, int n, int hw, int radix, int c,
                                              int chunks, KernelStream stream) {
    const char* name = "split_attention_radix_sum_pool_row_lanes";
    if (!split_attention_pool_row_lanes_fits_for<T>(radix, c))
        throw Error(std::string(name) + ": " + std::to_string(radix) + " x " + std::to_string(c) +
                    " channels are not whole 16-byte lanes in one block of " + std::to_string(kPoolRowLanesThreads));
    if (reinterpret_cast<uintptr_t>(u) % 16 != 0)
        throw Error(std::string(name) + ": the input is not 16-byte aligned");
    if (chunks < 1 || chunks > kPoolMaxChunks)
        throw Error(std::string(name) + ": " + std::to_string(chunks) + " chunks is outside 1.." +
                    std::to_string(kPoolMaxChunks));
    if (n == 0) return;
    dim3 grid((unsigned)n, (unsigned)chunks);
    launch_kernel(name, split_attention_radix_sum_pool_row_lanes_kernel<T>, grid, kPoolRowLanesThreads, 0, stream, u,
                  partial, hw, radix, c, chunks);
}

template void split_attention_radix_sum_pool_row_lanes<float>(const float*, float*, int, int, int, int, int,
                                                              KernelStream);
template void split_attention_radix_sum_pool_row_lanes<__half>(const __half*, float*, int, int, int, int, int,
                                                               KernelStream);

}  // namespace resnest
