// graph.h: the resnest-graph v1 model format (models/OPS.md) in memory, its loader and validator.
//
// graph_load() parses the JSON, checks every field, orders the nodes topologically, infers each tensor's
// per-image shape, and counts parameters and MACs. Every error is a resnest::Error that names the file and
// the node (and the attribute, input or weight role) at fault.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace resnest {

// Limits on what a graph may ask for, each enforced by graph_parse with an error naming the limit:
// files come from anywhere, and these keep every size the runtime derives from one inside 64-bit (and the
// CPU backend's 32-bit GEMM) arithmetic, and parsing inside a bounded stack.
constexpr int64_t kGraphMaxFileBytes = 16ll << 20;  // the JSON text: 16 MiB (ResNeSt50's graph is 49 KB)
constexpr int kGraphMaxJsonDepth = 32;              // nesting of arrays and objects (v1 graphs use 5)
constexpr int64_t kGraphMaxNodes = 16384;           // nodes (ResNeSt50 has 202; ResNeSt269 under 1,000)
// Elements of any one tensor: an activation (per image), a weight, the matrix a convolution unrolls its
// input into; 2^30 floats are 4 GiB.
constexpr int64_t kMaxTensorElements = 1ll << 30;

enum class OpType { conv2d, batch_norm, relu, max_pool2d, avg_pool2d, split_attention, add, global_avg_pool,
                    linear, softmax };

const char* op_name(OpType op);

struct Conv2dAttrs {
    int in_channels = 0, out_channels = 0;
    int kernel_h = 0, kernel_w = 0;
    int stride_h = 1, stride_w = 1;
    int pad_h = 0, pad_w = 0;
    int dilation_h = 1, dilation_w = 1;
    int groups = 1;
    bool bias = false;
};

struct BatchNormAttrs {
    int channels = 0;
    float eps = 1e-5f;
};

// max_pool2d and avg_pool2d.
struct Pool2dAttrs {
    int kernel_h = 0, kernel_w = 0;
    int stride_h = 0, stride_w = 0;  // default: the kernel size
    int pad_h = 0, pad_w = 0;
    bool ceil_mode = false;
    bool count_include_pad = true;  // avg_pool2d only
};

struct SplitAttentionAttrs {
    int radix = 0;
    int cardinality = 1;
    int channels = 0;  // gw: the op's output channels; its input has radix * channels
    int inter_channels = 0;
    float eps = 1e-5f;  // of the BN between fc1 and fc2
    bool fc1_bias = true;
    // Set by fold_batch_norm (passes.h), never by the loader: the inner BN is folded into fc1's weight and
    // bias, and the bn_* weight roles are gone.
    bool bn_folded = false;
    // Set by fuse_split_attention_avg_pool: the average pool that followed the op (ResNeSt's avd layer
    // placed last) is applied to its output in the same pass; the output shape is the pool's.
    bool fused_avg_pool = false;
    Pool2dAttrs pool;
};

struct LinearAttrs {
    int in_features = 0, out_features = 0;
    bool bias = true;
};

// A tensor's shape for one image: {C, H, W} or {C}. The batch dimension is implicit.
using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[64, 56, 56]"
// True when every dimension is non-negative and the element count is at most `limit`, computed without
// overflow; *numel is the count, or -1 when it is over.
bool shape_numel_within(const Shape& shape, int64_t limit, int64_t* numel);

struct Node {
    std::string name;
    OpType op;
    std::vector<int> inputs;  // tensor ids
    int output = -1;          // tensor id
    Conv2dAttrs conv;
    BatchNormAttrs bn;
    Pool2dAttrs pool;
    SplitAttentionAttrs attn;
    LinearAttrs linear;
    std::map<std::string, std::string> weights;  // role -> tensor name in the weight file
    int64_t macs = 0;                            // per image
    // Set by the fusion passes (passes.h), never by the loader. A conv2d may then have a second input, the
    // residual z added to its output (after the bias), and a ReLU applied last: y = relu(conv + b + z).
    bool fused_relu = false;
};

// The op a node runs with what the passes fused into it (passes.h): "conv2d+bias+residual+relu" (a
// convolution with its bias, a second input added and a ReLU), "split_attention+avg_pool2d"; else op_name.
std::string fused_op_name(const Node& n);

struct TensorInfo {
    std::string name;
    Shape shape;                 // per image
    int producer = -1;           // node index; -1 for the graph input
    std::vector<int> consumers;  // node indices, in execution order
    bool is_output = false;
};

struct WeightRequirement {
    std::string tensor;  // name in the weight file
    std::string role;
    int node = -1;
    Shape shape;         // full shape (no implicit batch)
    bool trainable = true;  // false for BN running statistics
};

struct Graph {
    std::string source;  // file path (or "<string>") for messages
    std::string name;
    std::string semantics;       // config.semantics where the file has it: "paddle" or "torch" pooling (else "")
    int input = -1;              // tensor id of the graph input
    Shape input_shape;           // {C, H, W}
    std::vector<int> outputs;    // tensor ids
    std::vector<Node> nodes;     // topologically ordered
    std::vector<TensorInfo> tensors;
    std::vector<WeightRequirement> weights;  // every tensor the nodes name, in node order
    int64_t params = 0;  // trainable: conv/linear weights and biases, BN gamma/beta
    int64_t macs = 0;    // conv + linear (incl. split attention's fc1/fc2), per image
};

// Parses and validates a graph. `source` names it in messages.
Graph graph_parse(const std::string& json_text, const std::string& source);
Graph graph_load(const std::string& path);

// The weight shapes each node needs, derived from its attributes (models/OPS.md).
std::vector<WeightRequirement> node_weight_requirements(const Node& node, int node_index);

}  // namespace resnest
