// kernel_stream.h: where a kernel launcher enqueues its kernel: a CUDA stream, and whether the kernel may
// be launched as a programmatic dependent launch (compute capability 9.0 and later). Such a kernel may
// begin while the kernel before it in the stream is finishing; it waits inside (griddepcontrol.wait, which
// every kernel in kernels/ reaches before it touches memory that any kernel writes) until that kernel has
// completed and its writes are visible. The launch overhead between two dependent kernels then overlaps the
// first one's tail, and so may the fetch of the second one's weights (prefetch_weights, below).
//
// Plain C++ so that host code can include it; a launcher called with a bare cudaStream_t launches the
// ordinary way.
#pragma once
#include <cuda_runtime_api.h>

#include "resnest/error.h"

namespace resnest {

// What a launcher throws when the launch itself is refused (configuration, launch attribute, no kernel
// image for the device), and what the CUDA backend throws when the capture of such launches is refused:
// the failures that ordinary launches may avoid.
class KernelLaunchError : public Error {
  public:
    using Error::Error;
};

// The architecture the kernels of kernels/ run as on the current device: the lesser of a kernel's PTX and
// binary versions (90 for the default sm_90 build on Hopper; 80 when sm_80 PTX is compiled for the
// device), 0 when they cannot load. Programmatic dependent launch is safe only at 90 or more: below, the
// kernels lack the wait.
int kernels_compiled_arch();

// prefetch_weights: the kernels that read weights (the convolutions, the gate, the classifier) ask L2 for
// their blocks' share before they wait on the kernel before them (kernel_common.cuh, prefetch_l2_run).
struct KernelStream {
    cudaStream_t stream = nullptr;
    bool dependent_launch = false;  // set the programmatic-stream-serialization launch attribute
    bool prefetch_weights = true;
    KernelStream(cudaStream_t s = nullptr, bool dependent = false, bool prefetch = true)  // implicit from a stream
        : stream(s), dependent_launch(dependent), prefetch_weights(prefetch) {}
};

}  // namespace resnest
