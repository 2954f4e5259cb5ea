// weight_blob.cpp: see weight_blob.h. Two passes: the offsets first (sizes follow from the node
// attributes and the host tensors), then every node's conversion on its own thread, each writing only its
// own pieces and the zero gap after each.
#include "weight_blob.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "dtype.h"
#include "parallel_for.h"
#include "passes.h"
#include "weight_layout.h"

namespace resnest {

namespace {

constexpr int64_t kPieceAlign = 256;

int64_t align_up(int64_t v) { return (v + kPieceAlign - 1) / kPieceAlign * kPieceAlign; }

// Reserves `bytes` at the end of the layout and returns their offset.
int64_t reserve(int64_t* size, int64_t bytes) {
    int64_t off = align_up(*size);
    *size = off + bytes;
    return off;
}

class BlobWriter {
  public:
    BlobWriter(unsigned char* data, int64_t size, Precision p, std::string source)
        : data_(data), size_(size), p_(p), source_(std::move(source)) {}
    // Copies `bytes` to `off` and zeroes the gap up to where the next piece may start.
    void put(int64_t off, const void* src, size_t bytes) const {
        std::memcpy(data_ + off, src, bytes);
        int64_t end = off + (int64_t)bytes, next = std::min(align_up(end), size_);
        if (next > end) std::memset(data_ + end, 0, (size_t)(next - end));
    }
    void put_floats(int64_t off, const std::vector<float>& v) const { put(off, v.data(), v.size() * sizeof(float)); }
    // At the storage precision: in fp16 a value past half's largest finite one (65504; a BN folded over a
    // near-zero variance can make one) is refused, naming node n's `what`, rather than stored as infinity.
    void put_storage(int64_t off, const std::vector<float>& v, const Node& n, const char* what) const {
        if (p_ != Precision::fp16) return put_floats(off, v);
        float largest = 0.0f;
        int64_t over = 0;
        for (float x : v) {
            largest = std::max(largest, std::fabs(x));
            over += std::fabs(x) > 65504.0f;
        }
        if (over)
            throw Error(source_ + ": node '" + n.name + "': " + std::to_string(over) + " of the " +
                        std::to_string(v.size()) + " values of its " + what + " (BN folded in where the graph has one) "
                        "are past fp16's largest, 65504 (the largest is " + std::to_string(largest) +
                        "); run this model in --precision tf32 or fp32");
        std::vector<uint16_t> h = floats_to_halves(v);
        put(off, h.data(), h.size() * sizeof(uint16_t));
    }

  private:
    unsigned char* data_;
    int64_t size_;
    Precision p_;
    std::string source_;
};

// Node n's pieces into the buffer at its offsets o.
void fill_node(const Graph& g, const HostWeights& w, const Node& n, const NodeWeightOffsets& o, const BlobWriter& out) {
    switch (n.op) {
        case OpType::conv2d: {
            const Conv2dAttrs& a = n.conv;
            const std::vector<float>& filt = w.tensors.at(n.weights.at("weight"));
            out.put_storage(o.conv_w, conv_weight_oihw_to_ohwi(filt, a.out_channels, a.in_channels / a.groups,
                                                              a.kernel_h, a.kernel_w), n, "filter");
            if (a.groups > 1) {
                std::vector<float> dense = conv_weight_grouped_to_dense(filt, a.out_channels, a.in_channels,
                                                                        a.groups, a.kernel_h, a.kernel_w);
                out.put_storage(o.conv_w_dense, conv_weight_oihw_to_ohwi(dense, a.out_channels, a.in_channels,
                                                                        a.kernel_h, a.kernel_w), n, "filter");
            }
            std::vector<float> bias(a.out_channels, 0.0f);
            if (a.bias) {
                bias = w.tensors.at(n.weights.at("bias"));
                out.put_floats(o.conv_b_f, bias);
            }
            out.put_storage(o.conv_b, bias, n, "bias");
            break;
        }
        case OpType::batch_norm: {
            std::vector<double> s, t;
            batch_norm_scale_shift(g, n, w, s, t);
            out.put_floats(o.bn_scale, std::vector<float>(s.begin(), s.end()));
            out.put_floats(o.bn_shift, std::vector<float>(t.begin(), t.end()));
            break;
        }
        case OpType::split_attention: {
            std::vector<float> w1, b1;
            split_attention_folded_fc1(g, n, w, w1, b1);
            out.put_floats(o.fc1_w, w1);
            out.put_floats(o.fc1_b, b1);
            out.put_floats(o.fc2_w, w.tensors.at(n.weights.at("fc2_weight")));
            out.put_floats(o.fc2_b, w.tensors.at(n.weights.at("fc2_bias")));
            break;
        }
        case OpType::linear:
            out.put_storage(o.linear_w, w.tensors.at(n.weights.at("weight")), n, "weight");
            if (n.linear.bias) out.put_floats(o.linear_b, w.tensors.at(n.weights.at("bias")));
            break;
        default:
            break;
    }
}

}  // namespace

WeightBlob build_weight_blob(const Graph& g, const HostWeights& w, Precision p) {
    const int64_t es = storage_bytes(p);
    WeightBlob blob;
    blob.nodes.resize(g.nodes.size());
    int64_t size = 0;
    auto count = [&](const Node& n, const char* role) { return (int64_t)w.tensors.at(n.weights.at(role)).size(); };
    for (size_t i = 0; i < g.nodes.size(); i++) {  // the layout
        const Node& n = g.nodes[i];
        NodeWeightOffsets& o = blob.nodes[i];
        switch (n.op) {
            case OpType::conv2d: {
                const Conv2dAttrs& a = n.conv;
                const int64_t khw = (int64_t)a.kernel_h * a.kernel_w, filt = (int64_t)a.out_channels * (a.in_channels / a.groups) * khw;
                o.conv_w = reserve(&size, filt * es);
                if (a.groups > 1) o.conv_w_dense = reserve(&size, (int64_t)a.out_channels * a.in_channels * khw * es);
                if (a.bias) o.conv_b_f = reserve(&size, a.out_channels * 4);
                o.conv_b = reserve(&size, a.out_channels * es);
                o.bytes = (filt + a.out_channels) * es;
                break;
            }
            case OpType::batch_norm:
                o.bn_scale = reserve(&size, n.bn.channels * 4);
                o.bn_shift = reserve(&size, n.bn.channels * 4);
                o.bytes = 2 * (int64_t)n.bn.channels * 4;
                break;
            case OpType::split_attention: {
                const int64_t w1 = count(n, "fc1_weight"), b1 = n.attn.inter_channels, w2 = count(n, "fc2_weight"),
                              b2 = count(n, "fc2_bias");
                o.fc1_w = reserve(&size, w1 * 4);
                o.fc1_b = reserve(&size, b1 * 4);
                o.fc2_w = reserve(&size, w2 * 4);
                o.fc2_b = reserve(&size, b2 * 4);
                o.bytes = (w1 + b1 + w2 + b2) * 4;
                break;
            }
            case OpType::linear:
                o.linear_w = reserve(&size, count(n, "weight") * es);
                o.bytes = count(n, "weight") * es;
                if (n.linear.bias) {
                    o.linear_b = reserve(&size, n.linear.out_features * 4);
                    o.bytes += n.linear.out_features * 4;
                }
                break;
            default:
                break;
        }
    }
    blob.size = size;
    blob.data.reset(new unsigned char[(size_t)std::max<int64_t>(size, 1)]);
    const BlobWriter out(blob.data.get(), size, p, g.source);
    // The contents, a node a thread; a corrupt variance is reported for the first such node in graph order.
    parallel_for_each_index((int64_t)g.nodes.size(),
                            [&](int64_t i) { fill_node(g, w, g.nodes[i], blob.nodes[i], out); });
    return blob;
}

}  // namespace resnest
