// layout_convert.cu: NCHW float <-> NHWC T at the model's edges, one thread per element, indexed so the
// writes are coalesced (the reads of the 3-channel input stride by HW, which costs nothing at its size).
// An input padded to 16 bytes a pixel (8 halves or 4 floats) takes one thread per pixel instead, where y
// is 16-byte aligned: its reads are coalesced along each channel plane and it writes the pixel with one
// 16-byte store.
#include "layout_convert.cuh"

#include "kernel_common.cuh"
#include "resnest/error.h"

namespace resnest {

template <typename T>
__global__ void nchw_float_to_nhwc_kernel(const float* __restrict__ x, T* __restrict__ y, int c, int c_padded,
                                          int hw, long long total) {
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, HW, C_padded)
    if (i >= total) return;
    int ch = (int)(i % c_padded);
    long long rest = i / c_padded;
    int p = (int)(rest % hw);
    long long n = rest / hw;
    store_from_float(&y[i], ch < c ? x[(n * c + ch) * hw + p] : 0.0f);
}

// C_padded = kVec16<T>: one thread per pixel (n, p).
template <typename T>
__global__ void nchw_float_to_nhwc_vec16_pixel_kernel(const float* __restrict__ x, T* __restrict__ y, int c, int hw,
                                                      long long pixels) {
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // n * hw + p
    if (i >= pixels) return;
    const long long n = i / hw;
    const int p = (int)(i - n * hw);
    float v[kVec16<T>];
    for (int k = 0; k < kVec16<T>; k++) v[k] = k < c ? x[(n * c + k) * hw + p] : 0.0f;
    store16_from_float(&y[i * kVec16<T>], v);
}

template <typename T>
__global__ void nhwc_to_nchw_float_kernel(const T* __restrict__ x, float* __restrict__ y, int c, int hw,
                                          long long total) {
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, C, HW)
    if (i >= total) return;
    int p = (int)(i % hw);
    long long rest = i / hw;
    int ch = (int)(rest % c);
    long long n = rest / c;
    y[i] = load_as_float(&x[(n * hw + p) * c + ch]);
}

template <typename T>
void nchw_float_to_nhwc(const float* x, T* y, int n, int c, int c_padded, int hw, KernelStream stream) {
    if (c < 1 || c_padded < c)
        throw Error("nchw_float_to_nhwc: " + std::to_string(c) + " channels cannot be padded to " +
                    std::to_string(c_padded));
    if (c_padded == kVec16<T> && aligned16(y)) {
        long long pixels = (long long)n * hw;
        launch_kernel("nchw_float_to_nhwc", nchw_float_to_nhwc_vec16_pixel_kernel<T>, ceil_div(pixels, 256), 256, 0,
                      stream, x, y, c, hw, pixels);
        return;
    }
    long long total = (long long)n * c_padded * hw;
    launch_kernel("nchw_float_to_nhwc", nchw_float_to_nhwc_kernel<T>, ceil_div(total, 256), 256, 0, stream, x, y, c,
                  c_padded, hw, total);
}

template <typename T>
void nhwc_to_nchw_float(const T* x, float* y, int n, int c, int hw, KernelStream stream) {
    long long total = (long long)n * c * hw;
    launch_kernel("nhwc_to_nchw_float", nhwc_to_nchw_float_kernel<T>, ceil_div(total, 256), 256, 0, stream, x, y, c,
                  hw, total);
}

template void nchw_float_to_nhwc<float>(const float*, float*, int, int, int, int, KernelStream);
template void nchw_float_to_nhwc<__half>(const float*, __half*, int, int, int, int, KernelStream);
template void nhwc_to_nchw_float<float>(const float*, float*, int, int, int, KernelStream);
template void nhwc_to_nchw_float<__half>(const __half*, float*, int, int, int, KernelStream);

}  // namespace resnest
