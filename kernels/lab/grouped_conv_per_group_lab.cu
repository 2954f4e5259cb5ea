// grouped_conv_per_group_lab.cu: lab for ResNeSt50's grouped 3x3 convolutions (the split-attention conv:
// groups = radix = 2), three ways on cuDNN, fp16 NHWC, float accumulation, tensor-core math:
//   y (N, H, W, Cout) = conv3x3(x (N, H, W, Cin), w (Cout, 3, 3, Cin/2)), groups 2, stride 1, pad 1
// The question it answers: at batch 128 the runtime's choice ran all 14 of them in the dense form (a
// (Cout, 3, 3, Cin) filter with zero blocks: twice the arithmetic), 1.76 ms of the 6.03 ms eager profile at
// 6ebbad4, because cuDNN's grouped kernels and its per-group graphs over strided channel views were slower.
// If a group's convolution on packed tensors (its own (N, H, W, Cin/2) input and (N, H, W, Cout/2) output)
// runs at the dense form's rate on half the arithmetic, a graph pass that keeps each radix split in a tensor
// of its own (conv1 as two half-width matmuls, conv2 as two dense convolutions, split attention reading the
// splits apart) would take most of that 1.76 ms down by half. This lab measures it before that pass is
// written.
//
//   cmake --build build --target lab_grouped_conv_per_group   # built on demand
//   build/kernels/lab/lab_grouped_conv_per_group              # on a GPU machine
//
// conv1 (1x1, conv1_in -> Cin) whole and per group: see the prediction below.
// Ways, each with cuDNN's fastest algorithm for it (cudnnFindConvolutionForwardAlgorithmEx, 128 MiB of
// workspace at most, as the fp16 runtime), then timed as CUDA graph replays (lab::time_graph_ms):
//   grouped    one call with cudnnSetConvolutionGroupCount(2)
//   dense      one call with the dense filter (zeros outside each group's block): 2x the arithmetic
//   per-group  two calls, each a plain convolution on packed tensors (the group's input channels copied
//              apart first, outside the timing) with its half of the filter
// Correctness: 512 sampled outputs of each way against a double-precision CPU convolution of the same
// half-rounded inputs (lab::grouped_conv3x3_ref, unit-tested against the CPU oracle; relative to the largest
// |reference|, within 1e-2).
// Prediction (not yet measured): at batch 128 per-group takes <= 0.6x the dense form's time on layers 1-3
// (layer 1: dense 0.099 ms in the runtime's profile, fused with bias and ReLU) and grouped stays slowest; at
// batch 8 the three are within 20 % of each other (too little work to fill the GPU either way).
// The pass also splits conv1 (the 1x1 convolution before, conv1_in -> Cin): one convolution per group,
// each writing its group's channels packed, reads conv1's input twice. The lab times conv1 both ways too
// and prints the pair's ratio, (conv1 per group + conv2 per group) / (conv1 + conv2 dense), which is the
// number the pass stands on. Prediction: at batch 128 above 1 on layer 1 (conv1 there is memory-bound:
// reading its 256-channel 56x56 input twice costs more than the dense form's extra arithmetic), about 1 on
// layer 2, 0.75-0.85 on layers 3-4; so a pass would pay only on layers 3-4 (9 blocks, about 0.2-0.3 ms of
// 5.8 ms), unless conv1 writes the groups apart in one pass (its own kernel or epilogue).
//
// Numbers and the verdict are recorded at the bottom of this file once measured on a GPU.
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "lab_reference.h"
#include "lab_util.cuh"

#define LAB_CUDNN_CHECK(call)                                                                                  \
    do {                                                                                                       \
        cudnnStatus_t s_ = (call);                                                                             \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                                      \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudnnGetErrorString(s_)); \
            std::exit(1);                                                                                      \
        }                                                                                                      \
    } while (0)

namespace {

constexpr size_t kWorkspaceBytes = 128ull << 20;
constexpr int kGroups = 2;

struct Shape {
    const char* name;
    int h, w, cin, cout;  // the conv's input and output channels, both groups
    int conv1_in;         // the 1x1 conv1 before it: conv1_in -> cin channels (the block's later repeats)
};

// Uniform values in [-1, 1] from a hash of (seed, index), never zero, as halves: fresh every run (the seed is
// drawn on the host), made on the device so batch-128 tensors take no host time.
__global__ void fill_random_half(__half* x, long long n, unsigned seed) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        unsigned v = (unsigned)i * 2654435761u ^ seed;
        v ^= v >> 16, v *= 0x7feb352du, v ^= v >> 15, v *= 0x846ca68bu, v ^= v >> 16;
        float f = ((v >> 8) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;
        if (f == 0.0f) f = 0.5f;
        x[i] = __float2half(f);
    }
}

// One convolution's descriptors: x (n, h, w, cin), filter (cout, k, k, cin / groups), y (n, h, w, cout);
// stride 1, padding k / 2 (k = 3 for conv2, 1 for conv1).
struct Conv {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    size_t workspace = 0;

    Conv(int n, int h, int w_, int cin, int cout, int groups, int k = 3) {
        LAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
        LAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
        LAB_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
        LAB_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
        LAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, n, cin, h, w_));
        LAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, n, cout, h, w_));
        LAB_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, cout, cin / groups, k, k));
        LAB_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, k / 2, k / 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                                        CUDNN_DATA_FLOAT));
        LAB_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, groups));
        LAB_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_TENSOR_OP_MATH));
    }
    ~Conv() {
        cudnnDestroyTensorDescriptor(x);
        cudnnDestroyTensorDescriptor(y);
        cudnnDestroyFilterDescriptor(w);
        cudnnDestroyConvolutionDescriptor(conv);
    }
    // cuDNN's fastest algorithm within the workspace, timed by cuDNN on these buffers; false if none runs.
    bool find(cudnnHandle_t h, const __half* dx, const __half* dw, __half* dy, void* ws) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int returned = 0;
        LAB_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, x, dx, w, dw, conv, y, dy,
                                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, ws,
                                                               kWorkspaceBytes));
        for (int i = 0; i < returned; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceBytes) {
                algo = perf[i].algo, workspace = perf[i].memory;
                return true;
            }
        return false;
    }
    cudnnStatus_t launch(cudnnHandle_t h, const __half* dx, const __half* dw, __half* dy, void* ws) const {
        const float one = 1.0f, zero = 0.0f;
        return cudnnConvolutionForward(h, &one, x, dx, w, dw, conv, algo, ws, workspace, &zero, y, dy);
    }
    void run(cudnnHandle_t h, const __half* dx, const __half* dw, __half* dy, void* ws) const {
        LAB_CUDNN_CHECK(launch(h, dx, dw, dy, ws));
    }
};

struct Sample {
    int n, y, x, o;
};

// max |got - ref| / max |ref| over the samples; got(sample) reads one way's output.
template <typename Got>
double sample_error(const std::vector<double>& ref, const std::vector<Sample>& samples, Got got) {
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < samples.size(); i++) {
        const double v = got(samples[i]);
        if (!std::isfinite(v)) return INFINITY;
        diff = std::max(diff, std::fabs(v - ref[i]));
        scale = std::max(scale, std::fabs(ref[i]));
    }
    return diff / scale;
}

}  // namespace

int main() {
    // ResNeSt50's split-attention convolutions (radix 2, cardinality 1): layer, input size, channels.
    // conv1's input: the previous block's output (256 * 2^layer channels; each layer's first block reads
    // the layer before's, at the size conv2 runs at).
    const Shape shapes[] = {{"layer1 56x56 64->128", 56, 56, 64, 128, 256},
                            {"layer2.0 56x56 128->256", 56, 56, 128, 256, 256},
                            {"layer2 28x28 128->256", 28, 28, 128, 256, 512},
                            {"layer3.0 28x28 256->512", 28, 28, 256, 512, 512},
                            {"layer3 14x14 256->512", 14, 14, 256, 512, 1024},
                            {"layer4.0 14x14 512->1024", 14, 14, 512, 1024, 1024},
                            {"layer4 7x7 512->1024", 7, 7, 512, 1024, 2048}};
    cudnnHandle_t h;
    LAB_CUDNN_CHECK(cudnnCreate(&h));
    cudaStream_t stream;
    LAB_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    LAB_CUDNN_CHECK(cudnnSetStream(h, stream));
    void* ws;
    LAB_CHECK(cudaMalloc(&ws, kWorkspaceBytes));
    std::mt19937 rng(std::random_device{}());
    bool all_ok = true;
    std::printf("%-26s %5s  %-9s %9s %9s  %s\n", "shape", "batch", "way", "ms", "TFLOP/s", "sampled rel err");
    for (int batch : {8, 128})
        for (const Shape& s : shapes) {
            const int cin_g = s.cin / kGroups, cout_g = s.cout / kGroups;
            const long long pixels = (long long)batch * s.h * s.w;
            const long long nx = pixels * s.cin, ny = pixels * s.cout, nw = (long long)s.cout * 9 * cin_g;
            __half *dx, *dw, *dw_dense, *dy, *dy_dense, *dx_g[kGroups], *dy_g[kGroups];
            LAB_CHECK(cudaMalloc(&dx, nx * 2));
            LAB_CHECK(cudaMalloc(&dw, nw * 2));
            LAB_CHECK(cudaMalloc(&dw_dense, nw * kGroups * 2));
            LAB_CHECK(cudaMalloc(&dy, ny * 2));
            LAB_CHECK(cudaMalloc(&dy_dense, ny * 2));
            for (int g = 0; g < kGroups; g++) {
                LAB_CHECK(cudaMalloc(&dx_g[g], pixels * cin_g * 2));
                LAB_CHECK(cudaMalloc(&dy_g[g], pixels * cout_g * 2));
            }
            fill_random_half<<<1024, 256, 0, stream>>>(dx, nx, (unsigned)rng());
            fill_random_half<<<256, 256, 0, stream>>>(dw, nw, (unsigned)rng());
            LAB_CHECK(cudaGetLastError());
            LAB_CHECK(cudaStreamSynchronize(stream));
            std::vector<float> x = lab::download_half(dx, (size_t)nx), w = lab::download_half(dw, (size_t)nw);
            // The dense filter (Cout, 3, 3, Cin): output channel o reads only its group's input channels.
            std::vector<float> w_dense((size_t)nw * kGroups, 0.0f);
            for (int o = 0; o < s.cout; o++)
                for (int k = 0; k < 9; k++)
                    for (int c = 0; c < cin_g; c++)
                        w_dense[((size_t)o * 9 + k) * s.cin + (size_t)(o / cout_g) * cin_g + c] =
                            w[((size_t)o * 9 + k) * cin_g + c];
            __half* up = lab::upload_half(w_dense);
            // Device-to-device copies and memsets go on `stream` (not the legacy default stream, which this
            // non-blocking stream does not wait for).
            LAB_CHECK(cudaMemcpyAsync(dw_dense, up, nw * kGroups * 2, cudaMemcpyDeviceToDevice, stream));
            // Each group's input channels packed apart (a row of cin_g halves per pixel).
            for (int g = 0; g < kGroups; g++)
                LAB_CHECK(cudaMemcpy2DAsync(dx_g[g], cin_g * 2, dx + (size_t)g * cin_g, s.cin * 2, cin_g * 2, pixels,
                                            cudaMemcpyDeviceToDevice, stream));
            LAB_CHECK(cudaStreamSynchronize(stream));
            LAB_CHECK(cudaFree(up));
            Conv grouped(batch, s.h, s.w, s.cin, s.cout, kGroups), dense(batch, s.h, s.w, s.cin, s.cout, 1),
                per_group(batch, s.h, s.w, cin_g, cout_g, 1);
            const bool have[3] = {grouped.find(h, dx, dw, dy, ws), dense.find(h, dx, dw_dense, dy_dense, ws),
                                  per_group.find(h, dx_g[0], dw, dy_g[0], ws)};
            auto run_per_group = [&] {
                for (int g = 0; g < kGroups; g++)
                    per_group.run(h, dx_g[g], dw + (size_t)g * cout_g * 9 * cin_g, dy_g[g], ws);
            };
            // Poisoned outputs, one run of each way, then the sampled check.
            LAB_CHECK(cudaMemsetAsync(dy, 0xFF, ny * 2, stream));
            LAB_CHECK(cudaMemsetAsync(dy_dense, 0xFF, ny * 2, stream));
            for (int g = 0; g < kGroups; g++) LAB_CHECK(cudaMemsetAsync(dy_g[g], 0xFF, pixels * cout_g * 2, stream));
            if (have[0]) grouped.run(h, dx, dw, dy, ws);
            if (have[1]) dense.run(h, dx, dw_dense, dy_dense, ws);
            if (have[2]) run_per_group();
            LAB_CHECK(cudaStreamSynchronize(stream));
            std::vector<float> y = lab::download_half(dy, (size_t)ny), y_dense = lab::download_half(dy_dense, (size_t)ny);
            std::vector<std::vector<float>> y_g;
            for (int g = 0; g < kGroups; g++) y_g.push_back(lab::download_half(dy_g[g], (size_t)(pixels * cout_g)));
            std::vector<Sample> samples(512);
            std::vector<double> ref(samples.size());
            for (size_t i = 0; i < samples.size(); i++) {
                samples[i] = {(int)(rng() % batch), (int)(rng() % s.h), (int)(rng() % s.w), (int)(rng() % s.cout)};
                ref[i] = lab::grouped_conv3x3_ref(x, w, s.h, s.w, s.cin, s.cout, kGroups, samples[i].n, samples[i].y,
                                                  samples[i].x, samples[i].o);
            }
            auto at = [&](const std::vector<float>& t, int channels, const Sample& p, int o) {
                return (double)t[(((size_t)p.n * s.h + p.y) * s.w + p.x) * channels + o];
            };
            const double err[3] = {
                sample_error(ref, samples, [&](const Sample& p) { return at(y, s.cout, p, p.o); }),
                sample_error(ref, samples, [&](const Sample& p) { return at(y_dense, s.cout, p, p.o); }),
                sample_error(ref, samples, [&](const Sample& p) { return at(y_g[p.o / cout_g], cout_g, p, p.o % cout_g); })};
            const char* names[3] = {"grouped", "dense", "per-group"};
            const double flops = 2.0 * pixels * s.cout * 9.0 * cin_g;  // the grouped arithmetic, for every way
            float ms[3] = {0, 0, 0};
            for (int k = 0; k < 3; k++) {
                if (!have[k]) {
                    std::printf("%-26s %5d  %-9s %9s %9s  (no algorithm within 128 MiB)\n", s.name, batch, names[k], "-",
                                "-");
                    continue;
                }
                // Timed with the status left unchecked: a call the graph capture refuses invalidates the capture
                // and time_graph_ms times back to back instead (each call already ran checked above).
                auto timed = [&](auto launch) { return lab::time_graph_ms(launch, stream, 20); };
                if (k == 0) ms[k] = timed([&] { grouped.launch(h, dx, dw, dy, ws); });
                if (k == 1) ms[k] = timed([&] { dense.launch(h, dx, dw_dense, dy_dense, ws); });
                if (k == 2)
                    ms[k] = timed([&] {
                        for (int g = 0; g < kGroups; g++)
                            per_group.launch(h, dx_g[g], dw + (size_t)g * cout_g * 9 * cin_g, dy_g[g], ws);
                    });
                const bool ok = err[k] <= 1e-2;
                all_ok &= ok;
                std::printf("%-26s %5d  %-9s %9.4f %9.1f  %.2e %s\n", s.name, batch, names[k], ms[k],
                            flops / (ms[k] * 1e9), err[k], ok ? "ok" : "WRONG");
            }
            if (have[1] && have[2])
                std::printf("%-26s %5d  per-group / dense = %.2f\n", s.name, batch, ms[2] / ms[1]);
            // conv1, which feeds conv2: as the runtime runs it (one 1x1 convolution writing all cin channels
            // interleaved), and as the per-split pass would (one 1x1 convolution per group, each writing its
            // group's channels packed: the input read twice). It writes over conv2's inputs, already used.
            const int c1 = s.conv1_in;
            const long long nx1 = pixels * c1, nw1 = (long long)s.cin * c1;
            __half *dx1, *dw1;
            LAB_CHECK(cudaMalloc(&dx1, nx1 * 2));
            LAB_CHECK(cudaMalloc(&dw1, nw1 * 2));
            fill_random_half<<<1024, 256, 0, stream>>>(dx1, nx1, (unsigned)rng());
            fill_random_half<<<256, 256, 0, stream>>>(dw1, nw1, (unsigned)rng());
            LAB_CHECK(cudaGetLastError());
            LAB_CHECK(cudaMemsetAsync(dx, 0xFF, nx * 2, stream));
            for (int g = 0; g < kGroups; g++) LAB_CHECK(cudaMemsetAsync(dx_g[g], 0xFF, pixels * cin_g * 2, stream));
            LAB_CHECK(cudaStreamSynchronize(stream));
            Conv conv1_whole(batch, s.h, s.w, c1, s.cin, 1, 1), conv1_half(batch, s.h, s.w, c1, cin_g, 1, 1);
            const bool have1 = conv1_whole.find(h, dx1, dw1, dx, ws) && conv1_half.find(h, dx1, dw1, dx_g[0], ws);
            auto conv1_halves = [&] {
                for (int g = 0; g < kGroups; g++) conv1_half.launch(h, dx1, dw1 + (size_t)g * cin_g * c1, dx_g[g], ws);
            };
            if (have1) {
                LAB_CHECK(cudaMemsetAsync(dx, 0xFF, nx * 2, stream));
                for (int g = 0; g < kGroups; g++) LAB_CHECK(cudaMemsetAsync(dx_g[g], 0xFF, pixels * cin_g * 2, stream));
                conv1_whole.run(h, dx1, dw1, dx, ws);
                for (int g = 0; g < kGroups; g++) conv1_half.run(h, dx1, dw1 + (size_t)g * cin_g * c1, dx_g[g], ws);
                LAB_CHECK(cudaStreamSynchronize(stream));
                const std::vector<float> x1 = lab::download_half(dx1, (size_t)nx1), w1 = lab::download_half(dw1, (size_t)nw1);
                const std::vector<float> y1 = lab::download_half(dx, (size_t)nx);
                std::vector<std::vector<float>> y1_g;
                for (int g = 0; g < kGroups; g++) y1_g.push_back(lab::download_half(dx_g[g], (size_t)(pixels * cin_g)));
                double diff[2] = {0, 0}, scale = 0;
                bool finite = true;
                for (int i = 0; i < 512; i++) {
                    const size_t p = (size_t)(rng() % (unsigned long long)pixels);
                    const int o = (int)(rng() % s.cin);
                    const double r = lab::conv1x1_ref(x1, w1, c1, p, o);
                    const double got[2] = {y1[p * s.cin + o], y1_g[o / cin_g][p * cin_g + o % cin_g]};
                    for (int k = 0; k < 2; k++) {
                        finite &= std::isfinite(got[k]);
                        diff[k] = std::max(diff[k], std::fabs(got[k] - r));
                    }
                    scale = std::max(scale, std::fabs(r));
                }
                const double flops1 = 2.0 * pixels * s.cin * c1;
                const float ms1[2] = {lab::time_graph_ms([&] { conv1_whole.launch(h, dx1, dw1, dx, ws); }, stream, 20),
                                      lab::time_graph_ms(conv1_halves, stream, 20)};
                const char* names1[2] = {"conv1", "conv1/grp"};
                for (int k = 0; k < 2; k++) {
                    const double e = finite ? diff[k] / scale : INFINITY;
                    const bool ok = e <= 1e-2;
                    all_ok &= ok;
                    std::printf("%-26s %5d  %-9s %9.4f %9.1f  %.2e %s\n", s.name, batch, names1[k], ms1[k],
                                flops1 / (ms1[k] * 1e9), e, ok ? "ok" : "WRONG");
                }
                // The decision: conv1 + conv2 as the runtime runs them now (conv1 whole + the dense form)
                // against the per-split pass (conv1 per group + conv2 per group).
                if (have[1] && have[2])
                    std::printf("%-26s %5d  pair per-split / now = (%.4f + %.4f) / (%.4f + %.4f) = %.2f\n", s.name, batch,
                                ms1[1], ms[2], ms1[0], ms[1], (ms1[1] + ms[2]) / (ms1[0] + ms[1]));
            } else {
                std::printf("%-26s %5d  conv1     (no algorithm within 128 MiB)\n", s.name, batch);
            }
            cudaFree(dx1), cudaFree(dw1);
            cudaFree(dx), cudaFree(dw), cudaFree(dw_dense), cudaFree(dy), cudaFree(dy_dense);
            for (int g = 0; g < kGroups; g++) cudaFree(dx_g[g]), cudaFree(dy_g[g]);
        }
    cudaFree(ws);
    cudnnDestroy(h);
    cudaStreamDestroy(stream);
    std::printf("%s\n", all_ok ? "all ways correct" : "SOME WAYS WRONG");
    return all_ok ? 0 : 1;
}

// ---- results ---------------------------------------------------------------------------------------------
// Not yet measured.
