// lab_util.cuh: what the kernel labs share: a CUDA check that exits (a lab is a standalone program, not
// library code), fresh random data, and timing on CUDA events (back to back, or as graph replays).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "lab_reference.h"

#define LAB_CHECK(call)                                                                              \
    do {                                                                                             \
        cudaError_t e_ = (call);                                                                     \
        if (e_ != cudaSuccess) {                                                                     \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            std::exit(1);                                                                            \
        }                                                                                            \
    } while (0)

namespace lab {

// Uniform values in [lo, hi], never zero, rounded through half (what an fp16 kernel reads), from a fresh seed.
inline std::vector<float> random_half_values(size_t count, float lo, float hi) {
    static std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(count);
    for (float& x : v) {
        do x = __half2float(__float2half(dist(rng)));
        while (x == 0.0f);
    }
    return v;
}

// A device copy of v in half.
inline __half* upload_half(const std::vector<float>& v) {
    std::vector<__half> h(v.size());
    for (size_t i = 0; i < v.size(); i++) h[i] = __float2half(v[i]);
    __half* d = nullptr;
    LAB_CHECK(cudaMalloc(&d, h.size() * sizeof(__half)));
    LAB_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(__half), cudaMemcpyHostToDevice));
    LAB_CHECK(cudaDeviceSynchronize());  // from pageable memory the DMA may outlive cudaMemcpy's return, and a
                                         // non-blocking stream would not wait for it
    return d;
}

inline float* upload_float(const std::vector<float>& v) {
    float* d = nullptr;
    LAB_CHECK(cudaMalloc(&d, v.size() * sizeof(float)));
    LAB_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    LAB_CHECK(cudaDeviceSynchronize());  // as upload_half
    return d;
}

inline std::vector<float> download_half(const __half* d, size_t count) {
    std::vector<__half> h(count);
    LAB_CHECK(cudaMemcpy(h.data(), d, count * sizeof(__half), cudaMemcpyDeviceToHost));
    std::vector<float> v(count);
    for (size_t i = 0; i < count; i++) v[i] = __half2float(h[i]);
    return v;
}

// Device time of the work `enqueue` puts on `stream`, ms: between two events recorded around it.
template <typename Enqueue>
float elapsed_ms(cudaStream_t stream, Enqueue enqueue) {
    cudaEvent_t a, b;
    LAB_CHECK(cudaEventCreate(&a));
    LAB_CHECK(cudaEventCreate(&b));
    LAB_CHECK(cudaEventRecord(a, stream));
    enqueue();
    LAB_CHECK(cudaEventRecord(b, stream));
    LAB_CHECK(cudaEventSynchronize(b));
    float ms = 0.0f;
    LAB_CHECK(cudaEventElapsedTime(&ms, a, b));
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    LAB_CHECK(cudaGetLastError());
    return ms;
}

// Mean device time of `reps` launches after one untimed one, ms, on `stream` (the work `launch` enqueues
// must go there).
template <typename Launch>
float time_ms(Launch launch, int reps = 50, cudaStream_t stream = 0) {
    launch();
    const float ms = elapsed_ms(stream, [&] {
        for (int i = 0; i < reps; i++) launch();
    });
    return ms / reps;
}

// Mean device time of one launch, ms, as a CUDA graph runs it: `reps` launches on `stream` (not the
// legacy default stream, which cannot be captured) captured into a graph, replayed once untimed, then
// timed over one replay. The host's cost of issuing each launch (a few microseconds, as long as a small
// kernel runs) is then not what is measured, as it can be back to back (time_ms); the runtime's forward
// pass runs as such a graph. Where the capture is refused, time_ms's back-to-back figure (*graph false).
template <typename Launch>
float time_graph_ms(Launch launch, cudaStream_t stream, int reps = 50, bool* graph = nullptr) {
    launch();
    LAB_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    bool captured = false;
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
        for (int i = 0; i < reps; i++) launch();
        captured = cudaStreamEndCapture(stream, &g) == cudaSuccess && g &&
                   cudaGraphInstantiate(&exec, g, 0) == cudaSuccess;
    }
    cudaGetLastError();
    if (graph) *graph = captured;
    if (!captured) {
        if (g) cudaGraphDestroy(g);
        return time_ms(launch, reps, stream);
    }
    LAB_CHECK(cudaGraphLaunch(exec, stream));  // untimed
    const float ms = elapsed_ms(stream, [&] { LAB_CHECK(cudaGraphLaunch(exec, stream)); });
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(g);
    return ms / reps;
}

// Outputs of a (rows, cout) result a lab judges a way on: `count` entries (row[i], chan[i]) drawn at random,
// whose double-precision reference ref[i] the lab fills.
struct SampledOutputs {
    std::vector<size_t> row;
    std::vector<int> chan;
    std::vector<double> ref;
    int cout;
    SampledOutputs(long long rows, int cout_, std::mt19937& rng, size_t count = 512)
        : row(count), chan(count), ref(count), cout(cout_) {
        for (size_t i = 0; i < count; i++)
            row[i] = (size_t)(rng() % (unsigned long long)rows), chan[i] = (int)(rng() % cout);
    }
};

// One way of a lab whose result y is (rows, cout) halves: y poisoned, the way run once and its samples
// judged (within 1e-2 of the largest |reference|), then timed as a graph replay of 20 launches; one table
// row (the shape's name padded to `width`), the least time kept in *best. Returns whether it was correct.
template <typename Launch>
bool check_and_time_half(const SampledOutputs& s, Launch launch, __half* y, size_t count, cudaStream_t stream,
                         double flops, int width, const char* shape, int batch, const char* way, float* best) {
    LAB_CHECK(cudaMemsetAsync(y, 0xFF, count * 2, stream));
    launch();
    LAB_CHECK(cudaGetLastError());
    LAB_CHECK(cudaStreamSynchronize(stream));
    const std::vector<float> got = download_half(y, count);
    std::vector<float> sampled(s.ref.size());
    for (size_t i = 0; i < s.ref.size(); i++) sampled[i] = got[s.row[i] * s.cout + s.chan[i]];
    const double err = max_rel_error(sampled, s.ref);
    const float ms = time_graph_ms(launch, stream, 20);
    const bool ok = err <= 1e-2;
    if (ms < *best) *best = ms;
    std::printf("%-*s %5d  %-9s %9.4f %9.1f  %.2e %s\n", width, shape, batch, way, ms, flops / (ms * 1e9), err,
                ok ? "ok" : "WRONG");
    return ok;
}

// One line of a lab's table: version, time, bandwidth from the bytes moved, error against the reference.
// Returns whether the error is within `tolerance`.
inline bool report(const char* shape, const char* version, float ms, double bytes, double err, double tolerance) {
    bool ok = err <= tolerance;
    std::printf("%-28s %-4s: %8.4f ms %8.1f GB/s  rel err %.2e %s\n", shape, version, ms, bytes / (ms * 1e6), err,
                ok ? "ok" : "WRONG");
    return ok;
}

}  // namespace lab
