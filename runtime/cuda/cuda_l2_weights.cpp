// cuda_l2_weights.cpp: the weights' L2 window (cuda_l2_weights.h).
#include "cuda/cuda_l2_weights.h"

#include <algorithm>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"

namespace resnest {

L2WeightWindow plan_l2_weight_window(size_t weights_bytes, size_t max_persisting_bytes, size_t max_window_bytes) {
    L2WeightWindow w;
    if (weights_bytes == 0 || max_persisting_bytes == 0 || max_window_bytes == 0) return w;
    w.window_bytes = std::min(weights_bytes, max_window_bytes);
    w.carve_out_bytes = std::min(w.window_bytes, max_persisting_bytes);
    w.hit_ratio = (float)((double)w.carve_out_bytes / (double)w.window_bytes);
    return w;
}

std::string l2_weights_mode_from(const char* value, std::string* warning) {
    return off_auto_on_from("RESNEST_L2_WEIGHTS", value, "the weights get no L2 window", warning);
}

int set_l2_window_on_kernel_nodes(cudaGraph_t graph, const void* base, const L2WeightWindow& w) {
    size_t count = 0;
    CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &count));
    std::vector<cudaGraphNode_t> nodes(count);
    if (count) CUDA_CHECK(cudaGraphGetNodes(graph, nodes.data(), &count));
    cudaLaunchAttributeValue value = {};
    value.accessPolicyWindow.base_ptr = const_cast<void*>(base);
    value.accessPolicyWindow.num_bytes = w.window_bytes;
    value.accessPolicyWindow.hitRatio = w.hit_ratio;
    value.accessPolicyWindow.hitProp = cudaAccessPropertyPersisting;
    value.accessPolicyWindow.missProp = cudaAccessPropertyStreaming;
    int set = 0;
    for (cudaGraphNode_t node : nodes) {
        cudaGraphNodeType type;
        CUDA_CHECK(cudaGraphNodeGetType(node, &type));
        if (type != cudaGraphNodeTypeKernel) continue;
        CUDA_CHECK(cudaGraphKernelNodeSetAttribute(node, cudaLaunchAttributeAccessPolicyWindow, &value));
        set++;
    }
    return set;
}

}  // namespace resnest
