// split_attention_gate_rows.cuh: split attention, step 2 of 3, for batches too small to fill the GPU with one
// block per image: the gate as two kernels that spread the fc rows over many blocks, a warp per row, each
// warp reading its row once for a tile of up to kGateRowsImagesPerTile images.
//   1. split_attention_gate_fc1_warp_per_row: finish the pool, fc1 (BN folded) -> ReLU -> hidden (N, inter)
//   2. split_attention_gate_fc2_softmax_warp_per_channel: fc2's R rows of one output channel -> softmax over
//      the R splits (sigmoid when R = 1) -> attn, in the same layout as split_attention_gate_block_per_image.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "split_attention_gate.cuh"

namespace resnest {

constexpr int kGateRowsImagesPerTile = 8;  // images whose dot products share one read of a weight row

// Whether the two-kernel gate should be the faster at batch n on a device with sm_count multiprocessors,
// for fc weights of fc_weight_bytes (fc1 + fc2, float): below half a wave of images one block per image
// leaves most SMs idle, and one SM reading all the weights sets the time, unless the weights are small. The
// CUDA backend times both forms at each batch size and follows this rule where they come within 2 %. The gate lab
// (H200, 2026-11-28): layer 4 (1.5 MB) 45 -> 9 us at batch 1, 47 -> 20 us at 32, 47 -> 50 us at 128; layer 3
// (393 KB) 18 -> 10 us at batch 1; layer 2 (98 KB) and layer 1 (24 KB) were as fast or faster in one block.
constexpr long long kGateRowsMinWeightBytes = 256 << 10;
inline long long split_attention_gate_fc_weight_bytes(const SplitAttentionGateShape& s) {
    const long long gk = s.channels / s.cardinality, ik = s.inter / s.cardinality;
    return 4LL * s.inter * gk + 4LL * s.radix * s.channels * ik;  // fc1 (inter, gk) + fc2 (R*C, ik), float
}
inline bool split_attention_gate_rows_preferred(const SplitAttentionGateShape& s, int sm_count) {
    return 2 * s.n < sm_count && split_attention_gate_fc_weight_bytes(s) >= kGateRowsMinWeightBytes;
}

// Shared memory each of the two kernels needs, bytes (the caller checks it against the device's limit).
size_t split_attention_gate_rows_smem_bytes(const SplitAttentionGateShape& s);

// partial (N, chunks, C), the fc weights and attn as for split_attention_gate_block_per_image;
// hidden (N, inter) float: scratch between the two kernels.
void split_attention_gate_rows(const float* partial, const float* fc1_weight, const float* fc1_bias,
                               const float* fc2_weight, const float* fc2_bias, float* hidden, float* attn,
                               const SplitAttentionGateShape& s, KernelStream stream);

}  // namespace resnest
