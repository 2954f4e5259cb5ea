// cuda_timing.cpp: timing a candidate launch on CUDA events (see cuda_timing.h).
#include "cuda/cuda_timing.h"

#include "cuda/cuda_check.h"

namespace resnest {

float mean_launch_ms(cudaStream_t stream, int reps, const std::function<void()>& launch, const std::string& where) {
    cudaEvent_t start = nullptr, stop = nullptr;
    RESNEST_CUDA_CHECK_AT(cudaEventCreate(&start), where);
    cudaError_t e = cudaEventCreate(&stop);
    if (e != cudaSuccess) {
        cudaEventDestroy(start);
        RESNEST_CUDA_CHECK_AT(e, where);
    }
    float ms = 0.0f;
    try {
        launch();
        RESNEST_CUDA_CHECK_AT(cudaEventRecord(start, stream), where);
        for (int r = 0; r < reps; r++) launch();
        RESNEST_CUDA_CHECK_AT(cudaEventRecord(stop, stream), where);
        RESNEST_CUDA_CHECK_AT(cudaEventSynchronize(stop), where);
        RESNEST_CUDA_CHECK_AT(cudaEventElapsedTime(&ms, start, stop), where);
    } catch (...) {
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        throw;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms / reps;
}

}  // namespace resnest
