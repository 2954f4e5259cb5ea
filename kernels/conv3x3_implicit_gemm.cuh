// conv3x3_implicit_gemm.cuh: a 3x3, stride-1, pad-1 convolution with G groups, fp16 NHWC with float
// accumulation, as ONE implicit-GEMM kernel (no im2col matrix): the split-attention convolution of both
// ResNeSt models, which at small batches otherwise runs as an im2col gather plus a cuBLASLt matmul.
//   y (N, H, W, Cout) = relu?( conv3x3(x (N, H, W, Cin), w (Cout, 3, 3, Cin/G)) + bias )
// The matrices it multiplies and how K is split: conv3x3_implicit_gemm_geometry.h. Not yet measured on a
// GPU: the runtime times it beside the other ways only when asked (RESNEST_IMPLICIT_GEMM).
#pragma once
#include <cuda_fp16.h>

#include <cstddef>

#include "conv3x3_implicit_gemm_geometry.h"
#include "kernel_stream.h"

namespace resnest {

// Why the kernel cannot run s on these buffers ("" when it can): the shape (fits(), and pool_fits() where
// s.pool_radix > 0), or x, w, y not 16-byte aligned (its loads and stores are 16 bytes).
const char* conv3x3_implicit_gemm_refusal(const ImplicitConv3x3Shape& s, const void* x, const void* w, const void* y);

// The float partial sums a launch with `splits` > 1 writes: (splits, tiles, 64*64) floats; 0 for one split.
size_t conv3x3_implicit_gemm_partial_bytes(const ImplicitConv3x3Shape& s, int splits);

// Launches the kernel: grid (tiles_m, tiles_n, G * splits) of 128 threads. bias: (Cout) float, or null.
// With splits > 1: partial holds partial_bytes, and arrivals holds s.tiles() ints that are zero before the
// launch and zero again after it (the last block of each tile resets its count), so consecutive launches on
// one stream may share them. With s.pool_radix > 0 it also writes split attention's pool partials
// (N, s.pool_chunks(), s.pool_channels()) float to `pool`: each is the sum over one M tile of one channel of
// y as written (conv3x3_implicit_gemm_geometry.h), every one of them each launch. Throws resnest::Error on a
// shape or buffer it refuses, or splits outside 1..min(16, k_steps).
void conv3x3_implicit_gemm(const __half* x, const __half* w, const float* bias, __half* y,
                           const ImplicitConv3x3Shape& s, int splits, bool relu, float* partial, int* arrivals,
                           float* pool, KernelStream stream);

}  // namespace resnest
