// kernel_common.cu: the launch check the kernel launchers share.
#include "kernel_common.cuh"

#include "resnest/error.h"

namespace resnest {

void check_kernel_launch(const char* kernel, cudaError_t launched) {
    cudaError_t last = cudaGetLastError();  // also clears a launch error, so it does not stick to later calls
    cudaError_t e = launched != cudaSuccess ? launched : last;
    if (e != cudaSuccess)
        throw Error(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorString(e));
}

}  // namespace resnest
