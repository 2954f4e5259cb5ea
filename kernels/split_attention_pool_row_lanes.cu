// split_attention_pool_row_lanes.cu: radix sum + global pool per chunk of positions, 16 bytes a load
// (split_attention_pool_row_lanes.cuh). A block takes one image (blockIdx.x) and one chunk of its positions
// (blockIdx.y). Its threads are lanes x rows: a lane is 16 bytes of the R*C channel row (8 halves or 4
// floats), R*C / V lanes cover a position's whole row, and the rows of threads take every rows-th position
// of the chunk, four at a time (four 16-byte loads in flight a thread). Each thread keeps V float sums; the
// block then puts them in shared memory (rows, R*C) and one thread per channel adds its rows and its R
// splits in a fixed order, writing the chunk's plain sum (the gate adds the chunks and divides). U's splits
// come through per-split row pointers (split_attention_rows.cuh): where C is whole lanes each lane lies in
// one split and loads from it, whether the splits are interleaved in one tensor or apart; otherwise (one
// interleaved tensor only, the launcher checks) a lane may straddle two splits and loads along the R*C row.
#include "split_attention_pool_row_lanes.cuh"

#include <string>

#include "kernel_common.cuh"

namespace resnest {

template <typename T>
__global__ void split_attention_radix_sum_pool_row_lanes_kernel(const __grid_constant__ RadixRows<T> u,
                                                                float* __restrict__ partial, int hw, int radix, int c,
                                                                int chunks) {
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
        // This lane's 16 bytes of position 0 of image n: channels first .. first + V - 1 of the R*C row, in
        // split first / C where C is whole lanes, else (split 0) along the one interleaved tensor's row.
        const int first = lane * V;
        const int split = c % V == 0 ? first / c : 0;
        const int stride = (int)u.row;  // from one position's row to the next: R*C or C, <= 256 lanes of V
        const T* x = u.split[split] + (first - split * c) + n * hw * stride;
        int p = p0 + row;
        for (; p + 3 * rows < p1; p += 4 * rows) {
            float a[V], b[V], d[V], e[V];
            load16_readonly_as_float(x + (long long)p * stride, a);
            load16_readonly_as_float(x + (long long)(p + rows) * stride, b);
            load16_readonly_as_float(x + (long long)(p + 2 * rows) * stride, d);
            load16_readonly_as_float(x + (long long)(p + 3 * rows) * stride, e);
            for (int k = 0; k < V; k++) acc[k] += (a[k] + b[k]) + (d[k] + e[k]);
        }
        for (; p < p1; p += rows) {
            float a[V];
            load16_readonly_as_float(x + (long long)p * stride, a);
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
void split_attention_radix_sum_pool_row_lanes(const RadixRows<T>& u, float* partial, int n, int hw, int radix, int c,
                                              int chunks, KernelStream stream) {
    const char* name = "split_attention_radix_sum_pool_row_lanes";
    radix_rows_check_radix(name, radix);
    if (!split_attention_pool_row_lanes_fits_for<T>(radix, c))
        throw Error(std::string(name) + ": " + std::to_string(radix) + " x " + std::to_string(c) +
                    " channels are not whole 16-byte lanes in one block of " + std::to_string(kPoolRowLanesThreads));
    const bool apart = !radix_rows_are_interleaved(u, radix, c);
    if (apart && !split_attention_pool_row_lanes_fits_for<T>(radix, c, true))
        throw Error(std::string(name) + ": the radix splits are apart and " + std::to_string(c) +
                    " channels are not whole 16-byte lanes (a lane would straddle two splits)");
    // The kernel loads from every split where C is whole lanes, else from split 0 along the interleaved row.
    if (!radix_rows_aligned(u, c % kVec16<T> == 0 ? radix : 1, 16))
        throw Error(std::string(name) + ": the input is not 16-byte aligned (a split, or the row stride)");
    split_attention_pool_check_chunks(name, chunks);
    if (n == 0) return;
    dim3 grid((unsigned)n, (unsigned)chunks);
    launch_kernel(name, split_attention_radix_sum_pool_row_lanes_kernel<T>, grid, kPoolRowLanesThreads, 0, stream, u,
                  partial, hw, radix, c, chunks);
}

template void split_attention_radix_sum_pool_row_lanes<float>(const RadixRows<float>&, float*, int, int, int, int,
                                                              int, KernelStream);
template void split_attention_radix_sum_pool_row_lanes<__half>(const RadixRows<__half>&, float*, int, int, int, int,
                                                               int, KernelStream);

}  // namespace resnest
