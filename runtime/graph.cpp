// graph.cpp: loads a resnest-graph v1 JSON file, validates it, sorts its nodes and infers shapes.
#include "graph.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "json_bounded.h"
#include "resnest/error.h"

namespace resnest {

using json = nlohmann::json;

const char* op_name(OpType op) {
    switch (op) {
        case OpType::conv2d: return "conv2d";
        case OpType::batch_norm: return "batch_norm";
        case OpType::relu: return "relu";
        case OpType::max_pool2d: return "max_pool2d";
        case OpType::avg_pool2d: return "avg_pool2d";
        case OpType::split_attention: return "split_attention";
        case OpType::add: return "add";
        case OpType::global_avg_pool: return "global_avg_pool";
        case OpType::linear: return "linear";
        case OpType::softmax: return "softmax";
    }
    return "?";
}

std::string fused_op_name(const Node& n) {
    std::string op = op_name(n.op);
    if (n.op == OpType::conv2d) {
        if (n.conv.bias) op += "+bias";
        if (n.inputs.size() > 1) op += "+residual";
        if (n.fused_relu) op += "+relu";
    }
    if (n.op == OpType::split_attention && n.attn.fused_avg_pool) op += "+avg_pool2d";
    return op;
}

static const std::vector<OpType> kAllOps = {OpType::conv2d, OpType::batch_norm, OpType::relu,
                                            OpType::max_pool2d, OpType::avg_pool2d, OpType::split_attention,
                                            OpType::add, OpType::global_avg_pool, OpType::linear,
                                            OpType::softmax};

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string shape_str(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

bool shape_numel_within(const Shape& shape, int64_t limit, int64_t* numel) {
    int64_t n = 1;
    bool within = true;
    for (int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > limit) within = false;
        if (!within) break;
    }
    *numel = within ? n : -1;
    return within;
}

namespace {

// A JSON value as it can be quoted in a message: at most 200 characters of its text.
std::string excerpt(const nlohmann::json& value) {
    std::string text = value.dump();
    if (text.size() > 200) text = text.substr(0, 200) + "...";
    return text;
}

[[noreturn]] void fail_tensor_limit(const std::string& what, const Shape& shape) {
    throw Error(what + " " + shape_str(shape) + " has more than " + std::to_string(kMaxTensorElements) +
                " elements, the limit for one tensor");
}

void check_tensor_limit(const std::string& what, const Shape& shape) {
    int64_t numel = 0;
    if (!shape_numel_within(shape, kMaxTensorElements, &numel)) fail_tensor_limit(what, shape);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Attribute reading: every attribute is typed, range-checked and has a documented default; an
// attribute the op does not define is an error (it is most likely a typo).

namespace {

// Attribute values are bounded well below int range so that shape arithmetic never overflows.
constexpr int64_t kMaxAttrValue = 1 << 20;

struct AttrReader {
    const json& attrs;
    std::string where;  // "file: node 'x' (op)"
    std::set<std::string> known;

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw Error(where + ": attribute '" + key + "' " + what);
    }
    bool has(const std::string& key) {
        known.insert(key);
        return attrs.contains(key);
    }
    int get_int(const std::string& key, int def, int min_value, bool required = false) {
        if (!has(key)) {
            if (required) throw Error(where + ": missing required attribute '" + key + "'");
            return def;
        }
        const json& v = attrs[key];
        if (!v.is_number_integer() || v.get<int64_t>() < min_value || v.get<int64_t>() > kMaxAttrValue)
            fail(key, "must be an integer in [" + std::to_string(min_value) + ", " +
                          std::to_string(kMaxAttrValue) + "], got " + excerpt(v));
        return v.get<int>();
    }
    // An int or [h, w].
    void get_pair(const std::string& key, int def, int min_value, int* h, int* w, bool required = false) {
        if (!has(key)) {
            if (required) throw Error(where + ": missing required attribute '" + key + "'");
            *h = *w = def;
            return;
        }
        const json& v = attrs[key];
        auto ok = [&](const json& e) {
            return e.is_number_integer() && e.get<int64_t>() >= min_value && e.get<int64_t>() <= kMaxAttrValue;
        };
        if (ok(v)) {
            *h = *w = v.get<int>();
        } else if (v.is_array() && v.size() == 2 && ok(v[0]) && ok(v[1])) {
            *h = v[0].get<int>();
            *w = v[1].get<int>();
        } else {
            fail(key, "must be an integer >= " + std::to_string(min_value) + " or a pair [h, w] of them, got " +
                          excerpt(v));
        }
    }
    bool get_bool(const std::string& key, bool def) {
        if (!has(key)) return def;
        if (!attrs[key].is_boolean()) fail(key, "must be true or false, got " + excerpt(attrs[key]));
        return attrs[key].get<bool>();
    }
    float get_float(const std::string& key, float def, double min_exclusive) {
        if (!has(key)) return def;
        const json& v = attrs[key];
        if (!v.is_number() || !(v.get<double>() > min_exclusive) || !(v.get<double>() < 1.0))
            fail(key, "must be a number in (" + std::to_string(min_exclusive) + ", 1), got " + excerpt(v));
        return v.get<float>();
    }
    void finish() const {
        for (auto it = attrs.begin(); it != attrs.end(); ++it) {
            if (!known.count(it.key())) {
                std::string list;
                for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
                throw Error(where + ": unknown attribute '" + it.key() + "' (this op takes: " +
                            (list.empty() ? "none" : list) + ")");
            }
        }
    }
};

void read_attrs(Node& n, const json& attrs, const std::string& where) {
    AttrReader r{attrs, where, {}};
    switch (n.op) {
        case OpType::conv2d: {
            Conv2dAttrs& a = n.conv;
            a.in_channels = r.get_int("in_channels", 0, 1, true);
            a.out_channels = r.get_int("out_channels", 0, 1, true);
            r.get_pair("kernel", 0, 1, &a.kernel_h, &a.kernel_w, true);
            r.get_pair("stride", 1, 1, &a.stride_h, &a.stride_w);
            r.get_pair("pad", 0, 0, &a.pad_h, &a.pad_w);
            r.get_pair("dilation", 1, 1, &a.dilation_h, &a.dilation_w);
            a.groups = r.get_int("groups", 1, 1);
            a.bias = r.get_bool("bias", false);
            if (a.in_channels % a.groups || a.out_channels % a.groups)
                throw Error(where + ": groups " + std::to_string(a.groups) + " must divide in_channels " +
                            std::to_string(a.in_channels) + " and out_channels " + std::to_string(a.out_channels));
            break;
        }
        case OpType::batch_norm:
            n.bn.channels = r.get_int("channels", 0, 1, true);
            n.bn.eps = r.get_float("eps", 1e-5f, 0.0);
            break;
        case OpType::max_pool2d:
        case OpType::avg_pool2d: {
            Pool2dAttrs& a = n.pool;
            r.get_pair("kernel", 0, 1, &a.kernel_h, &a.kernel_w, true);
            r.get_pair("stride", 0, 1, &a.stride_h, &a.stride_w);
            if (a.stride_h == 0) a.stride_h = a.kernel_h, a.stride_w = a.kernel_w;
            r.get_pair("pad", 0, 0, &a.pad_h, &a.pad_w);
            a.ceil_mode = r.get_bool("ceil_mode", false);
            if (n.op == OpType::avg_pool2d) a.count_include_pad = r.get_bool("count_include_pad", true);
            if (2 * a.pad_h > a.kernel_h || 2 * a.pad_w > a.kernel_w)
                throw Error(where + ": pad must be at most half the kernel (a window must never be all padding)");
            break;
        }
        case OpType::split_attention: {
            SplitAttentionAttrs& a = n.attn;
            a.radix = r.get_int("radix", 0, 1, true);
            a.cardinality = r.get_int("cardinality", 1, 1);
            a.channels = r.get_int("channels", 0, 1, true);
            a.inter_channels = r.get_int("inter_channels", 0, 1, true);
            a.eps = r.get_float("eps", 1e-5f, 0.0);
            a.fc1_bias = r.get_bool("fc1_bias", true);
            if (a.channels % a.cardinality || a.inter_channels % a.cardinality)
                throw Error(where + ": cardinality " + std::to_string(a.cardinality) +
                            " must divide channels and inter_channels");
            break;
        }
        case OpType::linear:
            n.linear.in_features = r.get_int("in_features", 0, 1, true);
            n.linear.out_features = r.get_int("out_features", 0, 1, true);
            n.linear.bias = r.get_bool("bias", true);
            break;
        case OpType::softmax:
            if (r.has("axis") && attrs["axis"] != json(-1))
                r.fail("axis", "must be -1 (softmax runs over the last axis), got " + excerpt(attrs["axis"]));
            break;
        case OpType::relu:
        case OpType::add:
        case OpType::global_avg_pool:
            break;
    }
    r.finish();
}

int expected_input_count(OpType op) { return op == OpType::add ? 2 : 1; }

// Output size of a pooling window along one axis (PyTorch's rule, which PaddlePaddle shares).
int64_t pool_out_size(int64_t in, int k, int s, int p, bool ceil_mode) {
    // Floor division: in ceil mode a window may reach past the padded input (a 2x2 window, stride 2, over
    // one pixel gives one output, as in PyTorch), in floor mode it may not.
    const int64_t span = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
    if (span < 0) return 0;
    int64_t out = span / s + 1;
    // In ceil mode the last window must start inside the input or its left padding.
    if (ceil_mode && (out - 1) * s >= in + p) out--;
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

std::vector<WeightRequirement> node_weight_requirements(const Node& n, int node_index) {
    std::vector<WeightRequirement> out;
    auto add = [&](const char* role, Shape shape, bool trainable = true) {
        auto it = n.weights.find(role);
        out.push_back({it == n.weights.end() ? std::string() : it->second, role, node_index, std::move(shape),
                       trainable});
    };
    switch (n.op) {
        case OpType::conv2d: {
            const Conv2dAttrs& a = n.conv;
            add("weight", {a.out_channels, a.in_channels / a.groups, a.kernel_h, a.kernel_w});
            if (a.bias) add("bias", {a.out_channels});
            break;
        }
        case OpType::batch_norm:
            add("weight", {n.bn.channels});
            add("bias", {n.bn.channels});
            add("running_mean", {n.bn.channels}, false);
            add("running_var", {n.bn.channels}, false);
            break;
        case OpType::split_attention: {
            const SplitAttentionAttrs& a = n.attn;
            int K = a.cardinality;
            add("fc1_weight", {a.inter_channels, a.channels / K, 1, 1});
            if (a.fc1_bias) add("fc1_bias", {a.inter_channels});
            if (!a.bn_folded) {
                add("bn_weight", {a.inter_channels});
                add("bn_bias", {a.inter_channels});
                add("bn_running_mean", {a.inter_channels}, false);
                add("bn_running_var", {a.inter_channels}, false);
            }
            add("fc2_weight", {(int64_t)a.radix * a.channels, a.inter_channels / K, 1, 1});
            add("fc2_bias", {(int64_t)a.radix * a.channels});
            break;
        }
        case OpType::linear:
            add("weight", {n.linear.out_features, n.linear.in_features});
            if (n.linear.bias) add("bias", {n.linear.out_features});
            break;
        default:
            break;
    }
    return out;
}

namespace {

std::string node_where(const Graph& g, const Node& n) {
    return g.source + ": node '" + n.name + "' (" + op_name(n.op) + ")";
}

// Infers the output shape of node n and its MACs; checks the input shapes against the attributes.
void infer_node(Graph& g, Node& n) {
    const std::string where = node_where(g, n);
    const Shape& x = g.tensors[n.inputs[0]].shape;
    auto need_rank3 = [&]() {
        if (x.size() != 3)
            throw Error(where + ": input '" + g.tensors[n.inputs[0]].name + "' has shape " + shape_str(x) +
                        " but this op needs a (C, H, W) feature map");
    };
    auto need_channels = [&](int64_t c, const char* attr) {
        if (x[0] != c)
            throw Error(where + ": input '" + g.tensors[n.inputs[0]].name + "' has " + std::to_string(x[0]) +
                        " channels but " + attr + " is " + std::to_string(c));
    };
    Shape out;
    switch (n.op) {
        case OpType::conv2d: {
            const Conv2dAttrs& a = n.conv;
            need_rank3();
            need_channels(a.in_channels, "in_channels");
            int64_t ho = (x[1] + 2 * a.pad_h - (int64_t)a.dilation_h * (a.kernel_h - 1) - 1) / a.stride_h + 1;
            int64_t wo = (x[2] + 2 * a.pad_w - (int64_t)a.dilation_w * (a.kernel_w - 1) - 1) / a.stride_w + 1;
            if (x[1] + 2 * a.pad_h < (int64_t)a.dilation_h * (a.kernel_h - 1) + 1 ||
                x[2] + 2 * a.pad_w < (int64_t)a.dilation_w * (a.kernel_w - 1) + 1)
                throw Error(where + ": the kernel does not fit the input " + shape_str(x));
            out = {a.out_channels, ho, wo};
            check_tensor_limit(where + ": output shape", out);
            // The CPU backend unrolls the input into a (in_channels/groups * kernel_h * kernel_w, positions)
            // matrix; it is a tensor too, and bounding it bounds the MACs below to 2^60.
            Shape unrolled = {a.in_channels / a.groups, a.kernel_h, a.kernel_w, ho * wo};
            check_tensor_limit(where + ": unrolled input (in_channels/groups, kernel_h, kernel_w, positions)",
                               unrolled);
            n.macs = shape_numel(out) * (a.in_channels / a.groups) * a.kernel_h * a.kernel_w;
            break;
        }
        case OpType::batch_norm:
            if (x.empty()) throw Error(where + ": input has no channel axis");
            need_channels(n.bn.channels, "channels");
            out = x;
            break;
        case OpType::relu:
            out = x;
            break;
        case OpType::max_pool2d:
        case OpType::avg_pool2d: {
            const Pool2dAttrs& a = n.pool;
            need_rank3();
            int64_t ho = pool_out_size(x[1], a.kernel_h, a.stride_h, a.pad_h, a.ceil_mode);
            int64_t wo = pool_out_size(x[2], a.kernel_w, a.stride_w, a.pad_w, a.ceil_mode);
            if (ho < 1 || wo < 1) throw Error(where + ": the window does not fit the input " + shape_str(x));
            out = {x[0], ho, wo};
            check_tensor_limit(where + ": output shape", out);
            break;
        }
        case OpType::split_attention: {
            const SplitAttentionAttrs& a = n.attn;
            need_rank3();
            need_channels((int64_t)a.radix * a.channels, "radix * channels");
            out = {a.channels, x[1], x[2]};
            int K = a.cardinality;
            n.macs = (int64_t)a.inter_channels * (a.channels / K) + (int64_t)a.radix * a.channels * (a.inter_channels / K);
            break;
        }
        case OpType::add: {
            const Shape& y = g.tensors[n.inputs[1]].shape;
            if (x != y)
                throw Error(where + ": inputs '" + g.tensors[n.inputs[0]].name + "' " + shape_str(x) + " and '" +
                            g.tensors[n.inputs[1]].name + "' " + shape_str(y) +
                            " differ in shape (with PaddleClas pooling semantics the input size must be a "
                            "multiple of 32)");
            out = x;
            break;
        }
        case OpType::global_avg_pool:
            need_rank3();
            out = {x[0]};
            break;
        case OpType::linear:
            if (x.size() != 1)
                throw Error(where + ": input '" + g.tensors[n.inputs[0]].name + "' has shape " + shape_str(x) +
                            " but linear takes a vector (put a global_avg_pool before it)");
            need_channels(n.linear.in_features, "in_features");
            out = {n.linear.out_features};
            n.macs = (int64_t)n.linear.in_features * n.linear.out_features;
            break;
        case OpType::softmax:
            if (x.size() != 1) throw Error(where + ": softmax takes a vector, got shape " + shape_str(x));
            out = x;
            break;
    }
    g.tensors[n.output].shape = out;
}

const json& require(const json& obj, const char* key, const std::string& where) {
    if (!obj.contains(key)) throw Error(where + ": missing '" + key + "'");
    return obj[key];
}

std::string require_string(const json& obj, const char* key, const std::string& where) {
    const json& v = require(obj, key, where);
    if (!v.is_string() || v.get<std::string>().empty())
        throw Error(where + ": '" + key + "' must be a non-empty string, got " + excerpt(v));
    return v.get<std::string>();
}

std::vector<std::string> require_string_list(const json& obj, const char* key, const std::string& where) {
    const json& v = require(obj, key, where);
    if (!v.is_array()) throw Error(where + ": '" + key + "' must be a list of tensor names, got " + excerpt(v));
    std::vector<std::string> out;
    for (const json& e : v) {
        if (!e.is_string() || e.get<std::string>().empty())
            throw Error(where + ": '" + key + "' must hold non-empty strings, got " + excerpt(e));
        out.push_back(e.get<std::string>());
    }
    return out;
}

void read_header(Graph& g, const json& root) {
    const std::string& src = g.source;
    if (!root.is_object()) throw Error(src + ": the top level must be a JSON object");
    if (!root.contains("format") || root["format"] != "resnest-graph")
        throw Error(src + ": not a resnest-graph file (\"format\" must be \"resnest-graph\", got " +
                    (root.contains("format") ? excerpt(root["format"]) : std::string("nothing")) + ")");
    if (!root.contains("version") || !root["version"].is_number_integer())
        throw Error(src + ": \"version\" must be an integer");
    if (root["version"] != 1)
        throw Error(src + ": graph format version " + excerpt(root["version"]) +
                    " is not supported by this build, which reads version 1");
    if (root.contains("name") && root["name"].is_string()) g.name = root["name"].get<std::string>();
    if (root.contains("config") && root["config"].is_object() && root["config"].contains("semantics") &&
        root["config"]["semantics"].is_string())
        g.semantics = root["config"]["semantics"].get<std::string>();

    const std::string where = src + ": input";
    const json& in = require(root, "input", src);
    if (!in.is_object()) throw Error(where + " must be an object");
    std::string name = require_string(in, "name", where);
    if (in.contains("layout") && in["layout"] != "NCHW")
        throw Error(where + ": layout " + excerpt(in["layout"]) + " is not supported (only \"NCHW\")");
    if (in.contains("dtype") && in["dtype"] != "float32")
        throw Error(where + ": dtype " + excerpt(in["dtype"]) + " is not supported (only \"float32\")");
    const json& shape = require(in, "shape", where);
    bool ok = shape.is_array() && shape.size() == 4 && shape[0].is_number_integer() &&
              (shape[0] == -1 || shape[0].get<int64_t>() >= 1);
    for (size_t i = 1; ok && i < 4; i++)
        ok = shape[i].is_number_integer() && shape[i].get<int64_t>() >= 1 && shape[i].get<int64_t>() <= 65536;
    if (!ok)
        throw Error(where + ": shape must be [-1, C, H, W] with C, H, W in [1, 65536], got " + excerpt(shape));
    g.input_shape = {shape[1].get<int64_t>(), shape[2].get<int64_t>(), shape[3].get<int64_t>()};
    check_tensor_limit(where + " '" + name + "': shape (per image)", g.input_shape);
    g.tensors.push_back({name, g.input_shape, -1, {}, false});
    g.input = 0;
}

struct RawNode {
    std::vector<std::string> inputs;
};

void read_nodes(Graph& g, const json& root, std::vector<RawNode>& raw) {
    const json& nodes = require(root, "nodes", g.source);
    if (!nodes.is_array() || nodes.empty()) throw Error(g.source + ": 'nodes' must be a non-empty list");
    if ((int64_t)nodes.size() > kGraphMaxNodes)
        throw Error(g.source + ": the graph has " + std::to_string(nodes.size()) + " nodes, over the limit of " +
                    std::to_string(kGraphMaxNodes));
    std::map<std::string, int> node_names;
    std::map<std::string, int> tensor_ids = {{g.tensors[0].name, 0}};
    for (size_t i = 0; i < nodes.size(); i++) {
        const json& jn = nodes[i];
        std::string where = g.source + ": node #" + std::to_string(i);
        if (!jn.is_object()) throw Error(where + " must be an object");
        Node n;
        n.name = require_string(jn, "name", where);
        where = g.source + ": node '" + n.name + "'";
        if (node_names.count(n.name))
            throw Error(where + ": duplicate node name (also node #" + std::to_string(node_names[n.name]) + ")");
        node_names[n.name] = (int)i;
        std::string op = require_string(jn, "op", where);
        auto it = std::find_if(kAllOps.begin(), kAllOps.end(), [&](OpType t) { return op == op_name(t); });
        if (it == kAllOps.end()) {
            std::string list;
            for (OpType t : kAllOps) list += (list.empty() ? "" : ", ") + std::string(op_name(t));
            throw Error(where + ": unknown op '" + op + "' (version 1 ops: " + list + ")");
        }
        n.op = *it;
        where = node_where(g, n);
        for (auto kv = jn.begin(); kv != jn.end(); ++kv) {
            static const std::set<std::string> keys = {"name", "op", "inputs", "outputs", "attrs", "weights"};
            if (!keys.count(kv.key()))
                throw Error(where + ": unknown field '" + kv.key() +
                            "' (a node has name, op, inputs, outputs, attrs, weights)");
        }
        RawNode rn{require_string_list(jn, "inputs", where)};
        if ((int)rn.inputs.size() != expected_input_count(n.op))
            throw Error(where + ": takes " + std::to_string(expected_input_count(n.op)) + " input(s), got " +
                        std::to_string(rn.inputs.size()));
        std::vector<std::string> outs = require_string_list(jn, "outputs", where);
        if (outs.size() != 1) throw Error(where + ": must have exactly one output, got " + std::to_string(outs.size()));
        if (tensor_ids.count(outs[0]))
            throw Error(where + ": output '" + outs[0] + "' is already produced by " +
                        (tensor_ids[outs[0]] == 0 ? std::string("the graph input")
                                                  : "node '" + g.nodes[g.tensors[tensor_ids[outs[0]]].producer].name + "'"));
        static const json empty = json::object();
        const json& attrs = jn.contains("attrs") ? jn["attrs"] : empty;
        if (!attrs.is_object()) throw Error(where + ": 'attrs' must be an object");
        read_attrs(n, attrs, where);
        if (jn.contains("weights")) {
            const json& w = jn["weights"];
            if (!w.is_object()) throw Error(where + ": 'weights' must be an object of role -> tensor name");
            for (auto kv = w.begin(); kv != w.end(); ++kv) {
                if (!kv.value().is_string() || kv.value().get<std::string>().empty())
                    throw Error(where + ": weight role '" + kv.key() + "' must name a tensor, got " + excerpt(kv.value()));
                n.weights[kv.key()] = kv.value().get<std::string>();
            }
        }
        n.output = (int)g.tensors.size();
        tensor_ids[outs[0]] = n.output;
        g.tensors.push_back({outs[0], {}, (int)g.nodes.size(), {}, false});
        g.nodes.push_back(std::move(n));
        raw.push_back(std::move(rn));
    }
    // Resolve inputs now that every output is known.
    for (size_t i = 0; i < g.nodes.size(); i++) {
        for (const std::string& in : raw[i].inputs) {
            auto t = tensor_ids.find(in);
            if (t == tensor_ids.end())
                throw Error(node_where(g, g.nodes[i]) + ": input '" + in +
                            "' is not produced by any node nor is it the graph input");
            g.nodes[i].inputs.push_back(t->second);
        }
    }
}

// Kahn's algorithm, keeping the file's order among ready nodes; reports a cycle by its path.
void sort_nodes(Graph& g) {
    size_t count = g.nodes.size();
    std::vector<int> pending(count, 0);
    std::vector<std::vector<int>> users(count);
    for (size_t i = 0; i < count; i++) {
        for (int t : g.nodes[i].inputs) {
            int p = g.tensors[t].producer;
            if (p >= 0) {
                pending[i]++;
                users[p].push_back((int)i);
            }
        }
    }
    std::vector<int> order;
    std::set<int> ready;
    for (size_t i = 0; i < count; i++)
        if (!pending[i]) ready.insert((int)i);
    while (!ready.empty()) {
        int i = *ready.begin();
        ready.erase(ready.begin());
        order.push_back(i);
        for (int u : users[i])
            if (--pending[u] == 0) ready.insert(u);
    }
    if (order.size() != count) {
        // Walk producers from a node left over until one repeats: that loop is the cycle.
        int start = 0;
        while (!pending[start]) start++;
        std::vector<int> path;
        std::vector<int> seen(count, -1);
        int cur = start;
        while (seen[cur] < 0) {
            seen[cur] = (int)path.size();
            path.push_back(cur);
            for (int t : g.nodes[cur].inputs) {
                int p = g.tensors[t].producer;
                if (p >= 0 && pending[p]) {
                    cur = p;
                    break;
                }
            }
        }
        std::string text;
        for (size_t k = seen[cur]; k < path.size(); k++) text = "'" + g.nodes[path[k]].name + "' <- " + text;
        throw Error(g.source + ": the nodes form a cycle: " + text + "'" + g.nodes[cur].name + "'");
    }
    // Renumber nodes in execution order.
    std::vector<Node> sorted;
    std::vector<int> new_index(count);
    for (size_t k = 0; k < count; k++) {
        new_index[order[k]] = (int)k;
        sorted.push_back(std::move(g.nodes[order[k]]));
    }
    g.nodes = std::move(sorted);
    for (TensorInfo& t : g.tensors)
        if (t.producer >= 0) t.producer = new_index[t.producer];
}

void check_roles(const Graph& g, const Node& n, const std::vector<WeightRequirement>& req) {
    for (const WeightRequirement& r : req)
        if (r.tensor.empty())
            throw Error(node_where(g, n) + ": 'weights' has no '" + r.role + "' role (it names the tensor in the weight file)");
    for (const auto& kv : n.weights) {
        bool known = std::any_of(req.begin(), req.end(), [&](const WeightRequirement& r) { return r.role == kv.first; });
        if (!known) {
            std::string list;
            for (const WeightRequirement& r : req) list += (list.empty() ? "" : ", ") + r.role;
            throw Error(node_where(g, n) + ": unknown weight role '" + kv.first + "' (this node takes: " +
                        (list.empty() ? "no weights" : list) + ")");
        }
    }
}

}  // namespace

Graph graph_parse(const std::string& text, const std::string& source) {
    Graph g;
    g.source = source;
    if ((int64_t)text.size() > kGraphMaxFileBytes)
        throw Error(source + ": the graph is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(kGraphMaxFileBytes) + " bytes");
    // Linear time, and nesting refused as it opens: printing, copying or comparing a deep value recurses.
    JsonBoundedParser parser(kGraphMaxJsonDepth, source + ": JSON nesting depth exceeds the limit of " +
                                                     std::to_string(kGraphMaxJsonDepth) + " levels");
    json root;
    try {
        root = parser.parse(text.data(), text.data() + text.size());
    } catch (const json::exception& e) {
        throw Error(source + ": malformed JSON: " + e.what());
    }
    read_header(g, root);
    std::vector<RawNode> raw;
    read_nodes(g, root, raw);
    sort_nodes(g);

    std::map<std::string, int> tensor_ids;
    for (size_t t = 0; t < g.tensors.size(); t++) tensor_ids[g.tensors[t].name] = (int)t;
    for (const std::string& name : require_string_list(root, "outputs", source)) {
        auto it = tensor_ids.find(name);
        if (it == tensor_ids.end()) throw Error(source + ": output '" + name + "' is not produced by any node");
        if (it->second == g.input) throw Error(source + ": output '" + name + "' is the graph input");
        g.outputs.push_back(it->second);
        g.tensors[it->second].is_output = true;
    }
    if (g.outputs.empty()) throw Error(source + ": 'outputs' must name at least one tensor");

    std::map<std::string, Shape> weight_shapes;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        Node& n = g.nodes[i];
        for (int t : n.inputs) g.tensors[t].consumers.push_back((int)i);
        infer_node(g, n);
        if (__builtin_add_overflow(g.macs, n.macs, &g.macs))
            throw Error(node_where(g, n) + ": the graph's MAC count overflows 64 bits");
        std::vector<WeightRequirement> req = node_weight_requirements(n, (int)i);
        check_roles(g, n, req);
        for (WeightRequirement& r : req) {
            check_tensor_limit(node_where(g, n) + ": weight '" + r.role + "' shape", r.shape);
            auto prev = weight_shapes.find(r.tensor);
            if (prev != weight_shapes.end()) {
                if (prev->second != r.shape)
                    throw Error(node_where(g, n) + ": tensor '" + r.tensor + "' is needed with shape " +
                                shape_str(r.shape) + " here and " + shape_str(prev->second) + " elsewhere");
                continue;  // shared tensor: counted once
            }
            weight_shapes[r.tensor] = r.shape;
            if (r.trainable) g.params += shape_numel(r.shape);
            g.weights.push_back(std::move(r));
        }
    }
    return g;
}

Graph graph_load(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw Error(path + ": is a folder, not a graph file (give models/<name>.json)");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open the graph file (does it exist?)");
    // Reads at most one chunk past the limit, so a huge file (or an endless stream) costs nothing.
    std::string text;
    char chunk[65536];
    while (f && (int64_t)text.size() <= kGraphMaxFileBytes) {
        f.read(chunk, sizeof chunk);
        text.append(chunk, (size_t)f.gcount());
    }
    if (f.bad()) throw Error(path + ": read error");
    if ((int64_t)text.size() > kGraphMaxFileBytes)
        throw Error(path + ": the graph file is over the limit of " + std::to_string(kGraphMaxFileBytes) + " bytes");
    return graph_parse(text, path);
}

}  // namespace resnest
