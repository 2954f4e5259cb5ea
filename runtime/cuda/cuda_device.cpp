// cuda_device.cpp: the CUDA backend's error reporting and device queries.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <dlfcn.h>

#include <chrono>
#include <system_error>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "kernel_stream.h"
#include "resnest/engine.h"

namespace resnest {

void cuda_fail(const std::string& library, const std::string& message, const char* statement, const char* file,
               int line, const std::string& where) {
    std::string text = library + " error: " + message + " in " + statement + " (" + file + ":" + std::to_string(line) + ")";
    if (!where.empty()) text = "node '" + where + "': " + text;
    throw Error(text);
}

void throw_if_device_faulted(cudaStream_t stream, const std::string& where) {
    // Never the legacy default stream: waiting on it while another thread captures would invalidate that
    // capture (and read as a fault here).
    if (!stream) stream = cudaStreamPerThread;
    cudaStreamSynchronize(stream);  // an asynchronous fault surfaces here ...
    cudaGetLastError();             // ... and an ordinary error is cleared
    const cudaError_t again = cudaStreamQuery(stream);  // a sticky one is returned again
    if (again != cudaSuccess && again != cudaErrorNotReady)
        throw Error(where + ": the device faulted (" + cudaGetErrorString(again) +
                    "); this process cannot use it any more");
}

const char* cublas_status_text(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "unknown cuBLAS status";
    }
}

const std::vector<std::string>& cudnn_sublibraries() {
    static const std::vector<std::string> names = {
        "libcudnn_graph.so.9",     "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
        "libcudnn_heuristic.so.9", "libcudnn_ops.so.9",                 "libcudnn_cnn.so.9"};
    return names;
}

int preload_cudnn_sublibraries() {
    Dl_info info{};
    if (!dladdr((const void*)&cudnnGetVersion, &info) || !info.dli_fname) return 0;
    std::string folder = info.dli_fname;  // libcudnn.so.9 as this process loaded it
    const size_t slash = folder.rfind('/');
    folder = slash == std::string::npos ? "" : folder.substr(0, slash + 1);
    int loaded = 0;
    for (const std::string& name : cudnn_sublibraries())
        loaded += dlopen((folder + name).c_str(), RTLD_LAZY | RTLD_LOCAL) != nullptr;  // kept for the process
    return loaded;
}

CudaInitialization::CudaInitialization(int device) {
    thread_ = std::thread([this, device] {
        auto t0 = std::chrono::steady_clock::now();
        if (cudaSetDevice(device) == cudaSuccess) cudaFree(nullptr);  // the primary context, made current
        cudaGetLastError();  // this thread's; a bad device is reported by the load's own calls
        seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
    // A second thread: the context is the longer (about 0.25 s on an H200), and the loads would delay it.
    // Without one (a process out of threads) cuDNN loads them itself, as before.
    try {
        libraries_ = std::thread([this] {
            auto t0 = std::chrono::steady_clock::now();
            cudnn_preloaded_ = preload_cudnn_sublibraries();
            cudnn_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        });
    } catch (const std::system_error&) {
    }
}

bool cuda_backend_built() { return true; }

int cuda_device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" state for later callers
        return 0;
    }
    return count;
}

DeviceInfo cuda_device_info(int device) {
    int count = cuda_device_count();
    if (device < 0 || device >= count)
        throw Error("CUDA device " + std::to_string(device) + " does not exist (this machine has " +
                    std::to_string(count) + "); pick one with --device or use --backend cpu");
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    DeviceInfo info;
    info.name = prop.name;
    info.cc_major = prop.major;
    info.cc_minor = prop.minor;
    info.multiprocessors = prop.multiProcessorCount;
    info.l2_bytes = prop.l2CacheSize;
    int clock_khz = 0, mem_khz = 0;
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device) == cudaSuccess) info.sm_clock_mhz = clock_khz / 1000;
    if (cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device) == cudaSuccess)
        info.memory_clock_mhz = mem_khz / 1000;
    cudaGetLastError();
    CUDA_CHECK(cudaDriverGetVersion(&info.driver_version));
    CUDA_CHECK(cudaRuntimeGetVersion(&info.runtime_version));
    info.cudnn_version = (int)cudnnGetVersion();
    int major = 0, minor = 0, patch = 0;
    CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &major));
    CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &minor));
    CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &patch));
    info.cublas_version = major * 10000 + minor * 100 + patch;
    int previous = 0;
    CUDA_CHECK(cudaGetDevice(&previous));
    CUDA_CHECK(cudaSetDevice(device));
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    info.kernels_arch = kernels_compiled_arch();
    CUDA_CHECK(cudaSetDevice(previous));
    info.memory_free = (int64_t)free_bytes;
    info.memory_total = (int64_t)total_bytes;
    return info;
}

}  // namespace resnest
