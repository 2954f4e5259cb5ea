// weight_prefetch_lab.cu: lab for asking L2 for weights before the dependent launch's wait
// (kernel_common.cuh: prefetch_l2_rows, prefetch_l2_across_grid; KernelStream::prefetch_weights): what it
// saves per kernel when short dependent kernels that each read weights of their own follow each other in a
// CUDA graph, as ResNeSt50's convolutions do at batch 1 (a convolution's bytes there are mostly its filter).
//
//   cmake --build build --target lab_weight_prefetch      # built on demand
//   build/kernels/lab/lab_weight_prefetch                 # on a GPU machine (sm_90 or later)
//
// A chain of 64 kernels, captured as a CUDA graph and replayed, every one a programmatic dependent launch.
// Kernel k has weights of its own, W bytes of floats (distinct buffers, 64 * W in all, more than L2 holds
// from 1 MiB up, so each replay reads them from memory as the forward pass does); each of its B blocks sums
// its contiguous share of them (16-byte loads) and adds the sum to the running value of its slot:
// y_k[b] = y_(k-1)[b] + sum(W_k share b), a real dependency on the kernel before.
// Correctness: the weights are small whole numbers, so every sum is exact in float whatever the order; after
// 3 untimed replays and after the timed ones y must equal the CPU's sums bit for bit.
// Sizes: W = 256 KiB, 1 MiB and 4 MiB (ResNeSt50's 1x1 and grouped filters at fp16 span 32 KiB to 9.4 MiB);
// B = 16 blocks (a batch-1 convolution of a few tiles) and one wave (a block per SM), 256 threads.
//
// Versions:
//   v1  the weights read after the wait (the kernels before this change).
//   v2  each block asks L2 for its own share before the wait (our convolutions, the gate, the classifier).
//   v3  each kernel asks for the next kernel's weights as well (on behalf of a library call after it).
// Prediction: at 1 MiB and 16 blocks, v2 saves 1-3 us a kernel (its share, 64 KiB a block, arrives while the
// kernel before runs instead of at a block's handful of 16-byte loads in flight); v3 about as much again where
// the next kernel's blocks start late; at 256 KiB under 1 us; at one wave less (more loads in flight already).
//
// Numbers and the winner are recorded at the bottom of this file once measured on a GPU.
#include <cstring>
#include <utility>
#include <vector>

#include "kernel_common.cuh"
#include "lab_util.cuh"

constexpr int kKernels = 64, kThreads = 256;

// Block b's share of n weights among `blocks`: [*first, *last), whole 16-byte groups (n a multiple of 4).
__host__ __device__ inline void block_share(long long n, int blocks, int b, long long* first, long long* last) {
    const long long share = ((n + blocks - 1) / blocks + 3) / 4 * 4;
    *first = b * share < n ? b * share : n;
    *last = *first + share < n ? *first + share : n;
}

// y_out[b] = y_in[b] + the sum of block b's share of w (n floats). own: the block asks L2 for its share
// first, a 4 KiB piece a thread; next: the next kernel's weights, asked for too.
__global__ void weighted_step(const float* __restrict__ y_in, float* __restrict__ y_out, const float* __restrict__ w,
                              long long n, bool own, resnest::L2Prefetch next) {
    long long first, last;
    block_share(n, gridDim.x, blockIdx.x, &first, &last);
    constexpr long long kPiece = resnest::kPrefetchBulkBytes / 4;
    if (own)
        for (long long at = first + threadIdx.x * kPiece; at < last; at += blockDim.x * kPiece)
            resnest::prefetch_l2_run(w + at, 4 * ((at + kPiece < last ? at + kPiece : last) - at));
    resnest::prefetch_l2_across_grid(next);
    resnest::wait_for_producer_then_release_consumer();
    __shared__ float partial[kThreads / 32];
    float sum = 0.0f;
    for (long long i = first + 4 * threadIdx.x; i < last; i += 4 * blockDim.x) {
        const float4 v = *reinterpret_cast<const float4*>(w + i);
        sum += (v.x + v.y) + (v.z + v.w);
    }
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.0f;
        for (int i = 0; i < kThreads / 32; i++) total += partial[i];
        y_out[blockIdx.x] = y_in[blockIdx.x] + total;
    }
}

int main() {
    int device = 0, sms = 0;
    LAB_CHECK(cudaGetDevice(&device));
    LAB_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    std::printf("lab_weight_prefetch: %d SMs, kernels built as %d\n", sms, resnest::kernels_compiled_arch());
    if (resnest::kernels_compiled_arch() < 90) {
        std::printf("skipped: the kernels are not sm_90 code (no dependent launch, no bulk prefetch)\n");
        return 0;
    }
    cudaStream_t stream;
    LAB_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    bool all_ok = true;
    for (long long bytes : {256LL << 10, 1LL << 20, 4LL << 20}) {
        const long long n = bytes / 4;
        // Weights 0..3, whole numbers: every partial sum exact in float.
        std::vector<float*> w(kKernels);
        std::vector<std::vector<float>> host(kKernels);
        for (int k = 0; k < kKernels; k++) {
            host[k].resize((size_t)n);
            for (long long i = 0; i < n; i++) host[k][(size_t)i] = (float)((i * 7 + k * 13) % 4);
            w[k] = lab::upload_float(host[k]);
        }
        for (int blocks : {16, sms}) {
            std::vector<float> want((size_t)blocks, 0.0f);
            for (int k = 0; k < kKernels; k++)
                for (int b = 0; b < blocks; b++) {
                    long long first, last;
                    block_share(n, blocks, b, &first, &last);
                    for (long long i = first; i < last; i++) want[(size_t)b] += host[k][(size_t)i];
                }
            float *ya = nullptr, *yb = nullptr;
            LAB_CHECK(cudaMalloc(&ya, blocks * sizeof(float)));
            LAB_CHECK(cudaMalloc(&yb, blocks * sizeof(float)));
            float us[4] = {};
            for (int version = 1; version <= 3; version++) {
                float* result = nullptr;
                auto chain = [&] {
                    LAB_CHECK(cudaMemsetAsync(ya, 0, blocks * sizeof(float), stream));
                    float *in = ya, *out = yb;
                    for (int k = 0; k < kKernels; k++) {
                        resnest::L2Prefetch next;
                        if (version == 3 && k + 1 < kKernels) next.ptr[0] = w[k + 1], next.bytes[0] = bytes;
                        resnest::launch_kernel("weighted_step", weighted_step, blocks, kThreads, 0,
                                               resnest::KernelStream(stream, true), (const float*)in, out,
                                               (const float*)w[k], n, version >= 2, next);
                        std::swap(in, out);
                    }
                    result = in;
                };
                cudaGraph_t g = nullptr;
                cudaGraphExec_t exec = nullptr;
                LAB_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
                chain();
                LAB_CHECK(cudaStreamEndCapture(stream, &g));
                LAB_CHECK(cudaGraphInstantiate(&exec, g, 0));
                int wrong = 0;
                auto check = [&] {
                    LAB_CHECK(cudaStreamSynchronize(stream));
                    std::vector<float> got((size_t)blocks);
                    LAB_CHECK(cudaMemcpy(got.data(), result, blocks * sizeof(float), cudaMemcpyDeviceToHost));
                    for (int b = 0; b < blocks; b++) wrong += std::memcmp(&got[(size_t)b], &want[(size_t)b], 4) != 0;
                };
                for (int r = 0; r < 3; r++) {
                    LAB_CHECK(cudaGraphLaunch(exec, stream));
                    check();
                }
                const float ms = lab::time_ms([&] { LAB_CHECK(cudaGraphLaunch(exec, stream)); }, 20, stream);
                check();
                us[version] = ms * 1000.0f / kKernels;
                // Weights read a kernel / its time: the rate each kernel's blocks reach.
                std::printf("%5lld KiB x %3d blocks v%d: %7.3f us a kernel, %7.1f GB/s of weights, %s\n", bytes >> 10,
                            blocks, version, us[version], bytes / (us[version] * 1e3), wrong ? "WRONG" : "ok");
                all_ok &= wrong == 0;
                LAB_CHECK(cudaGraphExecDestroy(exec));
                LAB_CHECK(cudaGraphDestroy(g));
            }
            std::printf("%5lld KiB x %3d blocks: own prefetch saves %.3f us a kernel, with the next one's %.3f us\n",
                        bytes >> 10, blocks, us[1] - us[2], us[1] - us[3]);
            cudaFree(ya);
            cudaFree(yb);
        }
        for (float* p : w) cudaFree(p);
    }
    std::printf("%s\n", all_ok ? "all versions correct" : "SOME VERSIONS WRONG");
    return all_ok ? 0 : 1;
}
