// cuda_timing.cpp: timing a candidate on CUDA events, back to back and, for short calls, as graph replays
// (see cuda_timing.h).
#include "cuda/cuda_timing.h"

#include <cstdlib>
#include <cstring>

#include "cuda/cuda_check.h"

namespace resnest {

namespace {

// Two events, destroyed with the object.
struct EventPair {
    cudaEvent_t start = nullptr, stop = nullptr;
    explicit EventPair(const std::string& where) {
        RESNEST_CUDA_CHECK_AT(cudaEventCreate(&start), where);
        cudaError_t e = cudaEventCreate(&stop);
        if (e != cudaSuccess) {
            cudaEventDestroy(start);
            RESNEST_CUDA_CHECK_AT(e, where);
        }
    }
    ~EventPair() {
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
    }
    EventPair(const EventPair&) = delete;
    EventPair& operator=(const EventPair&) = delete;

    // ms between the two, once `stop` is recorded.
    float elapsed(const std::string& where) const {
        RESNEST_CUDA_CHECK_AT(cudaEventSynchronize(stop), where);
        float ms = 0.0f;
        RESNEST_CUDA_CHECK_AT(cudaEventElapsedTime(&ms, start, stop), where);
        return ms;
    }
};

// The calls captured into an executable graph; null when the capture was refused or invalidated (nothing
// left pending: the capture is ended and the error cleared).
cudaGraphExec_t capture_calls(cudaStream_t stream, int reps, const std::function<void()>& launch) {
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return nullptr;
    }
    bool launched = true;
    try {
        for (int r = 0; r < reps; r++) launch();
    } catch (...) {
        launched = false;  // a call refused inside a capture: it ran outside one a moment ago
    }
    cudaGraph_t graph = nullptr;
    cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    cudaGraphExec_t exec = nullptr;
    if (launched && ended == cudaSuccess && graph && cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
        exec = nullptr;
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    return exec;
}

// False under RESNEST_CHOICE_TIMING=launches.
bool replay_short_calls() {
    static const bool replay = [] {
        const char* v = std::getenv("RESNEST_CHOICE_TIMING");
        return !(v && std::strcmp(v, "launches") == 0);
    }();
    return replay;
}

}  // namespace

float mean_launch_ms(cudaStream_t stream, int reps, const std::function<void()>& launch, const std::string& where) {
    EventPair events(where);
    launch();  // untimed: lazy library set-up, outside any capture
    // One call on its own says which kind of call this is (a long one needs no graph).
    RESNEST_CUDA_CHECK_AT(cudaEventRecord(events.start, stream), where);
    launch();
    RESNEST_CUDA_CHECK_AT(cudaEventRecord(events.stop, stream), where);
    const float single = events.elapsed(where);
    auto back_to_back = [&] {
        RESNEST_CUDA_CHECK_AT(cudaEventRecord(events.start, stream), where);
        for (int r = 0; r < reps; r++) launch();
        RESNEST_CUDA_CHECK_AT(cudaEventRecord(events.stop, stream), where);
        return events.elapsed(where) / reps;
    };
    if (single >= kHostBoundMs || !replay_short_calls()) return back_to_back();

    cudaGraphExec_t exec = capture_calls(stream, reps, launch);
    if (!exec) return back_to_back();
    constexpr int kReplays = 3;
    float replayed = 0.0f;
    cudaError_t e = cudaGraphLaunch(exec, stream);  // untimed: the first replay uploads the graph
    if (e == cudaSuccess) e = cudaEventRecord(events.start, stream);
    for (int r = 0; r < kReplays && e == cudaSuccess; r++) e = cudaGraphLaunch(exec, stream);
    if (e == cudaSuccess) e = cudaEventRecord(events.stop, stream);
    if (e == cudaSuccess) {
        try {
            replayed = events.elapsed(where) / (kReplays * reps);
        } catch (...) {
            cudaGraphExecDestroy(exec);
            throw;
        }
    }
    cudaGraphExecDestroy(exec);
    if (e != cudaSuccess) {  // the replay was refused: time ordinary launches
        cudaGetLastError();
        return back_to_back();
    }
    return replayed;
}

}  // namespace resnest
