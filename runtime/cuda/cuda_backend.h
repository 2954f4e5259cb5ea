// cuda_backend.h: the CUDA backend's engine factory (cuDNN convolutions, cuBLAS classifier, the kernels in
// kernels/, CUDA graphs). Built only when RESNEST_HAVE_CUDA is defined.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "graph.h"
#include "resnest/engine.h"
#include "weights.h"

namespace resnest {

// `graph` has been through the passes (or not); every op of models/OPS.md, fused or not, runs.
std::shared_ptr<Engine> cuda_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                           const ModelSummary& summary, std::vector<std::string> pass_log);

}  // namespace resnest
