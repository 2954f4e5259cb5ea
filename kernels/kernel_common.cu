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

// cudaLaunchKernelEx returns this launch's own error (a sticky fault from earlier work shows there too).
// The thread's last-error slot may still hold an error a library call already reported to its caller (and
// handled): it is cleared here, never taken for this launch's.
void check_kernel_launch(const char* kernel, cudaError_t launched) {
    cudaGetLastError();
    if (launched != cudaSuccess)
        throw KernelLaunchError(std::string("CUDA kernel ") + kernel + " failed to launch: " +
                                cudaGetErrorString(launched));
}

}  // namespace resnest
