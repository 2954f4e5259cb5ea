// split_attention_gate.cu: one block of 1024 threads per image. It first finishes the pool (the chunk sums
// added in chunk order, divided by HW). The pooled vector, fc1's outputs and fc2's
// outputs live in shared memory; each fully connected row is one warp's dot product (lanes stride along the
// row, so weight reads are coalesced) finished with a shuffle reduction; then one thread per (k, c')
// takes the softmax over the R splits and writes them in U's radix-major order. Before waiting on the
// kernel before it, image 0's block asks L2 for the fc weights (KernelStream::prefetch_weights).
#include "split_attention_gate.cuh"

#include "kernel_common.cuh"
#include "split_attention_radix_softmax_math.cuh"

namespace resnest {

constexpr int kGateThreads = 1024;  // 32 warps: at batch 1 one block does all the work

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__global__ void __launch_bounds__(kGateThreads)
    split_attention_gate_kernel(const float* __restrict__ partial, const float* __restrict__ fc1_w,
                                const float* __restrict__ fc1_b, const float* __restrict__ fc2_w,
                                const float* __restrict__ fc2_b, float* __restrict__ attn, SplitAttentionGateShape s,
                                bool prefetch) {
    extern __shared__ float smem[];
    const int R = s.radix, K = s.cardinality, C = s.channels, inter = s.inter;
    const int gk = C / K, ik = inter / K, rc = R * C;
    if (prefetch && blockIdx.x == 0) {  // image 0's block asks L2 for both layers' rows, a row a thread
        prefetch_l2_rows(fc1_w, WeightSlice{0, gk, inter, gk}, threadIdx.x, blockDim.x);
        prefetch_l2_rows(fc2_w, WeightSlice{0, ik, rc, ik}, threadIdx.x, blockDim.x);
    }
    wait_for_producer_then_release_consumer();
    float* pooled = smem;         // (C)
    float* hidden = pooled + C;   // (inter)
    float* logits = hidden + inter;  // (R*C), cardinal-major
    const long long n = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;

    const float inv_hw = 1.0f / (float)s.hw;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {  // partial (N, chunks, C)
        const float* col = partial + n * s.chunks * (long long)C + i;
        float sum = 0.0f;
        for (int k = 0; k < s.chunks; k++) sum += col[(long long)k * C];
        pooled[i] = sum * inv_hw;
    }
    __syncthreads();

    for (int j = warp; j < inter; j += warps) {  // fc1 row j reads group k = j / ik
        const float* row = fc1_w + (long long)j * gk;
        const float* in = pooled + (j / ik) * gk;
        float dot = 0.0f;
        for (int i = lane; i < gk; i += 32) dot += row[i] * in[i];
        dot = warp_sum(dot);
        if (lane == 0) hidden[j] = fmaxf(dot + fc1_b[j], 0.0f);
    }
    __syncthreads();

    for (int j = warp; j < rc; j += warps) {  // fc2 row j reads group k = j / (R*gk)
        const float* row = fc2_w + (long long)j * ik;
        const float* in = hidden + (j / (R * gk)) * ik;
        float dot = 0.0f;
        for (int i = lane; i < ik; i += 32) dot += row[i] * in[i];
        dot = warp_sum(dot);
        if (lane == 0) logits[j] = dot + fc2_b[j];
    }
    __syncthreads();

    float* out = attn + n * rc;
    for (int t = threadIdx.x; t < C; t += blockDim.x) {  // t = k*gk + c'
        int k = t / gk, cp = t - k * gk;
        const float* z = logits + k * R * gk + cp;  // z[r * gk]
        float v[kSplitAttentionMaxRadix];
#pragma unroll
        for (int r = 0; r < kSplitAttentionMaxRadix; r++)
            if (r < R) v[r] = z[r * gk];
        radix_softmax_in_registers(v, R);
#pragma unroll
        for (int r = 0; r < kSplitAttentionMaxRadix; r++)
            if (r < R) out[r * C + t] = v[r];
    }
}

size_t split_attention_gate_smem_bytes(const SplitAttentionGateShape& s) {
    return sizeof(float) * ((size_t)s.channels + s.inter + (size_t)s.radix * s.channels);
}

void split_attention_gate_check_shared_memory(const char* kernel, size_t bytes, const SplitAttentionGateShape& s) {
    if (bytes > 48 * 1024)
        throw Error(std::string(kernel) + ": " + std::to_string(bytes) + " bytes of shared memory for " +
                    std::to_string(s.channels) + " channels, over 48 KiB");
}

void split_attention_gate_block_per_image(const float* partial, const float* fc1_weight, const float* fc1_bias,
                                          const float* fc2_weight, const float* fc2_bias, float* attn,
                                          const SplitAttentionGateShape& s, KernelStream stream) {
    const char* name = "split_attention_gate_block_per_image";
    radix_rows_check_radix(name, s.radix);  // its loops stop at kSplitAttentionMaxRadix: a larger radix stays unwritten
    split_attention_gate_check_shared_memory(name, split_attention_gate_smem_bytes(s), s);
    if (s.n < 1) return;
    launch_kernel(name, split_attention_gate_kernel, s.n, kGateThreads,
                  split_attention_gate_smem_bytes(s), stream, partial, fc1_weight, fc1_bias, fc2_weight, fc2_bias,
                  attn, s, stream.prefetch_weights);
}

}  // namespace resnest
