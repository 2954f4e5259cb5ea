// split_attention_combine_conv1x1.cuh: split attention's last step, the weighted radix sum, folded into the
// 1x1 convolution that reads it (conv3 of a ResNeSt bottleneck), fp16 NHWC with float accumulation, as ONE
// kernel:
//   a (N, HW, C)    = half( sum_r attn[n, r*C + c] * u[n, p, r*C + c] )
//   y (N, HW, Cout) = relu?( a W^T + bias + z )
// where the runtime otherwise runs the combine kernel (split_attention_combine.cuh) and then conv3's matmul.
// With s.pool (the avd pool after attention) a averages each output cell's window of u per split before the
// gates; with attn null (radix 1, gates of one) and s.pool it is an average pool then a 1x1 convolution: the
// downsample path's avg_pool2d + conv. The problem and its split plan: split_attention_combine_conv1x1_plan.h.
// Not yet measured on a GPU: the runtime times it against the kernels it replaces only when asked
// (RESNEST_IMPLICIT_GEMM).
#pragma once
#include <cuda_fp16.h>

#include <cstddef>

#include "kernel_stream.h"
#include "split_attention_combine_conv1x1_plan.h"

namespace resnest {

// Why the kernel cannot run s on these buffers ("" when it can): the shape (fits()), u, attn, w, z or y not
// 16-byte aligned (its loads and stores are 16 bytes), or attn null with radix > 1.
const char* split_attention_combine_conv1x1_refusal(const CombineConv1x1Shape& s, const void* u, const void* attn,
                                                    const void* w, const void* z, const void* y);

// The float partial sums a launch with `splits` > 1 writes: (splits, tiles, 64*64) floats; 0 for one split.
size_t split_attention_combine_conv1x1_partial_bytes(const CombineConv1x1Shape& s, int splits);

// Launches it: grid (tiles_m, tiles_n, splits) of 128 threads. u (N, HW, R*C) with the radix splits
// interleaved in each row (pooled: N * in_h * in_w rows), attn (N, R*C) float or null, w (Cout, C) as
// stored, bias (Cout) float or null, z (N, HW, Cout) or null, y (N, HW, Cout). With splits > 1: partial
// holds partial_bytes and arrivals s.tiles() ints, zero before the launch and zero again after it. Throws
// resnest::Error on a shape or buffer it refuses, or splits outside 1..min(16, k_steps).
void split_attention_combine_conv1x1(const __half* u, const float* attn, const __half* w, const float* bias,
                                     const __half* z, __half* y, const CombineConv1x1Shape& s, int splits, bool relu,
                                     float* partial, int* arrivals, KernelStream stream);

}  // namespace resnest
