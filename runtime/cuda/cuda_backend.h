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

// cuDNN's sub-libraries that the runtime's calls load (the operation graph, its engines and heuristics, the
// legacy operations and convolutions), by soname.
const std::vector<std::string>& cudnn_sublibraries();
// Loads them as cuDNN would at its first calls, after CUDA's initialisation (about 0.6 GB of code: 28 ms with
// the files in the page cache and 0.45 s without on the 2-core development machine): graph, ops and cnn
// through cuDNN's own version checks, the engines and heuristics from the folder cuDNN took the graph
// library from (a file already loaded is not loaded again; they stay loaded). Returns how many loaded.
int preload_cudnn_sublibraries();

// Creates CUDA's context on `device` on a thread of its own and loads cuDNN's sub-libraries on another, so
// that both overlap the host's part of a load (reading the graph and the weights, the passes, the weight
// layout); the CUDA calls that follow wait for the context as CUDA's own initialisation would. wait() (or the
// destructor) joins both threads. Errors are left for the load's own CUDA and cuDNN calls to report.
class CudaInitialization {
  public:
    explicit CudaInitialization(int device);
    ~CudaInitialization() { wait(); }
    CudaInitialization(const CudaInitialization&) = delete;
    CudaInitialization& operator=(const CudaInitialization&) = delete;
    void wait() {
        if (thread_.joinable()) thread_.join();
        if (libraries_.joinable()) libraries_.join();
    }
    double seconds() const { return seconds_; }  // how long the context took, after wait()
    // After wait(): how many of cudnn_sublibraries() loaded there, and how long that took.
    int cudnn_preloaded() const { return cudnn_preloaded_; }
    double cudnn_seconds() const { return cudnn_seconds_; }

  private:
    std::thread thread_, libraries_;
    double seconds_ = 0.0, cudnn_seconds_ = 0.0;
    int cudnn_preloaded_ = 0;
};

// `graph` has been through the passes (or not); every op of models/OPS.md, fused or not, runs.
std::shared_ptr<Engine> cuda_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                           const ModelSummary& summary, std::vector<std::string> pass_log);

}  // namespace resnest
