// test_cuda_timing.cpp: the choice's timing (runtime/cuda/cuda_timing.cpp): short calls are timed as CUDA
// graph replays, a call that cannot be captured falls back to back-to-back launches and leaves the stream
// usable (no capture pending), and a call that fails outright throws with the node's name.
#include <catch2/catch.hpp>

#include <cmath>

#include "channel_affine.cuh"
#include "cuda/cuda_timing.h"
#include "cuda_test_helpers.h"
#include "resnest/error.h"

using namespace cuda_test;

TEST_CASE("candidate timing: graph replays for short calls, ordinary launches where capture is refused",
          "[cuda][timing]") {
    INFO("seed " << run_seed());
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    const long long count = 4096;
    std::vector<float> x0 = random_floats((size_t)count, -1, 1, 1);
    GuardedBuffer x(count, 4), y(count, 4);
    x.upload(x0);
    int calls = 0;
    auto relu = [&] {
        calls++;
        resnest::channel_affine_activation<float>((const float*)x.data(), nullptr, nullptr, nullptr, (float*)y.data(),
                                                  count, 64, true, stream);
    };

    // A short kernel: under kHostBoundMs on its own, so captured: 1 untimed + 1 alone + 5 captured calls (the
    // replays run the graph, not the lambda).
    const float ms = resnest::mean_launch_ms(stream, 5, relu, "relu");
    CHECK(std::isfinite(ms));
    CHECK(ms > 0.0f);
    CHECK(ms < resnest::kHostBoundMs);
    CHECK(calls == 7);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
    check(cudaStreamIsCapturing(stream, &status), "capture status");
    CHECK(status == cudaStreamCaptureStatusNone);
    // What the kernel wrote is still right (the replays ran it).
    check(cudaStreamSynchronize(stream), "sync");
    std::vector<float> got;
    std::string why;
    REQUIRE(y.download(got, &why));
    for (long long i = 0; i < count; i++) REQUIRE(got[i] == std::fmax(x0[i], 0.0f));

    // A call that synchronizes its stream cannot be captured: the back-to-back time stands, nothing throws,
    // and the stream runs ordinary work afterwards.
    auto relu_then_sync = [&] {
        relu();
        cudaError_t e = cudaStreamSynchronize(stream);
        if (e != cudaSuccess) throw resnest::Error(std::string("sync in the call: ") + cudaGetErrorString(e));
    };
    float fallback = -1.0f;
    REQUIRE_NOTHROW(fallback = resnest::mean_launch_ms(stream, 3, relu_then_sync, "relu + sync"));
    CHECK(std::isfinite(fallback));
    CHECK(fallback > 0.0f);
    check(cudaStreamIsCapturing(stream, &status), "capture status");
    CHECK(status == cudaStreamCaptureStatusNone);
    CHECK(cudaGetLastError() == cudaSuccess);
    relu();
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess);

    // A call that fails on its own throws, naming where.
    auto broken = [&] { throw resnest::Error("node 'conv9' failed"); };
    CHECK_THROWS_WITH(resnest::mean_launch_ms(stream, 3, broken, "conv9"), Catch::Contains("conv9"));
    cudaStreamDestroy(stream);
}
