// kernel_common.cu: the launch check the kernel launchers share.
#include "kernel_common.cuh"

#include "resnest/error.h"

namespace resnest {

void check_kernel_launch(const char* kernel) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        throw Error(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorString(e));
}

}  // namespace resnest
