// split_attention_pool.cu: radix sum + global pool, per chunk of positions (split_attention_pool_plan.h).
// A block covers 32 channel lanes of one image (blockIdx.x: image and lane block) and one chunk of its
// positions (blockIdx.y) with 8 rows of threads; each thread walks every 8th position of the chunk and adds
// all R splits of its channel(s) there, so U is read exactly once, coalesced across the lanes. U's splits
// come through per-split row pointers (split_attention_rows.cuh), interleaved in one tensor or apart. fp16
// with an even channel count loads half2 (two channels a lane). Row partial sums meet in shared memory; the
// block writes its chunk's plain sum.
#include "split_attention_pool.cuh"

#include "kernel_common.cuh"
#include "split_attention_pool_plan.h"

namespace resnest {

// One channel per lane, any storage type and channel count.
template <typename T>
__global__ void split_attention_radix_sum_pool_chunked(const __grid_constant__ RadixRows<T> u,
                                                       float* __restrict__ partial, int hw, int radix, int c,
                                                       int chunks, int lane_blocks) {
    wait_for_producer_then_release_consumer();
    __shared__ float rows[kPoolRows][kPoolLanes + 1];
    const int ch = (blockIdx.x % lane_blocks) * kPoolLanes + threadIdx.x;
    const long long n = blockIdx.x / lane_blocks;
    const int chunk = blockIdx.y, per = split_attention_pool_chunk_positions(hw, chunks);
    const int p0 = chunk * per, p1 = min(hw, p0 + per);
    float sum = 0.0f;
    if (ch < c)
        for (int p = p0 + threadIdx.y; p < p1; p += kPoolRows) {
            const long long at = (n * hw + p) * u.row + ch;  // channel ch of position p, in every split
            for (int r = 0; r < radix; r++) sum += load_readonly_as_float(u.split[r] + at);
        }
    rows[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && ch < c) {
        float total = 0.0f;
        for (int k = 0; k < kPoolRows; k++) total += rows[k][threadIdx.x];
        partial[(n * chunks + chunk) * c + ch] = total;
    }
}

// fp16, C even: a lane takes channels 2*pair and 2*pair + 1 with one half2 load per split and position.
// Every split 4-byte aligned (the launcher checks).
__global__ void split_attention_radix_sum_pool_chunked_half2(const __grid_constant__ RadixRows<__half> u,
                                                             float* __restrict__ partial, int hw, int radix, int c,
                                                             int chunks, int lane_blocks) {
    wait_for_producer_then_release_consumer();
    __shared__ float2 rows[kPoolRows][kPoolLanes + 1];
    const int pair = (blockIdx.x % lane_blocks) * kPoolLanes + threadIdx.x;
    const long long n = blockIdx.x / lane_blocks;
    const int chunk = blockIdx.y, per = split_attention_pool_chunk_positions(hw, chunks);
    const int p0 = chunk * per, p1 = min(hw, p0 + per);
    float2 sum = make_float2(0.0f, 0.0f);
    if (2 * pair < c)
        for (int p = p0 + threadIdx.y; p < p1; p += kPoolRows) {
            const long long at = (n * hw + p) * u.row + 2 * pair;  // channels 2*pair, 2*pair + 1 of position p
            for (int r = 0; r < radix; r++) {
                float2 v = load_readonly_half2_as_float2(u.split[r] + at);
                sum.x += v.x, sum.y += v.y;
            }
        }
    rows[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && 2 * pair < c) {
        float2 total = make_float2(0.0f, 0.0f);
        for (int k = 0; k < kPoolRows; k++) total.x += rows[k][threadIdx.x].x, total.y += rows[k][threadIdx.x].y;
        float* out = partial + (n * chunks + chunk) * c + 2 * pair;
        out[0] = total.x, out[1] = total.y;
    }
}

template <typename T>
void split_attention_radix_sum_pool(const RadixRows<T>& u, float* partial, int n, int hw, int radix, int c,
                                    int chunks, KernelStream stream) {
    radix_rows_check_radix("split_attention_radix_sum_pool", radix);
    split_attention_pool_check_chunks("split_attention_radix_sum_pool", chunks);
    // half2 loads need every split (and row) 4-byte aligned; the one-channel kernel takes any chunk count too.
    const bool paired = split_attention_pool_paired<T>(c) && radix_rows_aligned(u, radix, 4);
    // blockIdx.x: image and lane block (any batch size), blockIdx.y: chunk.
    const int lane_blocks = split_attention_pool_lane_blocks(c, paired);
    dim3 grid((unsigned)(lane_blocks * (long long)n), chunks), block(kPoolLanes, kPoolRows);
    if constexpr (std::is_same<T, __half>::value) {
        if (paired) {
            launch_kernel("split_attention_radix_sum_pool_chunked_half2", split_attention_radix_sum_pool_chunked_half2,
                          grid, block, 0, stream, u, partial, hw, radix, c, chunks, lane_blocks);
            return;
        }
    }
    launch_kernel("split_attention_radix_sum_pool_chunked", split_attention_radix_sum_pool_chunked<T>, grid, block, 0,
                  stream, u, partial, hw, radix, c, chunks, lane_blocks);
}

template void split_attention_radix_sum_pool<float>(const RadixRows<float>&, float*, int, int, int, int, int,
                                                    KernelStream);
template void split_attention_radix_sum_pool<__half>(const RadixRows<__half>&, float*, int, int, int, int, int,
                                                     KernelStream);

}  // namespace resnest
