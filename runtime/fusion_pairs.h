// fusion_pairs.h: which neighbours of a split-attention node the CUDA backend may fold its steps into, read
// off the graph the passes left (host code, unit-tested on the committed models):
// - the convolution that writes its input U, whose epilogue can also pool U
//   (kernels/conv3x3_implicit_gemm.cuh, pool_radix);
// - the 1x1 convolution that reads its output, which can form the weighted radix sum (and the avd pool
//   fused after it) while it loads its operand (kernels/split_attention_combine_conv1x1.cuh);
// and the 1x1 convolution that reads an average pool's output (the downsample path), which the same kernel
// can pool for.
// Both kernels reach the attention's buffers through the context's one pool-partials and one gates buffer,
// shared by every split-attention node, so no other split-attention node may run between the pair.
// Whether a pair is taken at a batch size is the backend's choice (shapes, the convolution's way, timing).
// Also the run of library calls right after a node, whose weights our kernel there asks L2 for.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "graph.h"
#include "planner.h"

namespace resnest {

// The conv2d node that writes split attention node i's input U, where U is one tensor (the radix splits
// interleaved, not apart: split_radix_convolutions), read by nothing else, with R*C channels; else -1.
int conv_writing_split_attention_input(const Graph& g, int i);

// The conv2d node that reads split attention node i's output as its first input and is its only reader,
// where that is a 1x1 convolution (stride 1, no padding, one group: conv_runs_as_gemm) of C input channels
// and U is one tensor; else -1. An avd pool fused into node i (fused_avg_pool) goes with the weighted sum.
int conv_reading_split_attention_output(const Graph& g, int i);

// The conv2d node that reads avg_pool2d node i's output as its first input and is its only reader, where
// that is a 1x1 convolution (conv_runs_as_gemm) and the window square; else -1. The downsample path's average
// pool, which the same kernel takes while it loads its operand (gates of one).
int conv_reading_avg_pool_output(const Graph& g, int i);

// The 1x1 convolution that can take node i's work as it loads its operand: split attention's weighted sum
// (conv_reading_split_attention_output) or an average pool (conv_reading_avg_pool_output); else -1.
int conv1x1_folding(const Graph& g, int i);

// The reads that folding every such weighted sum or average pool into its convolution adds: U (the pool's
// input) read by that convolution, past the node it folds. A memory plan made with them (plan_memory's
// extra_reads) keeps that tensor until then.
std::vector<ExtraRead> conv1x1_fold_reads(const Graph& g);

// Every fold above in the graph, one line each, in node order: "<node>: <what> into <conv>", <what> being
// "pool" (split attention's, into the convolution writing U: only where that runs as the implicit GEMM),
// "weighted sum" (+ " + avd pool" where one is fused) or "average pool". For `resnest inspect --passes`.
std::vector<std::string> conv_fold_candidates(const Graph& g);

// The convolution and linear nodes that run right after node i, in node order, up to `max` of them, while
// on_library(j) holds for each (its way a library call: cuDNN, cuBLASLt, cuBLAS, which cannot ask L2 for its
// own weights): the weights a kernel of ours at node i asks L2 for on their behalf (kernels/weight_slice.h,
// L2Prefetch). The first other node ends the run.
std::vector<int> library_calls_after(const Graph& g, int i, const std::function<bool(int)>& on_library, int max);

// Whether tensor t's bytes in `plan` survive from node `after` through node `through`: no node in
// (after, through] writes an output whose block overlaps t's (what a fold may rely on before it reads t there).
bool tensor_kept_between(const Graph& g, const MemoryPlan& plan, int t, int after, int through);

}  // namespace resnest
