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

CarveOutCalls cuda_carve_out_calls() {
    CarveOutCalls c;
    c.get_limit = [](size_t* v) { return cudaDeviceGetLimit(v, cudaLimitPersistingL2CacheSize); };
    c.set_limit = [](size_t v) { return cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, v); };
    c.reset_persisting_lines = [] { return cudaCtxResetPersistingL2Cache(); };
    return c;
}

cudaError_t CarveOutRegistry::acquire(int device, size_t wanted, const CarveOutCalls& calls, size_t* granted) {
    std::lock_guard<std::mutex> hold(lock_);
    size_t current = 0;
    cudaError_t e = calls.get_limit(&current);
    if (e != cudaSuccess) return e;
    const bool first = by_device_.find(device) == by_device_.end();
    bool raised = false;
    if (current < wanted) {
        e = calls.set_limit(wanted);
        if (e != cudaSuccess) return e;
        raised = true;
    }
    size_t now = 0;
    e = calls.get_limit(&now);
    if (e != cudaSuccess) {
        if (first && raised) calls.set_limit(current);  // nobody else holds it: as it was found
        return e;
    }
    if (first) by_device_[device] = {current, 0};
    by_device_[device].second++;
    *granted = now;
    return cudaSuccess;
}

void CarveOutRegistry::release(int device, const CarveOutCalls& calls) {
    std::lock_guard<std::mutex> hold(lock_);
    auto it = by_device_.find(device);
    if (it == by_device_.end() || --it->second.second > 0) return;
    calls.reset_persisting_lines();
    calls.set_limit(it->second.first);
    by_device_.erase(it);
}

int CarveOutRegistry::holders(int device) const {
    std::lock_guard<std::mutex> hold(lock_);
    auto it = by_device_.find(device);
    return it == by_device_.end() ? 0 : it->second.second;
}

CarveOutRegistry& process_carve_out_registry() {
    static CarveOutRegistry* registry = new CarveOutRegistry;
    return *registry;
}

}  // namespace resnest
