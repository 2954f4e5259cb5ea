// cuda_timing.h: the one way the CUDA backend times a candidate while it chooses (an algorithm, a plan, a
// way to run a convolution): one untimed launch, then the mean device time of `reps` launches on CUDA events.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace resnest {

// Mean device time of `reps` calls of `launch` (which enqueues on `stream`) after one untimed call, ms.
// `where` names the node in errors. Not during graph capture.
float mean_launch_ms(cudaStream_t stream, int reps, const std::function<void()>& launch, const std::string& where);

}  // namespace resnest
