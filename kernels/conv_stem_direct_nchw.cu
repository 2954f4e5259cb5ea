// conv_stem_direct_nchw.cu: the network's first convolution straight from the NCHW float input
// (conv_stem_direct_nchw.cuh). Each block stages the filter's real input channels in shared memory as float;
// each thread computes 8 output channels of one cell: for every tap of the window inside the input, its C
// input values (consecutive threads read neighbouring cells' taps, so the loads coalesce by plane), each
// multiplied into the 8 accumulators; then bias, ReLU and one 16-byte store (two in float).
#include "conv_stem_direct_nchw.cuh"

#include <cstdint>
#include <string>

#include "kernel_common.cuh"

namespace resnest {

namespace {

constexpr int kThreads = 256;
constexpr int V = kStemChannelsPerThread;

// grid ceil(threads / 256). x (N, C, H, W) float, w (Cout, k, k, Cp) T, bias (Cout) float or null,
// y (N, OH, OW, Cout) T.
template <typename T>
__global__ void __launch_bounds__(kThreads)
conv_stem_direct_nchw_kernel(const float* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                             T* __restrict__ y, StemConvShape s, bool relu) {
    wait_for_producer_then_release_consumer();
    extern __shared__ float filter[];  // (Cout, k, k, C)
    const int taps = s.k * s.k;
    for (int i = threadIdx.x; i < s.cout * taps * s.c; i += blockDim.x) {
        const int ch = i % s.c, tap = (i / s.c) % taps, o = i / (s.c * taps);
        filter[i] = load_as_float(w + s.w_offset(o, tap / s.k, tap % s.k, ch));
    }
    __syncthreads();
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= s.threads()) return;
    long long image;
    int oy, ox, o0;
    s.thread_cell(t, &image, &oy, &ox, &o0);
    float acc[V];
    for (int j = 0; j < V; j++) acc[j] = bias ? bias[o0 + j] : 0.0f;
    const int y0 = oy * s.stride - s.pad, x0 = ox * s.stride - s.pad;
    for (int ky = 0; ky < s.k; ky++) {
        const int iy = y0 + ky;
        if (iy < 0 || iy >= s.h) continue;
        for (int kx = 0; kx < s.k; kx++) {
            const int ix = x0 + kx;
            if (ix < 0 || ix >= s.w) continue;
            for (int ch = 0; ch < s.c; ch++) {
                const float v = __ldg(x + s.x_offset(image, ch, iy, ix));
                const float* f = filter + s.filter_index(o0, ky, kx, ch);
                for (int j = 0; j < V; j++) acc[j] += v * f[j * taps * s.c];
            }
        }
    }
    if (relu)
        for (int j = 0; j < V; j++) acc[j] = relu_keeping_nan(acc[j]);
    T* out = y + s.y_offset(image, oy, ox, o0);
    for (int j = 0; j < V; j += kVec16<T>) store16_from_float(out + j, acc + j);
}

}  // namespace

const char* conv_stem_direct_nchw_refusal(const StemConvShape& s, const void* y) {
    if (!s.fits())
        return "needs 1-8 input channels, Cout a multiple of 8, a window of at most 7 over the input and a filter "
               "within 48 KiB";
    if (!aligned16(y)) return "needs a 16-byte aligned y";
    return "";
}

template <typename T>
void conv_stem_direct_nchw(const float* x, const T* w, const float* bias, T* y, const StemConvShape& s, bool relu,
                           KernelStream stream) {
    const std::string refusal = conv_stem_direct_nchw_refusal(s, y);
    if (!refusal.empty()) throw Error(std::string("conv_stem_direct_nchw: ") + refusal);
    launch_kernel("conv_stem_direct_nchw", conv_stem_direct_nchw_kernel<T>, ceil_div(s.threads(), kThreads), kThreads,
                  s.filter_bytes(), stream, x, w, bias, y, s, relu);
}

template void conv_stem_direct_nchw<float>(const float*, const float*, const float*, float*, const StemConvShape&,
                                           bool, KernelStream);
template void conv_stem_direct_nchw<__half>(const float*, const __half*, const float*, __half*, const StemConvShape&,
                                            bool, KernelStream);

}  // namespace resnest
