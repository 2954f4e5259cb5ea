// capture_interference_lab.cu: lab for what one host thread's CUDA calls do to another thread's graph capture,
// captured as the runtime captures (cudaStreamCaptureModeThreadLocal on a non-blocking stream): the calls a
// context makes while another context of the same engine may be capturing its forward pass or a choice's
// timing (context creation and teardown, the legacy cuDNN search, a first kernel launch, the weights' L2
// window). It settles what the GPU suite's "4 threads x 4 contexts" failure at 6ebbad4 (bench/RESULTS.md)
// could have been, and which calls a per-device capture lock would have to cover.
//
//   cmake --build build --target lab_capture_interference   # built on demand
//   build/kernels/lab/lab_capture_interference               # on a GPU machine; CUDA_MODULE_LOADING=EAGER too
//
// One row per call: thread A begins a capture and launches one kernel into it; thread B makes the call; then A
// reads its capture status, launches again and ends the capture. The row gives B's own status (does the call
// itself fail while A captures: then the runtime throws on B's thread), A's status after the call (invalidated:
// the runtime retries the capture), A's next launch and A's end of capture. The first row (no call) is the
// control, the second (B syncs only its own stream) must disturb nothing either.
//
// Where the runtime makes each call: cudaMalloc / cudaFree / cuBLAS, cuBLASLt, cuDNN create and destroy in
// CudaContext::initialize and release (cuda_context.cpp); cudnnFindConvolutionForwardAlgorithmEx in the legacy
// way's search (cuda_conv.cpp); the L2 limit and reset in the carve-out registry (cuda_l2_weights.cpp) and the
// window's timing (cuda_context_l2.cpp); graph instantiate, launch and destroy in every capture.
// Prediction: cudaDeviceSynchronize, cudaMemcpy on the legacy stream and the handle destroys (which synchronize
// the device) invalidate A's capture; cudaMalloc and the stream-ordered calls on B's own stream do not.
//
// Measured rows are recorded at the bottom of this file once run on a GPU.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

__global__ void count_up(int* counter) { atomicAdd(counter, 1); }
template <int N>
__global__ void never_launched_before(int* counter) { atomicAdd(counter, N); }  // first launched by thread B

static std::string name_of(cudaError_t e) { return cudaGetErrorName(e); }
static const char* capture_status_name(cudaStreamCaptureStatus s) {
    return s == cudaStreamCaptureStatusNone ? "none" : s == cudaStreamCaptureStatusActive ? "active" : "INVALIDATED";
}

// A and B take turns: B calls once A's capture has begun, A goes on once B's call has returned.
struct Turns {
    std::mutex m;
    std::condition_variable cv;
    int step = 0;
    void to(int s) {
        {
            std::lock_guard<std::mutex> lock(m);
            step = s;
        }
        cv.notify_all();
    }
    void wait_for(int s) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return step >= s; });
    }
};

struct Call {
    const char* name;
    std::function<std::string()> make;  // returns B's status
};

#define LAB_REQUIRE(call)                                                                     \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess) {                                                              \
            std::fprintf(stderr, "set-up failed: %s: %s\n", #call, cudaGetErrorString(e_));  \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

int main() {
    LAB_REQUIRE(cudaSetDevice(0));
    int* counter = nullptr;
    LAB_REQUIRE(cudaMalloc(&counter, sizeof(int)));
    cudaStream_t stream_a = nullptr, stream_b = nullptr;
    LAB_REQUIRE(cudaStreamCreateWithFlags(&stream_a, cudaStreamNonBlocking));
    LAB_REQUIRE(cudaStreamCreateWithFlags(&stream_b, cudaStreamNonBlocking));
    count_up<<<1, 1, 0, stream_a>>>(counter);  // loaded before any capture
    LAB_REQUIRE(cudaDeviceSynchronize());
    const char* loading = std::getenv("CUDA_MODULE_LOADING");
    cudaDeviceProp prop;
    LAB_REQUIRE(cudaGetDeviceProperties(&prop, 0));
    std::printf("lab_capture_interference on %s, CUDA_MODULE_LOADING=%s\n", prop.name, loading ? loading : "(unset: lazy)");

    // What the calls use, made before any capture.
    std::vector<char> host(64 << 20, 1);  // pageable
    void *device_buffer = nullptr, *allocated = nullptr;
    LAB_REQUIRE(cudaMalloc(&device_buffer, host.size()));
    cublasHandle_t blas = nullptr;
    cudnnHandle_t dnn = nullptr, search_dnn = nullptr;
    if (cudnnCreate(&search_dnn) != CUDNN_STATUS_SUCCESS) return std::fprintf(stderr, "set-up failed: cudnnCreate\n"), 1;
    cudnnSetStream(search_dnn, stream_b);
    // A 16-channel 3x3 convolution over 16 x 16 (x, y: (1, 16, 16, 16) NCHW) for the legacy search.
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnCreateTensorDescriptor(&xd), cudnnCreateTensorDescriptor(&yd), cudnnCreateFilterDescriptor(&wd);
    cudnnCreateConvolutionDescriptor(&cd);
    cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 16, 16, 16);
    cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 16, 16, 16);
    cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 16, 16, 3, 3);
    cudnnSetConvolution2dDescriptor(cd, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    void *cx = nullptr, *cw = nullptr, *cy = nullptr, *cws = nullptr;
    LAB_REQUIRE(cudaMalloc(&cx, 16 * 16 * 16 * 4));
    LAB_REQUIRE(cudaMalloc(&cw, 16 * 16 * 9 * 4));
    LAB_REQUIRE(cudaMalloc(&cy, 16 * 16 * 16 * 4));
    LAB_REQUIRE(cudaMalloc(&cws, 64 << 20));
    size_t l2_limit = 0;
    LAB_REQUIRE(cudaDeviceGetLimit(&l2_limit, cudaLimitPersistingL2CacheSize));
    // Graphs of B's own, captured on B's stream before A's capture.
    auto graph_of_one_launch = [&]() {
        cudaGraph_t g = nullptr;
        cudaStreamBeginCapture(stream_b, cudaStreamCaptureModeThreadLocal);
        count_up<<<1, 1, 0, stream_b>>>(counter);
        cudaStreamEndCapture(stream_b, &g);
        return g;
    };
    cudaGraph_t b_graph = graph_of_one_launch();
    cudaGraphExec_t b_exec = nullptr, b_exec_to_destroy = nullptr;
    cudaGraph_t g2 = graph_of_one_launch();
    LAB_REQUIRE(cudaGraphInstantiate(&b_exec_to_destroy, g2, 0));
    cudaGraphDestroy(g2);

    const std::vector<Call> calls = {
        {"nothing (control)", [] { return std::string("-"); }},
        {"cudaStreamSynchronize(B's own stream)", [&] {
             count_up<<<1, 1, 0, stream_b>>>(counter);
             return name_of(cudaStreamSynchronize(stream_b));
         }},
        {"cudaMalloc 128 MiB", [&] { return name_of(cudaMalloc(&allocated, 128 << 20)); }},
        {"cudaFree 128 MiB", [&] { return name_of(cudaFree(allocated)); }},
        {"cudaFree(nullptr)", [] { return name_of(cudaFree(nullptr)); }},
        {"cudaMemcpyAsync pageable, B's stream, + sync", [&] {
             cudaError_t e = cudaMemcpyAsync(device_buffer, host.data(), host.size(), cudaMemcpyHostToDevice, stream_b);
             return name_of(e) + "/" + name_of(cudaStreamSynchronize(stream_b));
         }},
        {"cudaMemcpy (legacy stream)", [&] {
             return name_of(cudaMemcpy(device_buffer, host.data(), 4096, cudaMemcpyHostToDevice));
         }},
        {"cudaStreamCreate + Destroy (non-blocking)", [] {
             cudaStream_t s = nullptr;
             cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
             return name_of(e) + "/" + name_of(cudaStreamDestroy(s));
         }},
        {"cudaMemGetInfo", [] {
             size_t free_bytes = 0, total = 0;
             return name_of(cudaMemGetInfo(&free_bytes, &total));
         }},
        {"first launch of a kernel (B's stream) + sync", [&] {
             never_launched_before<1><<<1, 1, 0, stream_b>>>(counter);
             cudaError_t e = cudaGetLastError();
             return name_of(e) + "/" + name_of(cudaStreamSynchronize(stream_b));
         }},
        {"cudaFuncGetAttributes, never-launched kernel", [] {
             cudaFuncAttributes a;
             return name_of(cudaFuncGetAttributes(&a, never_launched_before<2>));
         }},
        {"cudaGraphInstantiate (B's graph)", [&] { return name_of(cudaGraphInstantiate(&b_exec, b_graph, 0)); }},
        {"cudaGraphLaunch (first) + sync", [&] {
             cudaError_t e = cudaGraphLaunch(b_exec, stream_b);
             return name_of(e) + "/" + name_of(cudaStreamSynchronize(stream_b));
         }},
        {"cudaGraphExecDestroy", [&] { return name_of(cudaGraphExecDestroy(b_exec_to_destroy)); }},
        {"cublasCreate", [&] { return "status " + std::to_string((int)cublasCreate(&blas)); }},
        {"cublasDestroy", [&] { return "status " + std::to_string((int)cublasDestroy(blas)); }},
        {"cublasLtCreate + Destroy", [] {
             cublasLtHandle_t lt = nullptr;
             const int made = (int)cublasLtCreate(&lt);
             return "status " + std::to_string(made) + "/" + std::to_string((int)cublasLtDestroy(lt));
         }},
        {"cudnnCreate", [&] { return std::string(cudnnGetErrorString(cudnnCreate(&dnn))); }},
        {"cudnnDestroy", [&] { return std::string(cudnnGetErrorString(cudnnDestroy(dnn))); }},
        {"cudnnFindConvolutionForwardAlgorithmEx", [&] {
             cudnnConvolutionFwdAlgoPerf_t perf[8];
             int found = 0;
             return std::string(cudnnGetErrorString(
                 cudnnFindConvolutionForwardAlgorithmEx(search_dnn, xd, cx, wd, cw, cd, yd, cy, 8, &found, perf, cws, 64 << 20)));
         }},
        {"cudaDeviceSetLimit(PersistingL2CacheSize)", [&] {
             return name_of(cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, l2_limit ? l2_limit : (1 << 20)));
         }},
        {"cudaCtxResetPersistingL2Cache", [] { return name_of(cudaCtxResetPersistingL2Cache()); }},
        {"cudaDeviceSynchronize", [] { return name_of(cudaDeviceSynchronize()); }},
    };

    std::printf("%-46s | %-30s | %-11s | %-22s | %s\n", "B's call while A captures", "B's status", "A after",
                "A's next launch", "A's end of capture");
    for (const Call& call : calls) {
        cudaGetLastError();
        Turns turns;
        std::string b_status;
        cudaStreamCaptureStatus a_after = cudaStreamCaptureStatusNone;
        cudaError_t a_launch = cudaSuccess, a_end = cudaSuccess;
        std::thread a([&] {
            cudaSetDevice(0);
            cudaStreamBeginCapture(stream_a, cudaStreamCaptureModeThreadLocal);
            count_up<<<1, 1, 0, stream_a>>>(counter);
            turns.to(1);
            turns.wait_for(2);
            cudaStreamIsCapturing(stream_a, &a_after);
            count_up<<<1, 1, 0, stream_a>>>(counter);
            a_launch = cudaGetLastError();
            cudaGraph_t g = nullptr;
            a_end = cudaStreamEndCapture(stream_a, &g);
            if (g) cudaGraphDestroy(g);
            cudaGetLastError();
        });
        std::thread b([&] {
            cudaSetDevice(0);
            turns.wait_for(1);
            b_status = call.make();
            cudaGetLastError();
            turns.to(2);
        });
        a.join();
        b.join();
        const cudaError_t a_stream = cudaStreamSynchronize(stream_a);
        std::printf("%-46s | %-30s | %-11s | %-22s | %s%s\n", call.name, b_status.c_str(), capture_status_name(a_after),
                    name_of(a_launch).c_str(), name_of(a_end).c_str(),
                    a_stream == cudaSuccess ? "" : "  (A's stream fails after)");
        cudaGetLastError();
    }
    return 0;
}

// Measured: (not yet run on a GPU)
