// cpu_backend.h: the CPU reference backend's engine: the graph, float32 weights, per-node prepared
// parameters (BN as scale/shift) and the memory plan for the largest batch.
#pragma once
#include <memory>

#include "graph.h"
#include "planner.h"
#include "resnest/engine.h"
#include "weights.h"

namespace resnest {

// `pass_log`: what the graph passes did to `graph` (empty when they did not run).
std::shared_ptr<Engine> cpu_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                          const ModelSummary& summary, std::vector<std::string> pass_log);

}  // namespace resnest
