// kernel_stream.h: where a kernel launcher enqueues its kernel: a CUDA stream, and whether the kernel may
// be launched as a programmatic dependent launch (compute capability 9.0 and later). Such a kernel may
// begin while the kernel before it in the stream is finishing; it waits inside (griddepcontrol.wait, the
// first thing every kernel in kernels/ does) until that kernel has completed and its writes are visible.
// The launch overhead between two dependent kernels then overlaps the first one's tail.
//
// Plain C++ so that host code can include it; a launcher called with a bare cudaStream_t launches the
// ordinary way.
#pragma once
#include <cuda_runtime_api.h>

namespace resnest {

struct KernelStream {
    cudaStream_t stream = nullptr;
    bool dependent_launch = false;  // set the programmatic-stream-serialization launch attribute
    KernelStream(cudaStream_t s = nullptr, bool dependent = false)  // implicit: a stream is a KernelStream
        : stream(s), dependent_launch(dependent) {}
};

}  // namespace resnest
