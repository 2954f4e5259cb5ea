// cpu_ops.h: the CPU reference backend's operators, one image at a time, float32 NCHW.
//
// These are the oracle every GPU kernel is checked against, so they are written to be read: direct loops,
// double accumulation where it costs nothing (pooling, attention, classifier), and im2col + a blocked
// GEMM for convolution, where speed matters for test time. Pointers carry their shape in a comment.
#pragma once
#include <cstddef>
#include <cstdint>

#include "graph.h"

namespace resnest {

// C = A * B (+ C when accumulate), row-major; A (M, K) lda, B (K, N) ldb, C (M, N) ldc.
// Blocked and packed for the vector unit; splits the work over `threads` threads.
void cpu_sgemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
               bool accumulate, int threads);

// Scratch floats conv2d_im2col_gemm needs for one image (0 for a 1x1, stride-1, unpadded conv).
size_t conv2d_workspace_floats(const Conv2dAttrs& a, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w);

// y = conv(x, w) + bias, one image. bias may be null.
void conv2d_im2col_gemm(const Conv2dAttrs& a, const float* x,  // (Cin, H, W)
                        int64_t in_h, int64_t in_w,
                        const float* w,     // (Cout, Cin/groups, KH, KW)
                        const float* bias,  // (Cout) or null
                        float* y,           // (Cout, OH, OW)
                        int64_t out_h, int64_t out_w, float* workspace, int threads);

// The same convolution by direct summation in double: the check for conv2d_im2col_gemm.
void conv2d_direct_double(const Conv2dAttrs& a, const float* x, int64_t in_h, int64_t in_w, const float* w,
                          const float* bias, float* y, int64_t out_h, int64_t out_w);

// y = x * scale[c] + shift[c] (inference batch norm with scale = gamma / sqrt(var + eps) and
// shift = beta - mean * scale precomputed in double). x and y may alias.
void batch_norm_affine(const float* x,  // (C, HW)
                       const float* scale, const float* shift, int64_t channels, int64_t hw, float* y);

void relu_inplace(float* x, int64_t count);
void add_tensors(const float* a, const float* b, float* y, int64_t count);  // y may alias a or b

// Max pooling; padded cells never win. Average pooling with PyTorch's divisor rule: with
// count_include_pad the window clipped to the padded input, otherwise the valid cells only.
void max_pool2d(const Pool2dAttrs& a, const float* x,  // (C, H, W)
                int64_t channels, int64_t in_h, int64_t in_w, float* y, int64_t out_h, int64_t out_w);
void avg_pool2d(const Pool2dAttrs& a, const float* x, int64_t channels, int64_t in_h, int64_t in_w, float* y,
                int64_t out_h, int64_t out_w);
void global_avg_pool(const float* x,  // (C, HW)
                     int64_t channels, int64_t hw, float* y /* (C) */);

// Split attention (shared spec §3) for one image: radix sum + global pool, fc1 -> BN -> ReLU -> fc2,
// radix softmax (sigmoid when radix is 1) with the cardinality transpose, weighted sum of the splits.
struct SplitAttentionWeights {
    const float* fc1_weight;  // (inter, channels / K)
    const float* fc1_bias;    // (inter) or null
    const float* bn_scale;    // (inter) gamma / sqrt(var + eps)
    const float* bn_shift;    // (inter) beta - mean * scale
    const float* fc2_weight;  // (radix * channels, inter / K)
    const float* fc2_bias;    // (radix * channels)
};
void split_attention(const SplitAttentionAttrs& a, const SplitAttentionWeights& w,
                     const float* u,  // (radix * channels, HW)
                     int64_t hw, float* y /* (channels, HW) */);
// The same with U's radix splits apart: splits[r] is split r, (channels, HW) (split_radix_convolutions).
void split_attention(const SplitAttentionAttrs& a, const SplitAttentionWeights& w, const float* const* splits,
                     int64_t hw, float* y /* (channels, HW) */);

// y = W x + b, double accumulation.
void linear(const LinearAttrs& a, const float* x /* (in) */, const float* w /* (out, in) */,
            const float* bias /* (out) or null */, float* y /* (out) */);

// Softmax over a vector, max-subtracted, in double.
void softmax_vector(const float* x, int64_t count, float* y);

}  // namespace resnest
