// cuda_backend.h: the CUDA backend's engine factory (cuDNN convolutions, cuBLAS classifier, the kernels in
// kernels/, CUDA graphs). Built only when RESNEST_HAVE_CUDA is defined.
#pragma once
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "graph.h"
#include "resnest/engine.h"
#include "weights.h"

namespace resnest {

// Creates CUDA's context on `device` on a thread of its own, so that it overlaps the host's part of a load
// (reading the graph and the weights, the passes, the weight layout); the CUDA calls that follow wait for it
// as CUDA's own initialisation would. wait() (or the destructor) joins the thread. Errors are left for the
// load's own CUDA calls to report.
class CudaInitialization {
  public:
    explicit CudaInitialization(int device);
    ~CudaInitialization() { wait(); }
    CudaInitialization(const CudaInitialization&) = delete;
    CudaInitialization& operator=(const CudaInitialization&) = delete;
    void wait() {
        if (thread_.joinable()) thread_.join();
    }
    double seconds() const { return seconds_; }  // how long the context took, after wait()

  private:
    std::thread thread_;
    double seconds_ = 0.0;
};

// `graph` has been through the passes (or not); every op of models/OPS.md, fused or not, runs.
std::shared_ptr<Engine> cuda_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                           const ModelSummary& summary, std::vector<std::string> pass_log);

}  // namespace resnest
