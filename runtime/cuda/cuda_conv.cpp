// cuda_conv.cpp: cuDNN descriptors, algorithm choice and launch for one convolution (see cuda_conv.h).
#include "cuda/cuda_conv.h"

#include <cuda_fp16.h>

#include <vector>

#include "channel_affine.cuh"
#include "cuda/cuda_check.h"
#include "cuda/cuda_timing.h"

namespace resnest {

ConvProblem conv_problem(const Graph& g, const Node& n, int batch, Precision p) {
    const Shape& x = g.tensors[n.inputs[0]].shape;  // (C, H, W)
    const Shape& y = g.tensors[n.output].shape;
    ConvProblem c;
    c.attrs = n.conv;
    c.batch = batch;
    c.in_h = (int)x[1], c.in_w = (int)x[2], c.out_h = (int)y[1], c.out_w = (int)y[2];
    c.relu = n.fused_relu;
    c.has_z = n.inputs.size() > 1;
    c.precision = p;
    return c;
}

ConvLaunch::~ConvLaunch() {
    if (x_) cudnnDestroyTensorDescriptor(x_);
    if (y_) cudnnDestroyTensorDescriptor(y_);
    if (bias_) cudnnDestroyTensorDescriptor(bias_);
    if (w_) cudnnDestroyFilterDescriptor(w_);
    if (conv_) cudnnDestroyConvolutionDescriptor(conv_);
    if (act_) cudnnDestroyActivationDescriptor(act_);
}

static cudnnDataType_t storage_type(Precision p) { return p == Precision::fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

// The math the precision allows: fp32 is FMA only (no TF32), tf32 and fp16 use the tensor cores.
static cudnnMathType_t math_for(Precision p) {
    return p == Precision::fp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

void ConvLaunch::describe(const ConvProblem& p, const std::string& node) {
    p_ = p;
    node_ = node;
    const Conv2dAttrs& a = p.attrs;
    cudnnDataType_t dt = storage_type(p.precision);
    const std::string& where = node_;
    RESNEST_CUDNN_CHECK_AT(cudnnCreateTensorDescriptor(&x_), where);
    RESNEST_CUDNN_CHECK_AT(cudnnCreateTensorDescriptor(&y_), where);
    RESNEST_CUDNN_CHECK_AT(cudnnCreateTensorDescriptor(&bias_), where);
    RESNEST_CUDNN_CHECK_AT(cudnnCreateFilterDescriptor(&w_), where);
    RESNEST_CUDNN_CHECK_AT(cudnnCreateConvolutionDescriptor(&conv_), where);
    RESNEST_CUDNN_CHECK_AT(cudnnCreateActivationDescriptor(&act_), where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NHWC, dt, p.batch, a.in_channels, p.in_h, p.in_w),
                           where);
    RESNEST_CUDNN_CHECK_AT(
        cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NHWC, dt, p.batch, a.out_channels, p.out_h, p.out_w), where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetTensor4dDescriptor(bias_, CUDNN_TENSOR_NHWC, dt, 1, a.out_channels, 1, 1), where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetFilter4dDescriptor(w_, dt, CUDNN_TENSOR_NHWC, a.out_channels,
                                                      a.in_channels / a.groups, a.kernel_h, a.kernel_w),
                           where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetConvolution2dDescriptor(conv_, a.pad_h, a.pad_w, a.stride_h, a.stride_w,
                                                           a.dilation_h, a.dilation_w, CUDNN_CROSS_CORRELATION,
                                                           CUDNN_DATA_FLOAT),
                           where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetConvolutionGroupCount(conv_, a.groups), where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetConvolutionMathType(conv_, math_for(p.precision)), where);
    RESNEST_CUDNN_CHECK_AT(cudnnSetActivationDescriptor(act_, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0), where);
    int n, c, h, w;
    RESNEST_CUDNN_CHECK_AT(cudnnGetConvolution2dForwardOutputDim(conv_, x_, w_, &n, &c, &h, &w), where);
    if (n != p.batch || c != a.out_channels || h != p.out_h || w != p.out_w)
        throw Error("node '" + node_ + "': cuDNN computes output " + std::to_string(n) + "x" + std::to_string(c) +
                    "x" + std::to_string(h) + "x" + std::to_string(w) + " but the graph says " +
                    std::to_string(p.batch) + "x" + std::to_string(a.out_channels) + "x" + std::to_string(p.out_h) +
                    "x" + std::to_string(p.out_w));
}

cudnnStatus_t ConvLaunch::try_launch(cudnnHandle_t handle, const ConvBuffers& b) const {
    const float one = 1.0f, zero = 0.0f;
    if (p_.relu) {
        // y = relu(1 * conv + alpha2 * z + bias); without a residual z is y and alpha2 is 0.
        const float alpha2 = b.z ? 1.0f : 0.0f;
        const void* z = b.z ? b.z : b.y;
        return cudnnConvolutionBiasActivationForward(handle, &one, x_, b.x, w_, b.w, conv_, algo_, b.workspace,
                                                     workspace_, &alpha2, y_, z, bias_, b.bias, act_, y_, b.y);
    }
    return cudnnConvolutionForward(handle, &one, x_, b.x, w_, b.w, conv_, algo_, b.workspace, workspace_, &zero, y_,
                                   b.y);
}

bool legacy_choice_in_range(const ConvAlgoChoice& c) {
    return c.algo >= 0 && c.algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT && c.math_type >= CUDNN_DEFAULT_MATH &&
           c.math_type <= CUDNN_FMA_MATH;
}

bool legacy_math_allowed(Precision p, int math_type) {
    switch (p) {
    case Precision::fp32: return math_type == CUDNN_FMA_MATH;
    case Precision::tf32: return math_type != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    case Precision::fp16: return true;
    }
    return false;
}

bool ConvLaunch::choose_algorithm(cudnnHandle_t handle, const ConvBuffers& b, ConvAlgoCache& cache,
                                  const std::string& key) {
    ConvAlgoChoice cached;
    if (cache.lookup(key, &cached) && legacy_choice_in_range(cached) &&
        cached.workspace_bytes <= (int64_t)b.workspace_bytes) {
        algo_ = (cudnnConvolutionFwdAlgo_t)cached.algo;
        workspace_ = (size_t)cached.workspace_bytes;
        // fp32 keeps the FMA math describe set; a math type cuDNN refuses is a stale entry like any other.
        // A math type that breaks the precision's promise (an edited line, say) is stale too.
        const bool math_taken = p_.precision == Precision::fp32 ||
                                (legacy_math_allowed(p_.precision, cached.math_type) &&
                                 cudnnSetConvolutionMathType(conv_, (cudnnMathType_t)cached.math_type) ==
                                     CUDNN_STATUS_SUCCESS);
        if (math_taken && try_launch(handle, b) == CUDNN_STATUS_SUCCESS) {
            // A cached algorithm that faults shows here, under this node's name, rather than at a later node.
            cudaStream_t stream = nullptr;
            RESNEST_CUDNN_CHECK_AT(cudnnGetStream(handle, &stream), node_);
            RESNEST_CUDA_CHECK_AT(cudaStreamSynchronize(stream), node_);
            return true;
        }
        // A stale entry (another cuDNN build behind the same version number, say): search again.
        RESNEST_CUDNN_CHECK_AT(cudnnSetConvolutionMathType(conv_, math_for(p_.precision)), node_);
    }
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    int returned = 0;
    RESNEST_CUDNN_CHECK_AT(cudnnFindConvolutionForwardAlgorithmEx(handle, x_, b.x, w_, b.w, conv_, y_, b.y,
                                                                  (int)perf.size(), &returned, perf.data(),
                                                                  b.workspace, b.workspace_bytes),
                           node_);
    int best = -1;
    float best_ms = 0.0f;
    for (int i = 0; i < returned; i++) {
        const cudnnConvolutionFwdAlgoPerf_t& r = perf[i];
        if (r.status != CUDNN_STATUS_SUCCESS || r.memory > b.workspace_bytes) continue;
        // fp32 runs the algorithm with FMA math (set below), so a tensor-op result cannot serve it; tf32 and
        // fp16 take the math type cuDNN timed where it keeps the precision's promise.
        const bool tensor_op = r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
        if (p_.precision == Precision::fp32 ? tensor_op : !legacy_math_allowed(p_.precision, r.mathType)) continue;
        algo_ = r.algo;
        workspace_ = r.memory;
        RESNEST_CUDNN_CHECK_AT(
            cudnnSetConvolutionMathType(conv_, p_.precision == Precision::fp32 ? CUDNN_FMA_MATH : r.mathType), node_);
        if (try_launch(handle, b) != CUDNN_STATUS_SUCCESS) continue;  // e.g. not available for the fused call
        if (!timed_search_) {  // cuDNN's ranking: the first candidate that runs
            best = i;
            break;
        }
        float ms = time_call(handle, b);
        if (best < 0 || ms < best_ms) best = i, best_ms = ms;
    }
    if (best >= 0) {
        const cudnnConvolutionFwdAlgoPerf_t& r = perf[best];
        cudnnMathType_t math = p_.precision == Precision::fp32 ? CUDNN_FMA_MATH : r.mathType;
        algo_ = r.algo;
        workspace_ = r.memory;
        RESNEST_CUDNN_CHECK_AT(cudnnSetConvolutionMathType(conv_, math), node_);
        cache.insert(key, {(int)r.algo, (int)math, (int64_t)r.memory, ""});
        return false;
    }
    throw Error("node '" + node_ + "': cuDNN offers no convolution algorithm for this layer within the " +
                std::to_string(b.workspace_bytes >> 20) + " MiB workspace at precision " +
                precision_name(p_.precision) + " (" + std::to_string(returned) + " candidates tried)");
}

float ConvLaunch::time_call(cudnnHandle_t handle, const ConvBuffers& b) const {
    cudaStream_t stream = nullptr;
    RESNEST_CUDNN_CHECK_AT(cudnnGetStream(handle, &stream), node_);
    return mean_launch_ms(stream, 3, [&] { launch(handle, b, stream); }, node_);
}

void ConvLaunch::pin_algorithm(cudnnHandle_t handle, const ConvBuffers& b, cudnnConvolutionFwdAlgo_t algo) {
    algo_ = algo;
    RESNEST_CUDNN_CHECK_AT(cudnnGetConvolutionForwardWorkspaceSize(handle, x_, w_, conv_, y_, algo, &workspace_), node_);
    if (workspace_ > b.workspace_bytes)
        throw Error("node '" + node_ + "': the pinned algorithm needs " + std::to_string(workspace_) +
                    " bytes of workspace, more than the " + std::to_string(b.workspace_bytes) + " given");
}

void ConvLaunch::launch(cudnnHandle_t handle, const ConvBuffers& b, cudaStream_t stream) const {
    RESNEST_CUDNN_CHECK_AT(try_launch(handle, b), node_);
    if (p_.relu || (!b.bias_f && !b.z)) return;
    // Identity activation: bias and residual in one elementwise pass over y.
    long long count = (long long)p_.batch * p_.out_h * p_.out_w * p_.attrs.out_channels;
    if (p_.precision == Precision::fp16)
        channel_affine_activation<__half>((const __half*)b.y, nullptr, b.bias_f, (const __half*)b.z, (__half*)b.y,
                                          count, p_.attrs.out_channels, false, stream);
    else
        channel_affine_activation<float>((const float*)b.y, nullptr, b.bias_f, (const float*)b.z, (float*)b.y, count,
                                         p_.attrs.out_channels, false, stream);
}

}  // namespace resnest
