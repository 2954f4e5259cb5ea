// lab_matmul_setup.cuh: what the kernel labs that time our kernels beside cuBLASLt set up alike: a
// capturable stream, a cuBLASLt handle, the SM count and a device workspace (im2col matrices, split-K
// partial sums), released when it goes out of scope. Labs are programs: a failure prints and exits.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "lab_util.cuh"

namespace lab {

struct MatmulLabSetup {
    cudaStream_t stream = nullptr;  // non-blocking: capturable (the legacy default stream is not)
    cublasLtHandle_t lt = nullptr;
    int sms = 0;                    // device 0's multiprocessors
    void* ws = nullptr;             // ws_bytes of device memory, or null
    size_t ws_bytes = 0;

    explicit MatmulLabSetup(size_t workspace_bytes = 0) : ws_bytes(workspace_bytes) {
        LAB_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
            std::fprintf(stderr, "cublasLtCreate failed\n");
            std::exit(1);
        }
        LAB_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
        if (ws_bytes) LAB_CHECK(cudaMalloc(&ws, ws_bytes));
    }
    ~MatmulLabSetup() {
        if (ws) cudaFree(ws);
        if (lt) cublasLtDestroy(lt);
        if (stream) cudaStreamDestroy(stream);
    }
    MatmulLabSetup(const MatmulLabSetup&) = delete;
    MatmulLabSetup& operator=(const MatmulLabSetup&) = delete;
};

}  // namespace lab
