// cuda_graph_conv.h: one convolution node through cuDNN's graph (backend) API at one batch size, the
// interface cuDNN's newest kernels come through. The operation graph is
//   conv(x, w) -> + bias -> (+ z) -> (ReLU) -> y
// with float virtual tensors in between, so cuDNN may run it as one fused kernel. Engine configurations come
// from cuDNN's heuristics (mode A); engines that compile at run time (their compile would cost the cold start),
// non-deterministic ones, those that reduce in reduced precision (every precision accumulates in float), and
// in fp32 those using tensor cores or down-converting inputs (no TF32) are left out. The
// first few that become execution plans within the workspace are timed on the context's buffers and the
// fastest is kept. The algorithm cache remembers its rank in the heuristic list and the engine itself (global
// index and knobs, cudnn_engine_choice.h): a cached start rebuilds that configuration without the heuristic
// query, and falls back to the rank (then to the search) where cuDNN refuses it.
//
// Per group (grouped convolutions): the graph describes one group as a dense convolution over a channel
// slice of x and y (NHWC strides of the whole tensors), and the plan runs once a group with the pointers
// moved to that group's slices: the grouped arithmetic on dense kernels, without the dense form's G-fold
// work.
#pragma once
#include <cudnn.h>

#include <string>
#include <vector>

#include "cuda/cuda_conv.h"
#include "cudnn_engine_choice.h"

namespace resnest {

// Owns one cudnnBackendDescriptor_t.
class BackendDescriptor {
  public:
    BackendDescriptor() = default;
    explicit BackendDescriptor(cudnnBackendDescriptorType_t type, const std::string& where);
    BackendDescriptor(BackendDescriptor&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
    BackendDescriptor& operator=(BackendDescriptor&& o) noexcept;
    BackendDescriptor(const BackendDescriptor&) = delete;
    BackendDescriptor& operator=(const BackendDescriptor&) = delete;
    ~BackendDescriptor();
    cudnnBackendDescriptor_t get() const { return d_; }

  private:
    cudnnBackendDescriptor_t d_ = nullptr;
};

// Whether an engine with these numerical notes keeps the precision's promise (see the header comment):
// deterministic, reductions in float, and in fp32 neither tensor cores nor down-converted inputs.
bool cudnn_engine_notes_allowed(Precision p, const cudnnBackendNumericalNote_t* notes, int64_t n);

class GraphConvLaunch {
  public:
    // Builds and finalizes the operation graph for p (per_group: for one group, see above). `handle` may be
    // null (no device: the graph is still checked, as the unit tests do); heuristics and plans need it.
    // Returns false and says why when cuDNN does not take the graph; throws on other failures.
    bool describe(const ConvProblem& p, cudnnHandle_t handle, const std::string& node, std::string* why,
                  bool per_group = false);
    // Takes the cached candidate for `key`, or times up to kMaxCandidates plans on `b` and keeps the fastest.
    // Not during graph capture. Returns false when no plan runs (the node keeps another implementation).
    bool choose_plan(cudnnHandle_t handle, const ConvBuffers& b, ConvAlgoCache& cache, const std::string& key,
                     bool* from_cache);
    void launch(cudnnHandle_t handle, const ConvBuffers& b, cudaStream_t stream) const;

    int algorithm() const { return rank_; }  // rank in the heuristic list, -1 before a choice
    // Whether the plan was rebuilt from the cached engine (global index and knobs), with no heuristic query.
    bool restored() const { return restored_; }
    size_t workspace_needed() const { return (size_t)workspace_; }
    int ops() const { return (int)ops_.size(); }  // operations in the graph (conv + pointwise)
    int runs() const { return slices_; }          // executions a launch makes (the groups, per group)
    // Host time choose_plan spent querying heuristics and finalizing execution plans, seconds (the
    // cold-start cost of this way, cache or not).
    double heuristics_seconds() const { return heuristics_s_; }
    double plan_seconds() const { return plans_s_; }

    static constexpr int kMaxCandidates = 4;

  private:
    // The engine configurations heuristics offer, best first (unfiltered, so ranks are stable).
    std::vector<BackendDescriptor> heuristic_configs() const;
    // Whether the engine behind a configuration is one this precision may use (see the header comment).
    bool engine_allowed(const BackendDescriptor& config) const;
    // A configuration's engine global index and knob settings; false where cuDNN does not say.
    bool engine_choice_of(const BackendDescriptor& config, CudnnEngineChoice* out) const;
    // The configuration of engine c on this graph, in *config with the descriptors it refers to in *parts
    // (alive until the plan is made); false where cuDNN refuses any of it.
    bool config_from(const CudnnEngineChoice& c, BackendDescriptor* config, std::vector<BackendDescriptor>* parts) const;
    // An execution plan for a configuration; false when cuDNN refuses it or it needs too much workspace.
    bool make_plan(cudnnHandle_t handle, const BackendDescriptor& config, size_t workspace_limit,
                   BackendDescriptor* plan, int64_t* workspace) const;
    // The variant packs for buffers b (device pointers by tensor uid, and the workspace): one, or one a group.
    void make_variant_pack(const ConvBuffers& b);
    // Runs `plan` on the bound buffers (each group's in turn); timed: the mean device time of a few runs
    // after one untimed one, ms.
    cudnnStatus_t execute(cudnnHandle_t handle, const BackendDescriptor& plan) const;
    float time_plan(cudnnHandle_t handle, const BackendDescriptor& plan, cudaStream_t stream) const;
    // Keeps the engine configuration plan_ was finalized from (and the descriptors it refers to) as long as
    // plan_: cuDNN does not promise that a plan needs nothing it was made from.
    void keep_plan_source(BackendDescriptor config, std::vector<BackendDescriptor> parts);

    ConvProblem p_;
    std::string node_;
    // Members are destroyed in reverse order: the descriptors a plan was made from are declared before it, so
    // the plan goes first.
    std::vector<BackendDescriptor> tensors_, pointwise_, ops_;
    BackendDescriptor conv_, graph_;
    BackendDescriptor plan_config_;                   // what plan_ was finalized from (keep_plan_source)
    std::vector<BackendDescriptor> plan_config_parts_;
    BackendDescriptor plan_;
    std::vector<BackendDescriptor> packs_;
    int slices_ = 1;
    ConvBuffers bound_{};  // the buffers the variant pack points at
    int rank_ = -1;
    bool restored_ = false;
    int64_t workspace_ = 0;
    double heuristics_s_ = 0.0;
    mutable double plans_s_ = 0.0;  // make_plan adds to it
};

}  // namespace resnest
