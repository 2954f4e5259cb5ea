// kernel_common.cu: the launch check the kernel launchers share.
#include "kernel_common.cuh"

#include "resnest/error.h"

namespace resnest {

// Does nothing: its attributes say what the kernels of this library were compiled as.
__global__ void compiled_architecture_probe() {}

int kernels_compiled_arch() {
    cudaFuncAttributes a;
    if (cudaFuncGetAttributes(&a, compiled_architecture_probe) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return a.ptxVersion < a.binaryVersion ? a.ptxVersion : a.binaryVersion;
}

void check_kernel_launch(const char* kernel, cudaError_t launched) {
    cudaError_t last = cudaGetLastError();  // also clears a launch error, so it does not stick to later calls
    cudaError_t e = launched != cudaSuccess ? launched : last;
    if (e != cudaSuccess)
        throw KernelLaunchError(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorString(e));
}

}  // namespace resnest
