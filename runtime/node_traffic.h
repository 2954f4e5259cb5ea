// node_traffic.h: the bytes each node of the CUDA backend's plan moves through device memory at a batch
// size, for the profile's GB/s column and the model's roofline floor (bench_stats.h, roofline_floor_ms).
// Host arithmetic, unit-tested.
//
// Every tensor a node's kernels read is counted once per kernel that reads it and every tensor they write
// once, at the storage precision, plus the node's weights; with the folds the plan took at that batch size
// (cuda_context_fusions.cpp, fusion_pairs.h):
// - an average pool folded into the 1x1 convolution after it moves nothing, and that convolution reads the
//   pool's input instead of its output;
// - split attention whose weighted sum is folded into the 1x1 convolution after it writes no output, and
//   that convolution reads U and the gates instead;
// - split attention's pool reads U and writes its chunk sums (N, chunks, C) in float, or, where the
//   convolution writing U pools in its epilogue, that convolution writes them; the gate reads them and
//   writes the gates (N, R*C) in float, and the weighted sum reads those;
// - the first convolution, where it reads the NCHW input itself, reads it in float.
// The input's and output's layout conversions around the nodes are outside every node, as in the profile.
// node_way_bytes adds what a convolution's or linear node's chosen way moves beyond that (workspace
// matrices, split partials, a dense filter, a bias pass): for GB/s, not for the floor.
#pragma once
#include <vector>

#include "graph.h"

namespace resnest {

struct PlanFolds {
    // Per node: the 1x1 convolution node that does the node's work while loading its operand (a split
    // attention's weighted sum, an average pool); -1 where the node runs it itself. Empty: none.
    std::vector<int> folded_in_conv;
    // Per split-attention node: the chunk sums an image its pool leaves for the gate (whoever pools). Empty
    // or 0: not counted.
    std::vector<int> pool_chunks;
    // Per split-attention node: the convolution node writing its U that pools it in its epilogue; -1 where
    // its own pool kernel reads U. Empty: none.
    std::vector<int> pool_in_conv;
    int stem_node = -1;  // the convolution that reads the NCHW float input itself, or -1
};

// Per node of g (after the passes): the bytes it moves at `batch`, activations at `esize` bytes an element
// and `weight_bytes[i]` of weights. Throws resnest::Error where a fold names a node that is not a
// convolution reading the folded node's output, or the vectors' sizes are not the node count.
std::vector<double> node_traffic_bytes(const Graph& g, const PlanFolds& folds, int batch, int esize,
                                       const std::vector<double>& weight_bytes);

// How a convolution or linear node's chosen way runs, for what it moves beyond node_traffic_bytes: through
// its workspace and in passes of its own. The profile's GB/s counts those bytes; the roofline floor does not
// (they are the cost of the way the choice took, not traffic the plan's nodes must have).
struct NodeWay {
    bool im2col = false;        // gathers the (N*OH*OW, KH*KW*Cin) matrix, which the matmul then reads
    bool dense_filter = false;  // reads a grouped filter's dense block-diagonal form (G times its bytes)
    int lt_split = 1;           // cuBLASLt's K split as configured (1: none)
    int lt_scheme = 0;          // its reduction: conv_as_gemm.h's kReductionInPlace, ComputeType or OutputType
    double partial_bytes = 0;   // our kernels' K split: their float partials (0: not split)
    bool bias_pass = false;     // the bias (and residual) added in a pass of its own over the output
};

// The bytes node i's way moves beyond node_traffic_bytes at `batch`, activations at `esize` bytes:
// - the im2col matrix, written once and read once;
// - the dense filter's bytes beyond the grouped filter's, (G - 1) x the grouped filter's;
// - a cuBLASLt split through partials in its workspace: the split's (N*OH*OW, Cout) partials, in float (or
//   in the output type), written and read; reduced in place: each split after the first reads and writes
//   the output;
// - our kernels' partials, written once and read once;
// - a bias pass: the output read and written again (a residual it adds is the node's input, counted).
// cuDNN's own workspace and internal passes are not known here and not counted.
// Throws resnest::Error naming the node where the way does not fit it (im2col or a filter on a node that
// is not a convolution, a split with a reduction that is none of cuBLASLt's, negative sizes).
double node_way_bytes(const Graph& g, size_t i, int batch, int esize, const NodeWay& way);

}  // namespace resnest
