// cuda_context_l2.cpp: CudaContext's part of the weights' L2 window (cuda_l2_weights.h, RESNEST_L2_WEIGHTS):
// the window and the device's persisting carve-out, planned once a context (the last context holding a window
// on the device gives the carve-out back); per batch size whether its CUDA graph carries the window (on; off;
// auto: the captured graph timed without and with it, the faster kept and cached).
#include <algorithm>
#include <cstdio>

#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_timing.h"

namespace resnest {

void CudaContext::plan_l2_window() {
    const std::string& mode = engine_->l2_weights_mode();
    if (mode == "off") return;
    int persisting = 0, window = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&persisting, cudaDevAttrMaxPersistingL2CacheSize, engine_->options().device));
    CUDA_CHECK(cudaDeviceGetAttribute(&window, cudaDevAttrMaxAccessPolicyWindowSize, engine_->options().device));
    L2WeightWindow w = plan_l2_weight_window((size_t)engine_->device_bytes(), (size_t)persisting, (size_t)window);
    if (w.window_bytes == 0) {
        std::fprintf(stderr, "resnest: warning: RESNEST_L2_WEIGHTS=%s: this device has no persisting L2 (%d bytes) or "
                     "no access policy window (%d bytes); the weights get no L2 window\n", mode.c_str(), persisting,
                     window);
        return;
    }
    // The carve-out is the device's: a larger one another context asked for stays (CarveOutRegistry).
    const int device = engine_->options().device;
    size_t granted = 0;
    const cudaError_t e = process_carve_out_registry().acquire(device, w.carve_out_bytes, cuda_carve_out_calls(),
                                                               &granted);
    if (e != cudaSuccess) {
        cudaGetLastError();
        std::fprintf(stderr, "resnest: warning: RESNEST_L2_WEIGHTS=%s: reading or raising the persisting L2 "
                     "carve-out to %zu bytes failed (%s); the weights get no L2 window\n", mode.c_str(),
                     w.carve_out_bytes, cudaGetErrorString(e));
        return;
    }
    holds_carve_out_ = true;
    // The device may clamp the limit: the hit ratio is planned on what it granted, so that the lines marked
    // persisting fit the carve-out that exists.
    if (granted < w.carve_out_bytes)
        w = plan_l2_weight_window((size_t)engine_->device_bytes(), granted, (size_t)window);
    if (w.window_bytes == 0) {
        release_l2_window();
        std::fprintf(stderr, "resnest: warning: RESNEST_L2_WEIGHTS=%s: the device granted no persisting L2 "
                     "carve-out; the weights get no L2 window\n", mode.c_str());
        return;
    }
    l2_window_ = w;
    if (engine_->options().verbose)
        std::fprintf(stderr, "cuda: weights' L2 window (RESNEST_L2_WEIGHTS=%s): %.1f MiB of %.1f MiB persisting "
                     "(hit ratio %.2f; the device allows %.1f MiB persisting, windows of %.1f MiB)\n", mode.c_str(),
                     w.carve_out_bytes / 1048576.0, w.window_bytes / 1048576.0, w.hit_ratio, persisting / 1048576.0,
                     window / 1048576.0);
}

void CudaContext::release_l2_window() noexcept {
    if (!holds_carve_out_) return;
    holds_carve_out_ = false;
    // The last holder (release() made the device current) resets the lines and the limit; a failure there
    // changes no result, and is cleared.
    process_carve_out_registry().release(engine_->options().device, cuda_carve_out_calls());
    cudaGetLastError();
}

std::string CudaContext::l2_window_key(int batch) const {
    return op_algo_key(key_parts(batch), "l2 weights window " + std::to_string(l2_window_.window_bytes) + " carve " +
                                              std::to_string(l2_window_.carve_out_bytes));
}

int CudaContext::l2_window_decision(int batch) const {
    if (l2_window_.window_bytes == 0) return 0;
    if (engine_->l2_weights_mode() == "on") return 1;
    return cached_choice(l2_window_key(batch), 2);
}

namespace {

// The warning of a window that could not be set: `why`, then what runs without it.
void warn_without_l2_window(const std::string& why, int batch, bool profile) {
    std::fprintf(stderr, "resnest: warning: the weights' L2 window %s; %sbatch %d runs without it\n", why.c_str(),
                 profile ? "the profile's replay at " : "", batch);
}

}  // namespace

bool CudaContext::apply_l2_window(cudaGraph_t graph, int batch, bool profile) {
    try {
        const int nodes = set_l2_window_on_kernel_nodes(graph, engine_->weights_device(), l2_window_);
        if (engine_->options().verbose)
            std::fprintf(stderr, "cuda: batch %d: the weights' L2 window on %d kernel nodes\n", batch, nodes);
        return true;
    } catch (const Error& e) {
        cudaGetLastError();
        warn_without_l2_window(std::string("could not be set (") + e.what() + ")", batch, profile);
        return false;
    }
}

bool CudaContext::instantiate_with_l2_window(CapturedGraph* captured, int batch, bool profile) {
    CapturedGraph windowed;
    cudaError_t e = cudaGraphClone(&windowed.graph, captured->graph);
    if (e != cudaSuccess) {  // the window is a hint: a graph it cannot be copied onto runs without it
        cudaGetLastError();
        warn_without_l2_window(std::string("could not be copied on (cudaGraphClone: ") + cudaGetErrorString(e) + ")",
                               batch, profile);
        return false;
    }
    if (!apply_l2_window(windowed.graph, batch, profile)) return false;
    e = cudaGraphInstantiate(&windowed.exec, windowed.graph, 0);
    if (e != cudaSuccess) {  // the graph without the window is still there to instantiate
        cudaGetLastError();
        warn_without_l2_window(std::string("could not be instantiated (cudaGraphInstantiate: ") +
                                   cudaGetErrorString(e) + ")",
                               batch, profile);
        return false;
    }
    std::swap(captured->graph, windowed.graph);  // the graph without the window is destroyed with `windowed`
    std::swap(captured->exec, windowed.exec);
    return true;
}

// Times the captured graph without the window and a copy with it, alternately, twice (the persisting lines
// other passes left are released before each graph-without-window round, so they cannot help it), and keeps
// the faster, the window only where it gains over 1 % (the carve-out is the whole device's).
void CudaContext::choose_l2_window(int batch, BatchState& state) {
    CapturedGraph with;
    CUDA_CHECK(cudaGraphClone(&with.graph, state.captured.graph));
    if (!apply_l2_window(with.graph, batch)) return;
    CUDA_CHECK(cudaGraphInstantiate(&with.exec, with.graph, 0));
    const std::string where = "the weights' L2 window at batch " + std::to_string(batch);
    TimingEvents events(2, where);
    auto replays_ms = [&](cudaGraphExec_t exec, int reps) {
        for (int r = 0; r < 2; r++) CUDA_CHECK(cudaGraphLaunch(exec, stream_));  // warm: uploads, fills L2
        CUDA_CHECK(cudaEventRecord(events.events[0], stream_));
        for (int r = 0; r < reps; r++) CUDA_CHECK(cudaGraphLaunch(exec, stream_));
        CUDA_CHECK(cudaEventRecord(events.events[1], stream_));
        return events.elapsed(0, 1, where) / reps;
    };
    const float one = replays_ms(state.captured.exec, 1);
    const int reps = std::clamp((int)(10.0f / std::max(one, 1e-3f)), 3, 20);  // about 10 ms a round
    float plain = 1e30f, windowed = 1e30f;
    for (int round = 0; round < 2; round++) {
        CUDA_CHECK(cudaCtxResetPersistingL2Cache());
        plain = std::min(plain, replays_ms(state.captured.exec, reps));
        windowed = std::min(windowed, replays_ms(with.exec, reps));
    }
    const bool keep = windowed < plain * 0.99f;
    if (keep) {
        std::swap(state.captured.graph, with.graph);
        std::swap(state.captured.exec, with.exec);
        state.l2_window = true;
    } else {
        CUDA_CHECK(cudaCtxResetPersistingL2Cache());  // the windowed rounds' lines would otherwise stay persisting
    }
    engine_->cache().insert(l2_window_key(batch), {keep ? 1 : 0, 0, 0, ""});
    if (engine_->options().verbose)
        std::fprintf(stderr, "cuda: batch %d, graph replay without the weights' L2 window %.4f ms, with it %.4f ms: "
                     "%s\n", batch, plain, windowed, keep ? "with it" : "without");
}

}  // namespace resnest
