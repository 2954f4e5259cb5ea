// conv_as_gemm.h: a 1x1, stride-1, unpadded, ungrouped convolution over NHWC activations is one matrix
// product, y (N*H*W, Cout) = x (N*H*W, Cin) * w (Cout, Cin)^T, which the CUDA backend can run as a single
// cuBLASLt matmul with the bias, the residual and the ReLU in its epilogue. This file says when that holds
// and what the product is in cuBLAS's column-major terms. Host code only (no CUDA types), tested on the CPU.
//
// Column-major view of the row-major NHWC/OHWI buffers (cuBLAS computes D = op(A) op(B) + C):
//   A = filter, (Cin x Cout) column-major, lda = Cin, used transposed   -> op(A) (Cout x Cin)
//   B = x,      (Cin x N*H*W) column-major, ldb = Cin, used as is        -> op(B) (Cin x N*H*W)
//   C = z, D = y, (Cout x N*H*W) column-major, ldc = Cout; the bias has one value per row of D.
#pragma once
#include <cstdint>
#include <vector>

#include "graph.h"
#include "im2col_shape.h"  // kernels/

namespace resnest {

struct ConvAsGemm {
    int64_t m = 0;    // rows of D: output channels
    int64_t n = 0;    // columns of D: output positions N*H*W
    int64_t k = 0;    // the reduction: input channels
    int64_t lda = 0;  // filter: Cin
    int64_t ldb = 0;  // x: Cin
    int64_t ldc = 0;  // z and y: Cout
    // A strided batch of products (the groups of a grouped convolution): batch b reads A + b*stride_a,
    // B + b*stride_b and writes C/D + b*stride_c (elements); the bias too, by m.
    int64_t batch = 1;
    int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

// The elements of the filter (A) the product reads, from its first to one past its last: every group's in a
// strided batch. What the im2col gather asks L2 for ahead of the matmul (kernels/im2col_nhwc.cuh).
inline int64_t conv_gemm_filter_extent(const ConvAsGemm& g) { return (g.batch - 1) * g.stride_a + g.m * g.lda; }

// The elements of a convolution's filter as stored (Cout, KH, KW, Cin/G), or of its dense form (Cin instead
// of Cin/G): what a way that runs it reads of the weights.
inline int64_t conv_filter_elements(const Conv2dAttrs& a, bool dense) {
    return (int64_t)a.out_channels * a.kernel_h * a.kernel_w * (dense ? a.in_channels : a.in_channels / a.groups);
}

// True for a 1x1 convolution with stride 1, no padding, dilation 1 and one group.
bool conv_runs_as_gemm(const Conv2dAttrs& a);

// True for a 3x3 convolution with stride 1, padding 1 and dilation 1, any groups: the window the implicit-GEMM
// kernel computes (kernels/conv3x3_implicit_gemm.cuh; its channel counts: ImplicitConv3x3Shape::fits).
bool conv_window_is_3x3_same(const Conv2dAttrs& a);

// The product for `batch` images of h x w; throws resnest::Error when conv_runs_as_gemm is false.
ConvAsGemm conv_as_gemm(const Conv2dAttrs& a, int batch, int h, int w);

// Any other convolution is the same product over its im2col matrix: the input windows gathered into
// cols (N*OH*OW, KH*KW*Cin), one row per output position, columns in the dense filter's (kh, kw, ci) order
// (OHWI, groups expanded to the block-diagonal dense filter), zeros where a window leaves the input. Then
// k = KH*KW*Cin, lda = ldb = k, and B is cols instead of x.
// With group_major (a grouped convolution run as one product per group, without the dense filter's zero
// blocks) the columns are in (g, kh, kw, ci') order instead, ci' < Cin/G, and conv_as_grouped_im2col_gemm
// is the strided batch of G products: group g's filter rows (Cout/G x KH*KW*Cin/G, the grouped OHWI filter
// as stored), its contiguous KH*KW*Cin/G columns of each cols row (ldb = KH*KW*Cin), and its Cout/G output
// channels of y (ldc = Cout).
Im2colShape im2col_shape(const Conv2dAttrs& a, int batch, int in_h, int in_w, int out_h, int out_w,
                         bool group_major = false);
ConvAsGemm conv_as_im2col_gemm(const Im2colShape& s, int out_channels);
ConvAsGemm conv_as_grouped_im2col_gemm(const Im2colShape& s, int out_channels);

// The gather on the host, element for element what the CUDA kernel (kernels/im2col_nhwc.cu) writes:
// x (N, H, W, C) -> cols (N*OH*OW, KH*KW*C), in s's column order.
void im2col_nhwc_host(const float* x, const Im2colShape& s, float* cols);

// Split-K: a product whose output tiles fill under one wave of the GPU (cuBLASLt's wavesCount < 1, the
// small batches) leaves SMs idle while each tile walks the whole reduction; cutting k into s parts runs
// s times the tiles. The split counts worth timing for a candidate with `waves` waves: powers of two from
// 2 to 32 that keep the grid within two waves (waves * s <= 2) and every part at least kMinSplitDepth deep.
// None when the candidate already fills a wave.
constexpr int64_t kMinSplitDepth = 128;
std::vector<int> split_k_candidates(int64_t k, float waves);

// The split-K reductions this runtime lets a cuBLASLt convolution use (cuBLASLt's cublasLtReductionScheme_t
// values): partial sums in float, the compute type (2), always; reduced in place through the output (1) only
// where the output is float too (fp16 would round every partial sum to half) and the product is not a
// strided batch (one product per group: its products' columns interleave in D, and cuBLASLt documents no
// in-place reduction there); in the output type (4) never. An unsplit algorithm reduces nothing. It holds
// for the splits the choice adds and for those cuBLASLt's heuristic returns already split.
constexpr int kReductionInPlace = 1, kReductionComputeType = 2, kReductionOutputType = 4;
inline bool split_k_reduction_allowed(bool fp16_output, int64_t batch, int split_k, int scheme) {
    if (split_k <= 1) return true;
    if (scheme == kReductionComputeType) return true;
    return scheme == kReductionInPlace && !fp16_output && batch == 1;
}

// A cuBLASLt choice in the algorithm cache: the heuristic rank (ConvAlgoChoice::algo) and, packed into
// ConvAlgoChoice::math_type, the split count and cuBLASLt reduction scheme (0: the candidate as returned).
inline int pack_split_k(int split_k, int scheme) { return split_k > 1 ? split_k * 16 + (scheme & 15) : 0; }
inline int unpacked_split_k(int packed) { return packed >= 32 ? packed / 16 : 1; }
inline int unpacked_scheme(int packed) { return packed >= 32 ? packed % 16 : 0; }

}  // namespace resnest
