// cuda_timing.h: the one way the CUDA backend times a candidate while it chooses (an algorithm, a plan, a
// way to run a convolution or the classifier): the device time per call as the forward pass's CUDA graph
// would run it.
//
// After one untimed call, one call is timed on its own. From kHostBoundMs up, `reps` back-to-back ordinary
// launches are timed (the host's cost of issuing each is hidden behind the previous one). Under it, the
// host's cost of issuing the call (several microseconds for a cuBLASLt or cuDNN call) may be what back-to-back
// timing measures rather than the kernels, and at batch 1 every candidate lands near that floor; the `reps`
// calls are then captured into a CUDA graph and its replays are timed instead, which is how the forward pass
// runs them. A call that cannot be captured (or a capture another thread invalidated)
// keeps the back-to-back time (counted: ChoiceTimingTally). RESNEST_CHOICE_TIMING=launches (a diagnostic, for comparing the two) keeps
// the back-to-back time always.
//
// Also the owners of what timing and capture hold, shared with the backend's profile and forward-pass
// graph: a set of CUDA events, and a captured graph with its executable instance.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

namespace resnest {

// CUDA events (timing enabled), created together and destroyed with the object, also when a creation
// fails part way (`where` names the caller in that error).
// ms from `from` to `to`, once `to` has completed (waited for here); errors name `where`.
float elapsed_ms(cudaEvent_t from, cudaEvent_t to, const std::string& where);

struct TimingEvents {
    std::vector<cudaEvent_t> events;
    TimingEvents(size_t count, const std::string& where);
    ~TimingEvents();
    TimingEvents(const TimingEvents&) = delete;
    TimingEvents& operator=(const TimingEvents&) = delete;
    // ms from events[from] to events[to], once events[to] has completed (waited for here).
    float elapsed(size_t from, size_t to, const std::string& where) const;

  private:
    void release();
};

// A captured CUDA graph and its executable instance, destroyed together; reset() empties it early.
struct CapturedGraph {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CapturedGraph() = default;
    ~CapturedGraph() { reset(); }
    CapturedGraph(const CapturedGraph&) = delete;
    CapturedGraph& operator=(const CapturedGraph&) = delete;
    void reset();
};

constexpr float kHostBoundMs = 0.05f;

// How the calls mean_launch_ms timed on this thread were timed, counted since the thread started (each
// timing counts once): as graph replays; back to back because one call took kHostBoundMs or more; back to
// back because RESNEST_CHOICE_TIMING=launches asked so; back to back because the calls could not be
// captured or replayed (a call the capture refuses, or another thread's synchronization invalidating it:
// the two read the same). `--verbose` prints a prepare's share, so a run says whether its choices were
// timed as the forward pass's graph runs them.
struct ChoiceTimingTally {
    long replayed = 0, long_calls = 0, launches_asked = 0, not_captured = 0;
    ChoiceTimingTally since(const ChoiceTimingTally& before) const {
        return {replayed - before.replayed, long_calls - before.long_calls, launches_asked - before.launches_asked,
                not_captured - before.not_captured};
    }
};
ChoiceTimingTally choice_timing_tally();

// Mean device time of one call of `launch` (which enqueues on `stream`), ms, over `reps` calls (see above).
// `where` names the node in errors. Not during graph capture.
float mean_launch_ms(cudaStream_t stream, int reps, const std::function<void()>& launch, const std::string& where);

}  // namespace resnest
