// split_attention_gate_rows.cu: the split-attention gate for small batches, as two kernels whose fc rows are
// spread over many blocks (one block per image puts all of a layer's fc weights, 1.5 MB in layer 4, through
// one SM at batch 1). Each warp takes one weight row and reads it once, lanes striding along it (coalesced),
// for a tile of up to kGateRowsImagesPerTile images held in shared memory; blockIdx.y is the image tile.
//   fc1: a warp per hidden unit j: hidden[n, j] = relu(fc1_w[j] . pooled[n, group(j)] + fc1_b[j]); every block
//        first finishes the pool for its tile (chunk sums added in chunk order, divided by HW).
//   fc2: a warp per output channel t = k*gk + c': the R rows k*R*gk + r*gk + c' against hidden[n, k*ik ...],
//        then softmax over r (sigmoid when R = 1), written radix-major: attn[n, r*C + t].
// Before waiting on the kernel before it, each warp of the first image tile asks L2 for its rows
// (KernelStream::prefetch_weights).
#include "split_attention_gate_rows.cuh"

#include "kernel_common.cuh"
#include "split_attention_radix_softmax_math.cuh"
#include "split_attention_rows.cuh"

namespace resnest {

constexpr int kGateRowsWarps = 8;  // rows (fc1) or channels (fc2) per block

__device__ __forceinline__ float warp_sum_all_lanes(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// dot[t] += row . in[t * stride ...] over `len` elements for the tile's images, lanes striding along the row
// (each lane ends with its partial sums; the caller reduces over the warp).
__device__ __forceinline__ void accumulate_row_dot_tile(const float* row, const float* in, int stride, int len,
                                                        int tile, float* dot) {
    for (int i = threadIdx.x & 31; i < len; i += 32) {
        const float w = row[i];
#pragma unroll
        for (int t = 0; t < kGateRowsImagesPerTile; t++)
            if (t < tile) dot[t] += w * in[t * stride + i];
    }
}

__global__ void split_attention_gate_fc1_warp_per_row(const float* __restrict__ partial,
                                                      const float* __restrict__ fc1_w,
                                                      const float* __restrict__ fc1_b, float* __restrict__ hidden,
                                                      SplitAttentionGateShape s, bool prefetch) {
    extern __shared__ float pooled[];  // (tile, C)
    const int C = s.channels, inter = s.inter, gk = C / s.cardinality, ik = inter / s.cardinality;
    const int n0 = blockIdx.y * kGateRowsImagesPerTile, tile = min(kGateRowsImagesPerTile, s.n - n0);
    const int lane = threadIdx.x & 31, j = blockIdx.x * kGateRowsWarps + (threadIdx.x >> 5);
    if (prefetch && blockIdx.y == 0 && j < inter)
        prefetch_l2_rows(fc1_w, WeightSlice{(long long)j * gk, gk, 1, gk}, lane, 32);
    wait_for_producer_then_release_consumer();
    const float inv_hw = 1.0f / (float)s.hw;
    for (int i = threadIdx.x; i < tile * C; i += blockDim.x) {  // partial (N, chunks, C)
        const int t = i / C, c = i - t * C;
        const float* col = partial + (long long)(n0 + t) * s.chunks * C + c;
        float sum = 0.0f;
        for (int k = 0; k < s.chunks; k++) sum += col[(long long)k * C];
        pooled[i] = sum * inv_hw;
    }
    __syncthreads();

    if (j >= inter) return;
    float dot[kGateRowsImagesPerTile] = {};
    // Row j (gk) against group j / ik of each image's pooled vector.
    accumulate_row_dot_tile(fc1_w + (long long)j * gk, pooled + (j / ik) * gk, C, gk, tile, dot);
#pragma unroll
    for (int t = 0; t < kGateRowsImagesPerTile; t++) {
        if (t >= tile) break;
        const float v = warp_sum_all_lanes(dot[t]);
        if (lane == t) hidden[(long long)(n0 + t) * inter + j] = fmaxf(v + fc1_b[j], 0.0f);
    }
}

__global__ void split_attention_gate_fc2_softmax_warp_per_channel(const float* __restrict__ hidden,
                                                                  const float* __restrict__ fc2_w,
                                                                  const float* __restrict__ fc2_b,
                                                                  float* __restrict__ attn, SplitAttentionGateShape s,
                                                                  bool prefetch) {
    extern __shared__ float hid[];  // (tile, inter)
    const int R = s.radix, C = s.channels, inter = s.inter, gk = C / s.cardinality, ik = inter / s.cardinality;
    const int n0 = blockIdx.y * kGateRowsImagesPerTile, tile = min(kGateRowsImagesPerTile, s.n - n0);
    const int lane = threadIdx.x & 31, t = blockIdx.x * kGateRowsWarps + (threadIdx.x >> 5);
    const int k = t / gk, cp = t - k * gk;
    // Channel t's R rows, gk rows apart from k*R*gk + cp: lane r asks for row r.
    if (prefetch && blockIdx.y == 0 && t < C)
        prefetch_l2_rows(fc2_w, WeightSlice{((long long)k * R * gk + cp) * ik, (long long)gk * ik, R, ik}, lane, 32);
    wait_for_producer_then_release_consumer();
    for (int i = threadIdx.x; i < tile * inter; i += blockDim.x) hid[i] = hidden[(long long)n0 * inter + i];
    __syncthreads();

    if (t >= C) return;
    const float* in = hid + k * ik;  // group k of each image's hidden vector
    float z[kSplitAttentionMaxRadix][kGateRowsImagesPerTile];
#pragma unroll
    for (int r = 0; r < kSplitAttentionMaxRadix; r++) {
        if (r >= R) break;
        const int row_index = k * R * gk + r * gk + cp;
        float dot[kGateRowsImagesPerTile] = {};
        accumulate_row_dot_tile(fc2_w + (long long)row_index * ik, in, inter, ik, tile, dot);
        const float b = fc2_b[row_index];
#pragma unroll
        for (int m = 0; m < kGateRowsImagesPerTile; m++) z[r][m] = warp_sum_all_lanes(dot[m]) + b;
    }
    // Every lane holds every logit; lane m writes image m's R gates.
#pragma unroll
    for (int m = 0; m < kGateRowsImagesPerTile; m++) {
        if (m >= tile) break;
        if (lane != m) continue;
        float* out = attn + (long long)(n0 + m) * R * C + t;
        float v[kSplitAttentionMaxRadix];
#pragma unroll
        for (int r = 0; r < kSplitAttentionMaxRadix; r++)
            if (r < R) v[r] = z[r][m];
        radix_softmax_in_registers(v, R);
#pragma unroll
        for (int r = 0; r < kSplitAttentionMaxRadix; r++)
            if (r < R) out[(long long)r * C] = v[r];
    }
}

size_t split_attention_gate_rows_smem_bytes(const SplitAttentionGateShape& s) {
    const size_t widest = s.channels > s.inter ? (size_t)s.channels : (size_t)s.inter;
    return sizeof(float) * kGateRowsImagesPerTile * widest;
}

void split_attention_gate_rows(const float* partial, const float* fc1_weight, const float* fc1_bias,
                               const float* fc2_weight, const float* fc2_bias, float* hidden, float* attn,
                               const SplitAttentionGateShape& s, KernelStream stream) {
    const char* name = "split_attention_gate_rows";
    radix_rows_check_radix(name, s.radix);
    // choose_gate keeps the form off shapes over the limit.
    split_attention_gate_check_shared_memory(name, split_attention_gate_rows_smem_bytes(s), s);
    const int tiles = (s.n + kGateRowsImagesPerTile - 1) / kGateRowsImagesPerTile;
    const int threads = 32 * kGateRowsWarps;
    launch_kernel("split_attention_gate_fc1_warp_per_row", split_attention_gate_fc1_warp_per_row,
                  dim3((s.inter + kGateRowsWarps - 1) / kGateRowsWarps, tiles), threads,
                  sizeof(float) * kGateRowsImagesPerTile * s.channels, stream, partial, fc1_weight, fc1_bias, hidden, s,
                  stream.prefetch_weights);
    launch_kernel("split_attention_gate_fc2_softmax_warp_per_channel",
                  split_attention_gate_fc2_softmax_warp_per_channel,
                  dim3((s.channels + kGateRowsWarps - 1) / kGateRowsWarps, tiles), threads,
                  sizeof(float) * kGateRowsImagesPerTile * s.inter, stream, hidden, fc2_weight, fc2_bias, attn, s,
                  stream.prefetch_weights);
}

}  // namespace resnest
