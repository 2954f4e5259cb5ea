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
// keeps the back-to-back time. RESNEST_CHOICE_TIMING=launches (a diagnostic, for comparing the two) keeps
// the back-to-back time always.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace resnest {

constexpr float kHostBoundMs = 0.05f;

// Mean device time of one call of `launch` (which enqueues on `stream`), ms, over `reps` calls (see above).
// `where` names the node in errors. Not during graph capture.
float mean_launch_ms(cudaStream_t stream, int reps, const std::function<void()>& launch, const std::string& where);

}  // namespace resnest
