// cuda_device.cpp: the CUDA backend's error reporting and device queries.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <dlfcn.h>
#include <link.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
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

std::string allocation_failure(const std::string& what, int64_t bytes, int device, cudaError_t error,
                               const std::string& advice) {
    char size[48];
    if (bytes < (1 << 20))
        std::snprintf(size, sizeof size, "%.1f KiB", bytes / 1024.0);
    else
        std::snprintf(size, sizeof size, "%.1f MiB", bytes / 1048576.0);
    return "cannot allocate " + what + " (" + size + ") on CUDA device " + std::to_string(device) + ": " +
           cudaGetErrorString(error) + "; " + advice;
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

// The first three load through cuDNN's version checks (the graph library first), the others through the graph
// library (preload_cudnn_sublibraries).
constexpr size_t kCheckedSublibraries = 3;

const std::vector<std::string>& cudnn_sublibraries() {
    static const std::vector<std::string> sonames = [] {
        std::vector<std::string> out;
        for (const char* name : {"libcudnn_graph", "libcudnn_ops", "libcudnn_cnn", "libcudnn_engines_precompiled",
                                 "libcudnn_engines_runtime_compiled", "libcudnn_heuristic"})
            out.push_back(name + (".so." + std::to_string(CUDNN_MAJOR)));
        return out;
    }();
    return sonames;
}

// The absolute folder (with its '/') of the loaded library whose soname is `soname`, or "" where it is not
// loaded or its path is not absolute.
static std::string loaded_library_folder(const char* soname) {
    void* handle = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) return "";
    struct link_map* map = nullptr;
    std::string path;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name) path = map->l_name;
    dlclose(handle);  // the NOLOAD open's reference only
    const size_t slash = path.rfind('/');
    return path.empty() || path[0] != '/' || slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

int preload_cudnn_sublibraries() {
    // The graph, ops and cnn libraries through cuDNN's own loader (its search and its names: no second copy
    // can come of it); needs no device.
    int loaded = (cudnnGraphVersionCheck() == CUDNN_STATUS_SUCCESS) + (cudnnOpsVersionCheck() == CUDNN_STATUS_SUCCESS) +
                 (cudnnCnnVersionCheck() == CUDNN_STATUS_SUCCESS);
    // The engines and the heuristics, which the graph library loads at its first use, from the graph library's
    // own folder, by the fully versioned name it asks for first (e.g. libcudnn_heuristic.so.9.19.0), else by
    // its soname; a file already loaded (the same device and inode) is not loaded again.
    const std::vector<std::string>& sonames = cudnn_sublibraries();
    const std::string folder = loaded_library_folder(sonames[0].c_str());  // the graph library's
    if (folder.empty()) return loaded;
    const size_t v = cudnnGetVersion();  // major * 10000 + minor * 100 + patch: the soname's major, then these
    const std::string minor_patch = "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
    for (size_t k = kCheckedSublibraries; k < sonames.size(); k++) {
        void* handle = dlopen((folder + sonames[k] + minor_patch).c_str(), RTLD_LAZY | RTLD_LOCAL);  // kept
        if (!handle) handle = dlopen((folder + sonames[k]).c_str(), RTLD_LAZY | RTLD_LOCAL);
        loaded += handle != nullptr;
    }
    return loaded;
}

CudaInitialization::CudaInitialization(int device) {
    // glibc holds its loader lock through a whole dlopen, so the runtime's own load of the driver library at
    // its first call would wait behind cuDNN's sub-libraries (15 ms behind the precompiled engines, page
    // cache warm): the context's thread loads the driver library first, then lets the other thread start.
    auto driver_loaded = std::make_shared<std::promise<void>>();
    std::shared_future<void> driver = driver_loaded->get_future().share();
    // Without threads (a process out of threads or memory) the load's own calls make the context and cuDNN
    // loads its libraries itself, as before.
    try {
        thread_ = std::thread([this, device, driver_loaded] {
            auto t0 = std::chrono::steady_clock::now();
            dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);  // as the runtime names it; kept, as it keeps it
            driver_loaded->set_value();
            if (cudaSetDevice(device) == cudaSuccess) cudaFree(nullptr);  // the primary context, made current
            cudaGetLastError();  // this thread's; a bad device is reported by the load's own calls
            seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        });
    } catch (...) {
        return;
    }
    // A second thread: the context is the longer (about 0.25 s on an H200), and the loads would delay it.
    try {
        libraries_ = std::thread([this, driver] {
            try {
                driver.wait();
                auto t0 = std::chrono::steady_clock::now();
                cudnn_preloaded_ = preload_cudnn_sublibraries();
                cudnn_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            } catch (...) {  // (a string's allocation): cuDNN loads what is left itself
            }
        });
    } catch (...) {
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
    info.cublaslt_version = (int)cublasLtGetVersion();  // its own library: may differ where installs mix
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
