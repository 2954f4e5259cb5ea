// passes.h: graph rewrites a backend runs before it prepares a graph. Each is a named function that changes
// the graph (and the host weights it folds) and logs one line per rewrite, so a change in numbers can be
// traced to a change in the log.
//
//   fold_batch_norm          conv2d -> batch_norm      => conv2d with bias (w' = w*s, b' = b*s + t);
//                            split_attention's inner BN => fc1 (bn_folded)
//   fuse_conv_residual_add   conv2d -> add(., z)       => conv2d with a second input z (y = conv + b + z)
//   fuse_conv_relu           conv2d -> relu            => conv2d with fused_relu
//   fuse_split_attention_avg_pool  split_attention -> avg_pool2d => split_attention with fused_avg_pool
//   pad_input_channels       (CUDA fp16/tf32 only) the input's C widened to a multiple of 8 / 4 with zero
//                            channels, its convolutions' filters with zero weights there
//   split_radix_convolutions conv1 -> conv2 (groups R) -> split_attention (radix R) => R of each, one per
//                            radix split, split_attention reading the R splits apart (passes_radix_split.cpp;
//                            only when asked: RESNEST_RADIX_SPLIT)
//
// A rewrite applies only where the intermediate tensor has no other reader and is not a graph output.
// Folded weights are computed in double and stored under new names ("<node>:folded_weight").
#pragma once
#include <string>
#include <vector>

#include "graph.h"
#include "weights.h"

namespace resnest {

using PassLog = std::vector<std::string>;

// Throws on a variance + eps that is not positive (naming the first such tensor in graph order), leaving g,
// w and the log as they were.
int fold_batch_norm(Graph& g, HostWeights& w, PassLog* log);
int fuse_conv_residual_add(Graph& g, PassLog* log);
int fuse_conv_relu(Graph& g, PassLog* log);
int fuse_split_attention_avg_pool(Graph& g, PassLog* log);

// split_attention's fc1 with its inner BN folded in (w' = w*s, b' = b*s + t, in double); when the node is
// already bn_folded, its fc1 as it is. Throws resnest::Error on a variance + eps that is not positive.
void split_attention_folded_fc1(const Graph& g, const Node& n, const HostWeights& w, std::vector<float>& weight,
                                std::vector<float>& bias);

// A batch_norm node's inference affine: scale = gamma / sqrt(var + eps), shift = beta - mean * scale, in
// double. Throws resnest::Error naming the tensor on a variance + eps that is not positive.
void batch_norm_scale_shift(const Graph& g, const Node& n, const HostWeights& w, std::vector<double>& scale,
                            std::vector<double>& shift);

// All of the above but pad_input_channels, in that order.
void run_graph_passes(Graph& g, HostWeights& w, PassLog* log);

// Widens the input tensor's channel count to a multiple of `multiple` when every reader of the input is an
// ungrouped convolution taking it as its first input: the input tensor's shape and those convolutions'
// in_channels become the padded count and their filters gain zero weights ("<node>:padded_weight"), so
// the sums are unchanged. g.input_shape, what a caller passes in, keeps the real count; the backend's input
// conversion writes the extra channels as zeros. Returns the input tensor's channel count afterwards.
int pad_input_channels(Graph& g, HostWeights& w, int multiple, PassLog* log);

// Rewrites every split-attention block (radix R >= 2, cardinality 1) whose conv2 (groups R, no residual)
// reads the output of an ungrouped conv1, both outputs read by nothing else, and whose conv2 output has at
// most max_positions positions an image (-1: any): conv1 and conv2 become R convolutions each, one per radix
// split (conv1's output channels of group r; conv2's group r, ungrouped), and split_attention takes the R
// split outputs as its inputs. Run after fold_batch_norm (the weights it slices are the folded ones); the
// whole filters it sliced are left for drop_unread_weights. Returns the number of blocks rewritten.
int split_radix_convolutions(Graph& g, HostWeights& w, int64_t max_positions, PassLog* log);

// RESNEST_RADIX_SPLIT's value as split_radix_convolutions' max_positions: unset, "" or "off" -> 0 (the
// pass is not run), "all" -> -1, a count N >= 1 -> N (e.g. 196: the 14x14 and 7x7 blocks of ResNeSt50 at
// 224x224). Anything else is an error naming the variable.
int64_t radix_split_from(const char* value);

// Erases every tensor of w that no node of g reads (after the passes: the unfolded filters and BN statistics
// the folds replaced), so an engine holds one host copy of each weight. Returns the number erased.
int drop_unread_weights(const Graph& g, HostWeights& w);

// The node that produced tensor t when t's only reader is node `reader` and t is not a graph output; else -1:
// where a rewrite may fold the producer into its reader.
int sole_producer(const Graph& g, int t, int reader);

// After a rewrite: drops the nodes marked dead, recomputes every tensor's producer and consumers, drops
// tensors nothing touches (renumbering the rest), and rebuilds the weight requirement list. Node order
// (already topological) is kept.
void graph_relink(Graph& g, const std::vector<bool>& dead);

}  // namespace resnest
