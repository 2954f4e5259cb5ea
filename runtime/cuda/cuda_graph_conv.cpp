// cuda_graph_conv.cpp: a convolution with its bias, residual and ReLU as one cuDNN operation graph
// (see cuda_graph_conv.h).
#include "cuda/cuda_graph_conv.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/cuda_timing.h"

namespace resnest {

namespace {

// Tensor uids in the operation graph and the variant pack.
enum : int64_t { kX = 1, kW = 2, kBias = 3, kZ = 4, kY = 5, kVirtual = 100 };

// cuDNN's own last error message with the status, for errors that name the node.
std::string cudnn_message(cudnnStatus_t s) {
    char detail[512] = {0};
    cudnnGetLastErrorString(detail, sizeof(detail));
    return std::string(cudnnGetErrorString(s)) + (detail[0] ? std::string(": ") + detail : std::string());
}

void set_attr(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
              int64_t count, const void* value, const std::string& where) {
    cudnnStatus_t s = cudnnBackendSetAttribute(d, name, type, count, value);
    if (s != CUDNN_STATUS_SUCCESS)
        throw Error("node '" + where + "': cuDNN graph attribute " + std::to_string((int)name) + ": " +
                    cudnn_message(s));
}

// A descriptor-valued attribute: one descriptor, or a list.
void set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, const BackendDescriptor& value,
              const std::string& where) {
    cudnnBackendDescriptor_t v = value.get();
    set_attr(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v, where);
}

cudnnDataType_t storage_type(Precision p) { return p == Precision::fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

// A tensor (N, C, H, W) stored NHWC in a buffer of `row` channels a position (strides row*H*W, 1, W*row,
// row; row = C unless the tensor is one group's channel slice): activations, and filters (O, I, KH, KW)
// stored OHWI, which is the same stride pattern.
BackendDescriptor make_tensor(int64_t uid, int64_t n, int64_t c, int64_t h, int64_t w, cudnnDataType_t dt,
                              bool is_virtual, const std::string& where, int64_t row = 0) {
    BackendDescriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR, where);
    if (row == 0) row = c;
    const int64_t dims[4] = {n, c, h, w}, strides[4] = {row * h * w, 1, w * row, row}, align = 16;
    const bool virt = is_virtual;
    set_attr(t.get(), CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, where);
    set_attr(t.get(), CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims, where);
    set_attr(t.get(), CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides, where);
    set_attr(t.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, where);
    set_attr(t.get(), CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, where);
    set_attr(t.get(), CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt, where);
    cudnnStatus_t s = cudnnBackendFinalize(t.get());
    if (s != CUDNN_STATUS_SUCCESS)
        throw Error("node '" + where + "': cuDNN refuses tensor " + std::to_string(uid) + ": " + cudnn_message(s));
    return t;
}

}  // namespace

BackendDescriptor::BackendDescriptor(cudnnBackendDescriptorType_t type, const std::string& where) {
    cudnnStatus_t s = cudnnBackendCreateDescriptor(type, &d_);
    if (s != CUDNN_STATUS_SUCCESS) {
        d_ = nullptr;
        throw Error("node '" + where + "': cannot create cuDNN graph descriptor " + std::to_string((int)type) + ": " +
                    cudnn_message(s));
    }
}

BackendDescriptor& BackendDescriptor::operator=(BackendDescriptor&& o) noexcept {
    if (this != &o) {
        if (d_) cudnnBackendDestroyDescriptor(d_);
        d_ = o.d_;
        o.d_ = nullptr;
    }
    return *this;
}

BackendDescriptor::~BackendDescriptor() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
}

bool GraphConvLaunch::describe(const ConvProblem& p, cudnnHandle_t handle, const std::string& node, std::string* why,
                               bool per_group) {
    p_ = p;
    node_ = node;
    const Conv2dAttrs& a = p.attrs;
    const cudnnDataType_t dt = storage_type(p.precision), acc = CUDNN_DATA_FLOAT;
    slices_ = per_group ? a.groups : 1;
    const int64_t es = storage_bytes(p.precision);
    if (per_group && (a.groups < 2 || (a.in_channels / a.groups * es) % 16 || (a.out_channels / a.groups * es) % 16)) {
        *why = "per group needs groups whose channel slices start 16-byte aligned";
        return false;
    }
    // Per group: one dense convolution over group g's channel slice of x (cin / G of the cin channels at
    // each position) writing its slice of y, run once a group with the pointers moved (make_variant_pack).
    const int64_t n = p.batch, cin = a.in_channels / slices_, cout = a.out_channels / slices_;
    const int64_t in_row = a.in_channels, out_row = a.out_channels, w_cin = per_group ? cin : cin / a.groups;
    // The graph's tensors: x, w (OHWI), bias, z, y in the storage type; the float virtual tensors between the
    // operations. `last` names the tensor the next operation reads.
    tensors_.push_back(make_tensor(kX, n, cin, p.in_h, p.in_w, dt, false, node, in_row));
    tensors_.push_back(make_tensor(kW, cout, w_cin, a.kernel_h, a.kernel_w, dt, false, node));
    tensors_.push_back(make_tensor(kBias, 1, cout, 1, 1, dt, false, node));
    if (p.has_z) tensors_.push_back(make_tensor(kZ, n, cout, p.out_h, p.out_w, dt, false, node, out_row));
    tensors_.push_back(make_tensor(kY, n, cout, p.out_h, p.out_w, dt, false, node, out_row));
    const int pointwise = 1 + (p.has_z ? 1 : 0) + (p.relu ? 1 : 0);  // bias, residual, ReLU
    for (int k = 0; k < pointwise; k++)  // virtual outputs of the convolution and all but the last pointwise op
        tensors_.push_back(make_tensor(kVirtual + k, n, cout, p.out_h, p.out_w, acc, true, node));
    auto tensor = [&](int64_t uid) -> const BackendDescriptor& {
        int index = uid == kX ? 0 : uid == kW ? 1 : uid == kBias ? 2 : uid == kZ ? 3 : uid == kY ? (p.has_z ? 4 : 3)
                                                                                       : (p.has_z ? 5 : 4) + (int)(uid - kVirtual);
        return tensors_[index];
    };

    conv_ = BackendDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, node);
    const int64_t dims = 2, pre[2] = {a.pad_h, a.pad_w}, post[2] = {a.pad_h, a.pad_w};
    const int64_t stride[2] = {a.stride_h, a.stride_w}, dilation[2] = {a.dilation_h, a.dilation_w};
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &acc, node);
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, node);
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims, node);
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pre, node);
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, post, node);
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride, node);
    set_attr(conv_.get(), CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation, node);
    cudnnStatus_t s = cudnnBackendFinalize(conv_.get());
    if (s != CUDNN_STATUS_SUCCESS) {
        *why = "cuDNN refuses the convolution descriptor: " + cudnn_message(s);
        return false;
    }

    // conv(x, w) -> virtual 0
    const float one = 1.0f, zero = 0.0f;
    ops_.emplace_back(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, node);
    cudnnBackendDescriptor_t op = ops_.back().get();
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, tensor(kX), node);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, tensor(kW), node);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, tensor(kVirtual), node);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv_, node);
    set_attr(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &one, node);
    set_attr(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &zero, node);
    s = cudnnBackendFinalize(op);
    if (s != CUDNN_STATUS_SUCCESS) {
        *why = "cuDNN refuses the convolution operation: " + cudnn_message(s);
        return false;
    }

    // Then + bias, + z, ReLU: each reads the previous output; the last one writes y.
    struct Step {
        cudnnPointwiseMode_t mode;
        int64_t operand;  // the second input's uid, or 0
    };
    std::vector<Step> steps{{CUDNN_POINTWISE_ADD, kBias}};
    if (p.has_z) steps.push_back({CUDNN_POINTWISE_ADD, kZ});
    if (p.relu) steps.push_back({CUDNN_POINTWISE_RELU_FWD, 0});
    for (size_t k = 0; k < steps.size(); k++) {
        pointwise_.emplace_back(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, node);
        cudnnBackendDescriptor_t pw = pointwise_.back().get();
        set_attr(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &steps[k].mode, node);
        set_attr(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &acc, node);
        s = cudnnBackendFinalize(pw);
        if (s != CUDNN_STATUS_SUCCESS) {
            *why = "cuDNN refuses a pointwise descriptor: " + cudnn_message(s);
            return false;
        }
        ops_.emplace_back(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, node);
        op = ops_.back().get();
        const bool last = k + 1 == steps.size();
        set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pointwise_.back(), node);
        set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, tensor(kVirtual + (int64_t)k), node);
        if (steps[k].operand) set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, tensor(steps[k].operand), node);
        set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, last ? tensor(kY) : tensor(kVirtual + (int64_t)k + 1), node);
        s = cudnnBackendFinalize(op);
        if (s != CUDNN_STATUS_SUCCESS) {
            *why = "cuDNN refuses a pointwise operation: " + cudnn_message(s);
            return false;
        }
    }

    graph_ = BackendDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, node);
    std::vector<cudnnBackendDescriptor_t> list;
    for (const BackendDescriptor& d : ops_) list.push_back(d.get());
    set_attr(graph_.get(), CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, (int64_t)list.size(),
             list.data(), node);
    if (handle) set_attr(graph_.get(), CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, node);
    s = cudnnBackendFinalize(graph_.get());
    if (s != CUDNN_STATUS_SUCCESS) {
        *why = "cuDNN refuses the operation graph: " + cudnn_message(s);
        return false;
    }
    return true;
}

std::vector<BackendDescriptor> GraphConvLaunch::heuristic_configs() const {
    BackendDescriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, node_);
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    set_desc(heur.get(), CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph_, node_);
    set_attr(heur.get(), CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, node_);
    std::vector<BackendDescriptor> configs;
    if (cudnnBackendFinalize(heur.get()) != CUDNN_STATUS_SUCCESS) return configs;
    int64_t count = 0;
    if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr) != CUDNN_STATUS_SUCCESS ||
        count <= 0)
        return configs;
    count = std::min<int64_t>(count, kMaxCachedAlgo + 1);  // a rank the cache file can hold
    for (int64_t i = 0; i < count; i++) configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, node_);
    std::vector<cudnnBackendDescriptor_t> raw;
    for (const BackendDescriptor& c : configs) raw.push_back(c.get());
    int64_t got = 0;
    if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                 raw.data()) != CUDNN_STATUS_SUCCESS)
        got = 0;
    configs.resize((size_t)std::max<int64_t>(0, std::min(got, count)));
    return configs;
}

bool GraphConvLaunch::engine_allowed(const BackendDescriptor& config) const {
    BackendDescriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, node_);
    cudnnBackendDescriptor_t e = engine.get();
    int64_t got = 0;
    if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                                 &e) != CUDNN_STATUS_SUCCESS)
        return false;
    cudnnBackendNumericalNote_t numerical[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    cudnnBackendBehaviorNote_t behavior[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
    int64_t n_numerical = 0, n_behavior = 0;
    if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_numerical, numerical) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                 CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n_behavior, behavior) != CUDNN_STATUS_SUCCESS)
        return false;
    for (int64_t i = 0; i < n_behavior && i < CUDNN_BEHAVIOR_NOTE_TYPE_COUNT; i++)
        if (behavior[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) return false;
    return cudnn_engine_notes_allowed(p_.precision, numerical,
                                      std::min<int64_t>(n_numerical, (int64_t)CUDNN_NUMERICAL_NOTE_TYPE_COUNT));
}

bool cudnn_engine_notes_allowed(Precision p, const cudnnBackendNumericalNote_t* notes, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (notes[i]) {
        case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
        case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:  // partial sums in half
            return false;
        // fp32 is IEEE float: no TF32. cuDNN marks the engines that run float data on tensor cores as TF32
        // with both notes, so tf32 keeps them (and fp16's data is half already).
        case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
        case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
            if (p == Precision::fp32) return false;
            break;
        default: break;
        }
    }
    return true;
}

bool GraphConvLaunch::engine_choice_of(const BackendDescriptor& config, CudnnEngineChoice* out) const {
    BackendDescriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, node_);
    cudnnBackendDescriptor_t e = engine.get();
    int64_t got = 0;
    CudnnEngineChoice c;
    if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                                 &e) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got, &c.global_index) !=
            CUDNN_STATUS_SUCCESS ||
        got != 1 || c.global_index < 0)
        return false;
    // The knob settings: cuDNN fills as many knob-choice descriptors as the configuration has.
    constexpr int kSlots = CUDNN_KNOB_TYPE_COUNTS < kMaxCudnnKnobs ? CUDNN_KNOB_TYPE_COUNTS : kMaxCudnnKnobs;
    std::vector<BackendDescriptor> choices;
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int k = 0; k < kSlots; k++) {
        choices.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, node_);
        raw.push_back(choices.back().get());
    }
    int64_t count = 0;
    if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR, kSlots,
                                 &count, raw.data()) != CUDNN_STATUS_SUCCESS ||
        count < 0 || count > kSlots)
        return false;
    for (int64_t k = 0; k < count; k++) {
        cudnnBackendKnobType_t type;
        int64_t value = 0;
        if (cudnnBackendGetAttribute(raw[k], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &got, &type) !=
                CUDNN_STATUS_SUCCESS ||
            cudnnBackendGetAttribute(raw[k], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &got, &value) !=
                CUDNN_STATUS_SUCCESS)
            return false;
        c.knobs.emplace_back((int64_t)type, value);
    }
    *out = std::move(c);
    return true;
}

bool GraphConvLaunch::config_from(const CudnnEngineChoice& c, BackendDescriptor* config,
                                  std::vector<BackendDescriptor>* parts) const {
    auto ok = [](cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; };
    std::vector<BackendDescriptor> made;
    made.emplace_back(CUDNN_BACKEND_ENGINE_DESCRIPTOR, node_);
    cudnnBackendDescriptor_t engine = made.back().get(), graph = graph_.get();
    if (!ok(cudnnBackendSetAttribute(engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                     &graph)) ||
        !ok(cudnnBackendSetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &c.global_index)) ||
        !ok(cudnnBackendFinalize(engine)))
        return false;
    std::vector<cudnnBackendDescriptor_t> knobs;
    for (const auto& k : c.knobs) {
        made.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, node_);
        cudnnBackendDescriptor_t choice = made.back().get();
        if (k.first < 0 || k.first >= (int64_t)CUDNN_KNOB_TYPE_COUNTS) return false;  // not a knob of this cuDNN
        const cudnnBackendKnobType_t type = (cudnnBackendKnobType_t)k.first;
        const int64_t value = k.second;
        if (!ok(cudnnBackendSetAttribute(choice, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type)) ||
            !ok(cudnnBackendSetAttribute(choice, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &value)) ||
            !ok(cudnnBackendFinalize(choice)))
            return false;
        knobs.push_back(choice);
    }
    BackendDescriptor cfg(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, node_);
    if (!ok(cudnnBackendSetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &engine)) ||
        (!knobs.empty() && !ok(cudnnBackendSetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                                        CUDNN_TYPE_BACKEND_DESCRIPTOR, (int64_t)knobs.size(),
                                                        knobs.data()))) ||
        !ok(cudnnBackendFinalize(cfg.get())))
        return false;
    *config = std::move(cfg);
    *parts = std::move(made);
    return true;
}

bool GraphConvLaunch::make_plan(cudnnHandle_t handle, const BackendDescriptor& config, size_t workspace_limit,
                                BackendDescriptor* plan, int64_t* workspace) const {
    BackendDescriptor candidate(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, node_);
    set_attr(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, node_);
    set_desc(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config, node_);
    const auto t0 = std::chrono::steady_clock::now();
    const cudnnStatus_t finalized = cudnnBackendFinalize(candidate.get());
    plans_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (finalized != CUDNN_STATUS_SUCCESS) return false;
    int64_t ws = 0, got = 0;
    if (cudnnBackendGetAttribute(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &got,
                                 &ws) != CUDNN_STATUS_SUCCESS ||
        ws < 0 || (size_t)ws > workspace_limit)
        return false;
    *plan = std::move(candidate);
    *workspace = ws;
    return true;
}

void GraphConvLaunch::make_variant_pack(const ConvBuffers& b) {
    const Conv2dAttrs& a = p_.attrs;
    const int64_t es = storage_bytes(p_.precision);
    // Group g's slices: channels g*cin/G.. of x, g*cout/G.. of bias, z and y, and filter rows g*cout/G..
    const int64_t in_step = a.in_channels / slices_ * es, out_step = a.out_channels / slices_ * es;
    const int64_t w_step = (int64_t)a.out_channels / slices_ * a.kernel_h * a.kernel_w * (a.in_channels / a.groups) * es;
    auto at = [](const void* base, int64_t bytes) { return (void*)((const char*)base + bytes); };
    packs_.clear();
    for (int g = 0; g < slices_; g++) {
        std::vector<int64_t> uids{kX, kW, kBias, kY};
        std::vector<void*> pointers{at(b.x, g * in_step), at(b.w, g * w_step), at(b.bias, g * out_step),
                                    at(b.y, g * out_step)};
        if (p_.has_z) {
            uids.push_back(kZ);
            pointers.push_back(at(b.z, g * out_step));
        }
        packs_.emplace_back(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, node_);
        cudnnBackendDescriptor_t pack = packs_.back().get();
        void* workspace = b.workspace;
        set_attr(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, (int64_t)uids.size(), uids.data(), node_);
        set_attr(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, (int64_t)pointers.size(),
                 pointers.data(), node_);
        set_attr(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, node_);
        cudnnStatus_t s = cudnnBackendFinalize(pack);
        if (s != CUDNN_STATUS_SUCCESS)
            throw Error("node '" + node_ + "': cuDNN refuses the variant pack: " + cudnn_message(s));
    }
    bound_ = b;
}

cudnnStatus_t GraphConvLaunch::execute(cudnnHandle_t handle, const BackendDescriptor& plan) const {
    for (const BackendDescriptor& pack : packs_) {  // one run a group (one in all without per_group)
        cudnnStatus_t s = cudnnBackendExecute(handle, plan.get(), pack.get());
        if (s != CUDNN_STATUS_SUCCESS) return s;
    }
    return CUDNN_STATUS_SUCCESS;
}

bool GraphConvLaunch::choose_plan(cudnnHandle_t handle, const ConvBuffers& b, ConvAlgoCache& cache,
                                  const std::string& key, bool* from_cache) {
    *from_cache = false;
    restored_ = false;
    if (!b.bias) throw Error("node '" + node_ + "': the cuDNN graph needs a bias buffer (zeros when the conv has none)");
    make_variant_pack(b);
    // A cached engine: rebuilt from its global index and knobs, with no heuristic query.
    ConvAlgoChoice cached;
    const bool have_cached = cache.lookup(key, &cached) && cached.algo >= 0;
    CudnnEngineChoice engine;
    if (have_cached && decode_cudnn_engine_choice(cached.opaque, &engine)) {
        BackendDescriptor config;
        std::vector<BackendDescriptor> parts;
        if (config_from(engine, &config, &parts) && engine_allowed(config) &&
            make_plan(handle, config, b.workspace_bytes, &plan_, &workspace_) && workspace_ == cached.workspace_bytes &&
            execute(handle, plan_) == CUDNN_STATUS_SUCCESS) {
            rank_ = cached.algo;
            restored_ = true;
            *from_cache = true;
            keep_plan_source(std::move(config), std::move(parts));
            return true;
        }
        plan_ = BackendDescriptor();  // a plan made but refused: it goes before the configuration it came from
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<BackendDescriptor> configs = heuristic_configs();
    heuristics_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Else its rank in the heuristic list (an entry without the engine, or whose engine did not rebuild
    // here, gains the rank's engine for the next start).
    if (have_cached && cached.algo < (int)configs.size() && engine_allowed(configs[cached.algo]) &&
        make_plan(handle, configs[cached.algo], b.workspace_bytes, &plan_, &workspace_) &&
        execute(handle, plan_) == CUDNN_STATUS_SUCCESS) {
        rank_ = cached.algo;
        *from_cache = true;
        if (engine_choice_of(configs[cached.algo], &engine)) {
            const std::string record = encode_cudnn_engine_choice(engine);
            // Rewritten where the engine or its workspace differs from the entry, so the next start restores.
            if (record != cached.opaque || workspace_ != cached.workspace_bytes)
                cache.insert(key, {cached.algo, 0, workspace_, record});
        }
        keep_plan_source(std::move(configs[cached.algo]), {});
        return true;
    }
    plan_ = BackendDescriptor();  // as above: none outlives `configs`
    cudaStream_t stream = nullptr;
    RESNEST_CUDNN_CHECK_AT(cudnnGetStream(handle, &stream), node_);
    int best = -1, tried = 0;
    float best_ms = 0.0f;
    BackendDescriptor best_plan;
    int64_t best_ws = 0;
    for (int i = 0; i < (int)configs.size() && tried < kMaxCandidates; i++) {
        if (!engine_allowed(configs[i])) continue;
        BackendDescriptor plan;
        int64_t ws = 0;
        if (!make_plan(handle, configs[i], b.workspace_bytes, &plan, &ws)) continue;
        if (execute(handle, plan) != CUDNN_STATUS_SUCCESS) continue;
        tried++;
        float ms = time_plan(handle, plan, stream);
        if (best < 0 || ms < best_ms) {
            best = i, best_ms = ms, best_ws = ws;
            best_plan = std::move(plan);
        }
    }
    if (best < 0) {
        rank_ = -1;
        return false;
    }
    plan_ = std::move(best_plan);
    workspace_ = best_ws;
    rank_ = best;
    std::string serialized;
    if (engine_choice_of(configs[best], &engine)) serialized = encode_cudnn_engine_choice(engine);
    cache.insert(key, {best, 0, best_ws, serialized});
    keep_plan_source(std::move(configs[best]), {});
    return true;
}

void GraphConvLaunch::keep_plan_source(BackendDescriptor config, std::vector<BackendDescriptor> parts) {
    plan_config_ = std::move(config);
    plan_config_parts_ = std::move(parts);
}

void GraphConvLaunch::launch(cudnnHandle_t handle, const ConvBuffers& b, cudaStream_t stream) const {
    (void)stream;  // the handle carries the stream
    if (rank_ < 0) throw Error("node '" + node_ + "': the cuDNN graph was launched before a plan was chosen");
    if (b.x != bound_.x || b.w != bound_.w || b.bias != bound_.bias || b.z != bound_.z || b.y != bound_.y ||
        b.workspace != bound_.workspace)
        throw Error("node '" + node_ + "': the cuDNN graph was launched on buffers other than those it was bound to");
    cudnnStatus_t s = execute(handle, plan_);
    if (s != CUDNN_STATUS_SUCCESS) throw Error("node '" + node_ + "': cudnnBackendExecute: " + cudnn_message(s));
}

float GraphConvLaunch::time_plan(cudnnHandle_t handle, const BackendDescriptor& plan, cudaStream_t stream) const {
    return mean_launch_ms(stream, 3, [&] { RESNEST_CUDNN_CHECK_AT(execute(handle, plan), node_); }, node_);
}

}  // namespace resnest
