// cuda_check.h: every CUDA runtime, cuDNN and cuBLAS call goes through one of these. A failure throws
// resnest::Error with the library's message, the statement, file:line and, with the _AT forms, the node.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <string>

#include "resnest/error.h"

namespace resnest {

[[noreturn]] void cuda_fail(const std::string& library, const std::string& message, const char* statement,
                            const char* file, int line, const std::string& where);
const char* cublas_status_text(cublasStatus_t s);

// The message for a device allocation that failed: "cannot allocate <what> (<size>) on CUDA device <device>:
// <error>; <advice>", the size in KiB below 1 MiB, else in MiB with one decimal.
std::string allocation_failure(const std::string& what, int64_t bytes, int device, cudaError_t error,
                               const std::string& advice);

// For a fallback that has caught a library error and is about to go on another way: throws "<where>: the
// device faulted (...)" (`where` e.g. "node 'layer1.0.conv2.conv'") when the device itself has faulted, a
// sticky error that every later call on the context returns (an illegal address, a launch failure), so that
// it is not reported as a way skipped; else clears the thread's last error and returns.
void throw_if_device_faulted(cudaStream_t stream, const std::string& where);

// Whether a free or destroy that returned `e` failed in a way worth a warning (destructors report, never
// throw): not while the process exits and CUDA is already unloading.
inline bool cuda_release_failed(cudaError_t e) {
    return e != cudaSuccess && e != cudaErrorCudartUnloading && e != cudaErrorContextIsDestroyed;
}

}  // namespace resnest

#define RESNEST_CUDA_CHECK_AT(call, where)                                                                  \
    do {                                                                                                    \
        cudaError_t resnest_e_ = (call);                                                                    \
        if (resnest_e_ != cudaSuccess)                                                                      \
            ::resnest::cuda_fail("CUDA", cudaGetErrorString(resnest_e_), #call, __FILE__, __LINE__, where); \
    } while (0)
#define RESNEST_CUDNN_CHECK_AT(call, where)                                                                  \
    do {                                                                                                     \
        cudnnStatus_t resnest_s_ = (call);                                                                   \
        if (resnest_s_ != CUDNN_STATUS_SUCCESS)                                                              \
            ::resnest::cuda_fail("cuDNN", cudnnGetErrorString(resnest_s_), #call, __FILE__, __LINE__, where); \
    } while (0)
#define RESNEST_CUBLAS_CHECK_AT(call, where)                                                                    \
    do {                                                                                                        \
        cublasStatus_t resnest_b_ = (call);                                                                     \
        if (resnest_b_ != CUBLAS_STATUS_SUCCESS)                                                                \
            ::resnest::cuda_fail("cuBLAS", ::resnest::cublas_status_text(resnest_b_), #call, __FILE__, __LINE__, \
                                 where);                                                                        \
    } while (0)
#define CUDA_CHECK(call) RESNEST_CUDA_CHECK_AT(call, std::string())
#define CUDNN_CHECK(call) RESNEST_CUDNN_CHECK_AT(call, std::string())
#define CUBLAS_CHECK(call) RESNEST_CUBLAS_CHECK_AT(call, std::string())
