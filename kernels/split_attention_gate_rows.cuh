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

// Whether the two-kernel gate is the one to run at batch n on a device with sm_count multiprocessors: one
// block per image leaves most of them idle (and one SM reading all the weights sets the time) below that.
inline bool split_attention_gate_rows_preferred(int n, int sm_count) { return 2 * n < sm_count; }

// Shared memory each of the two kernels needs, bytes (the caller checks it against the device's limit).
size_t split_attention_gate_rows_smem_bytes(const SplitAttentionGateShape& s);

// partial (N, chunks, C), the fc weights and attn as for split_attention_gate_block_per_image;
// hidden (N, inter) float: scratch between the two kernels.
void split_attention_gate_rows(const float* partial, const float* fc1_weight, const float* fc1_bias,
                               const float* fc2_weight, const float* fc2_bias, float* hidden, float* attn,
                               const SplitAttentionGateShape& s, KernelStream stream);

}  // namespace resnest
