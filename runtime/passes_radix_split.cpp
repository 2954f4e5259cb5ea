// passes_radix_split.cpp: split_radix_convolutions (passes.h), which keeps each radix split of a
// split-attention block in a tensor of its own.
//
// In a ResNeSt block with radix R and cardinality 1,
//   conv1 (ungrouped) -> X1 (R*Cg, H, W) -> conv2 (groups R) -> U (R*C, H2, W2) -> split_attention
// group r of conv2 reads only X1's channels [r*Cg, (r+1)*Cg) and writes only U's channels [r*C, (r+1)*C):
// split r of U. The pass rewrites the three nodes as
//   conv1:split<r>  (conv1's output channels [r*Cg, (r+1)*Cg): its weight rows and bias) -> X1_r (Cg, H, W)
//   conv2:split<r>  (ungrouped: group r's filter rows and bias)                          -> U_r (C, H2, W2)
//   split_attention reading U_0 .. U_{R-1} (its inputs, one per split)
// for r = 0..R-1: the same sums, each grouped convolution as R plain ones on packed tensors instead of one
// grouped (or dense, twice the arithmetic) convolution. Weight slices are stored under new names
// ("<node>:split<r>_weight", "_bias"); the whole filters stay in the weights until drop_unread_weights.
#include <cstdlib>
#include <string>
#include <vector>

#include "passes.h"
#include "resnest/error.h"

namespace resnest {

namespace {

// Output channels [first, first + count) of a convolution: its weight rows (a contiguous slab of the
// (Cout, Cin/G, KH, KW) filter) and bias, stored under new names; the node's attributes follow.
void keep_output_channels(Node& n, HostWeights& w, int first, int count, const std::string& suffix) {
    const Conv2dAttrs& a = n.conv;
    const size_t row = (size_t)(a.in_channels / a.groups) * a.kernel_h * a.kernel_w;
    const std::vector<float>& weight = w.tensors.at(n.weights.at("weight"));
    const std::string weight_name = n.name + ":" + suffix + "_weight";
    w.tensors[weight_name].assign(weight.begin() + (ptrdiff_t)(first * row), weight.begin() + (ptrdiff_t)((first + count) * row));
    n.weights["weight"] = weight_name;
    if (a.bias) {
        const std::vector<float>& bias = w.tensors.at(n.weights.at("bias"));
        const std::string bias_name = n.name + ":" + suffix + "_bias";
        w.tensors[bias_name].assign(bias.begin() + first, bias.begin() + first + count);
        n.weights["bias"] = bias_name;
    }
    n.conv.out_channels = count;
}

int64_t conv_macs(const Node& n, const Shape& out) {
    const Conv2dAttrs& a = n.conv;
    return shape_numel(out) * (a.in_channels / a.groups) * a.kernel_h * a.kernel_w;
}

}  // namespace

int split_radix_convolutions(Graph& g, HostWeights& w, int64_t max_positions, PassLog* log) {
    std::vector<std::vector<Node>> replace(g.nodes.size());  // node index -> the nodes taking its place
    int rewrites = 0;
    for (size_t s = 0; s < g.nodes.size(); s++) {
        const Node& attn = g.nodes[s];
        if (attn.op != OpType::split_attention || attn.inputs.size() != 1) continue;
        const int R = attn.attn.radix, C = attn.attn.channels;
        if (R < 2 || attn.attn.cardinality != 1) continue;
        const int u = attn.inputs[0];
        const int c2 = sole_producer(g, u, (int)s);
        if (c2 < 0 || g.nodes[c2].op != OpType::conv2d) continue;
        const Node& conv2 = g.nodes[c2];
        const Shape u_shape = g.tensors[u].shape;  // (R*C, H2, W2); copies: g.tensors grows below
        if (conv2.conv.groups != R || conv2.inputs.size() != 1 || u_shape.size() != 3 || u_shape[0] != (int64_t)R * C)
            continue;
        if (max_positions >= 0 && u_shape[1] * u_shape[2] > max_positions) continue;
        const int x1 = conv2.inputs[0];
        const int c1 = sole_producer(g, x1, c2);
        if (c1 < 0 || g.nodes[c1].op != OpType::conv2d) continue;
        const Node& conv1 = g.nodes[c1];
        if (conv1.conv.groups != 1 || conv1.inputs.size() != 1 || conv1.conv.out_channels % R != 0) continue;
        const int cg = conv1.conv.out_channels / R;  // conv2's input channels a group
        const Shape x1_shape = g.tensors[x1].shape;  // (R*cg, H, W)

        std::vector<int> splits;
        for (int r = 0; r < R; r++) {
            const std::string suffix = "split" + std::to_string(r);
            auto add_tensor = [&](const std::string& name, Shape shape) {
                TensorInfo t;
                t.name = name;
                t.shape = std::move(shape);
                g.tensors.push_back(std::move(t));
                return (int)g.tensors.size() - 1;
            };
            const int x1_r = add_tensor(g.tensors[x1].name + ":" + suffix, {cg, x1_shape[1], x1_shape[2]});
            const int u_r = add_tensor(g.tensors[u].name + ":" + suffix, {C, u_shape[1], u_shape[2]});
            Node a = conv1;  // conv1's output channels [r*cg, (r+1)*cg)
            keep_output_channels(a, w, r * cg, cg, suffix);
            a.name = conv1.name + ":" + suffix;
            a.output = x1_r;
            a.macs = conv_macs(a, g.tensors[x1_r].shape);
            Node b = conv2;  // group r of conv2, ungrouped
            keep_output_channels(b, w, r * C, C, suffix);
            b.name = conv2.name + ":" + suffix;
            b.conv.groups = 1;
            b.conv.in_channels = cg;
            b.inputs = {x1_r};
            b.output = u_r;
            b.macs = conv_macs(b, g.tensors[u_r].shape);
            replace[c1].push_back(std::move(a));
            replace[c2].push_back(std::move(b));
            splits.push_back(u_r);
        }
        g.nodes[s].inputs = splits;
        if (log)
            log->push_back("split_radix_convolutions: " + conv1.name + " and " + conv2.name + " as " + std::to_string(R) +
                           " convolutions each, one per radix split; " + attn.name + " reads the splits apart");
        rewrites++;
    }
    if (rewrites == 0) return 0;
    std::vector<Node> nodes;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        if (replace[i].empty()) {
            nodes.push_back(std::move(g.nodes[i]));
            continue;
        }
        for (Node& n : replace[i]) nodes.push_back(std::move(n));
    }
    g.nodes = std::move(nodes);
    graph_relink(g, std::vector<bool>(g.nodes.size(), false));  // drops X1 and U, links the splits
    return rewrites;
}

int64_t radix_split_from(const char* value) {
    if (!value || !*value || std::string(value) == "off") return 0;
    if (std::string(value) == "all") return -1;
    char* end = nullptr;
    const long long n = std::strtoll(value, &end, 10);
    if (end == value || *end || n < 1)
        throw Error(std::string("RESNEST_RADIX_SPLIT='") + value +
                    "': use off, all, or the largest number of positions an image (H*W of the grouped "
                    "convolution's output, e.g. 196) at which a block is split");
    return n;
}

}  // namespace resnest
