// cuda_timing.cpp: timing a candidate on CUDA events, back to back and, for short calls, as graph replays
// (see cuda_timing.h).
#include "cuda/cuda_timing.h"
#include "cuda/cuda_engine.h"

#include <cstdlib>
#include <cstring>

#include "cuda/cuda_check.h"

namespace resnest {

namespace {

thread_local ChoiceTimingTally tally;

// The calls captured into *out, instantiated; false (out left empty) when the capture was refused or
// invalidated (nothing left pending: the capture is ended and the error cleared).
bool capture_calls(cudaStream_t stream, int reps, const std::function<void()>& launch, CapturedGraph* out) {
    out->reset();
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    bool launched = true;
    try {
        for (int r = 0; r < reps; r++) launch();
    } catch (...) {
        launched = false;  // a call refused inside a capture: it ran outside one a moment ago
    }
    const cudaError_t ended = cudaStreamEndCapture(stream, &out->graph);
    const bool ok = launched && ended == cudaSuccess && out->graph &&
                    cudaGraphInstantiate(&out->exec, out->graph, 0) == cudaSuccess;
    cudaGetLastError();
    if (!ok) out->reset();
    return ok;
}

// False under RESNEST_CHOICE_TIMING=launches.
bool replay_short_calls() {
    static const bool replay = [] {
        std::string unused;  // the engine warns
        return !env_setting_is("RESNEST_CHOICE_TIMING", std::getenv("RESNEST_CHOICE_TIMING"), "replays", "launches",
                               "", &unused);
    }();
    return replay;
}

}  // namespace

TimingEvents::TimingEvents(size_t count, const std::string& where) : events(count, nullptr) {
    for (cudaEvent_t& e : events) {
        const cudaError_t status = cudaEventCreate(&e);
        if (status == cudaSuccess) continue;
        e = nullptr;
        release();  // a constructor that throws runs no destructor
        RESNEST_CUDA_CHECK_AT(status, where);
    }
}

TimingEvents::~TimingEvents() { release(); }

void TimingEvents::release() {
    for (cudaEvent_t& e : events)
        if (e) cudaEventDestroy(e), e = nullptr;
}

float elapsed_ms(cudaEvent_t from, cudaEvent_t to, const std::string& where) {
    RESNEST_CUDA_CHECK_AT(cudaEventSynchronize(to), where);
    float ms = 0.0f;
    RESNEST_CUDA_CHECK_AT(cudaEventElapsedTime(&ms, from, to), where);
    return ms;
}

float TimingEvents::elapsed(size_t from, size_t to, const std::string& where) const {
    return elapsed_ms(events[from], events[to], where);
}

void CapturedGraph::reset() {
    if (exec) cudaGraphExecDestroy(exec), exec = nullptr;
    if (graph) cudaGraphDestroy(graph), graph = nullptr;
}

ChoiceTimingTally choice_timing_tally() { return tally; }

float mean_launch_ms(cudaStream_t stream, int reps, const std::function<void()>& launch, const std::string& where) {
    TimingEvents events(2, where);
    const cudaEvent_t start = events.events[0], stop = events.events[1];
    launch();  // untimed: lazy library set-up, outside any capture
    // One call on its own says which kind of call this is (a long one needs no graph).
    RESNEST_CUDA_CHECK_AT(cudaEventRecord(start, stream), where);
    launch();
    RESNEST_CUDA_CHECK_AT(cudaEventRecord(stop, stream), where);
    const float single = events.elapsed(0, 1, where);
    auto back_to_back = [&] {
        RESNEST_CUDA_CHECK_AT(cudaEventRecord(start, stream), where);
        for (int r = 0; r < reps; r++) launch();
        RESNEST_CUDA_CHECK_AT(cudaEventRecord(stop, stream), where);
        return events.elapsed(0, 1, where) / reps;
    };
    if (single >= kHostBoundMs || !replay_short_calls()) {
        (single >= kHostBoundMs ? tally.long_calls : tally.launches_asked)++;
        return back_to_back();
    }

    CapturedGraph captured;
    if (!capture_calls(stream, reps, launch, &captured)) {
        tally.not_captured++;
        return back_to_back();
    }
    constexpr int kReplays = 3;
    cudaError_t e = cudaGraphLaunch(captured.exec, stream);  // untimed: the first replay uploads the graph
    if (e == cudaSuccess) e = cudaEventRecord(start, stream);
    for (int r = 0; r < kReplays && e == cudaSuccess; r++) e = cudaGraphLaunch(captured.exec, stream);
    if (e == cudaSuccess) e = cudaEventRecord(stop, stream);
    if (e != cudaSuccess) {  // the replay was refused: time ordinary launches
        cudaGetLastError();
        tally.not_captured++;
        return back_to_back();
    }
    const float ms = events.elapsed(0, 1, where) / (kReplays * reps);
    tally.replayed++;
    return ms;
}

}  // namespace resnest
