// linear_rows.cuh: the classifier (a fully connected layer) for small batches, in one kernel with its bias:
//   y (N, out) = x (N, in) W^T + b,   W (out, in)
// a warp per output row, spread over many blocks; each warp reads its weight row once for a tile of up to
// kLinearRowsImagesPerTile images. cuBLAS's GEMM with a second kernel for the bias is the other way; the
// CUDA backend times both at each batch size and keeps the faster (ResNeSt's 2048 -> 1000 classifier at
// batch 1 reads 4 MB of fp16 weights, which one pass of 16-byte loads over 125 blocks streams at memory speed).
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"

namespace resnest {

constexpr int kLinearRowsImagesPerTile = 8;  // images whose dot products share one read of a weight row
constexpr int kLinearRowsWarps = 8;          // output rows per block

// Whether the rows read as 16-byte vectors: `in` a multiple of 16 bytes' elements and x, W 16-byte aligned
// (otherwise the kernel reads one element at a time: still correct, slower).
bool linear_rows_vectorized(const void* x, const void* w, int in, int element_bytes);

// x (n, in) T, w (out, in) T, bias (out) float or null, y (n, out) T; float accumulation.
template <typename T>
void linear_bias_warp_per_output_row(const T* x, const T* w, const float* bias, T* y, int n, int in, int out,
                                     KernelStream stream);

}  // namespace resnest
