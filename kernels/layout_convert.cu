// layout_convert.cu: NCHW float <-> NHWC T at the model's edges, one thread per element, indexed so the
// writes are coalesced (the reads of the 3-channel input stride by HW, which costs nothing at its size).
#include "layout_convert.cuh"

#include "kernel_common.cuh"

namespace resnest {

template <typename T>
__global__ void nchw_float_to_nhwc_kernel(const float* __restrict__ x, T* __restrict__ y, int c, int hw,
                                          long long total) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, HW, C)
    if (i >= total) return;
    int ch = (int)(i % c);
    long long rest = i / c;
    int p = (int)(rest % hw);
    long long n = rest / hw;
    store_from_float(&y[i], x[(n * c + ch) * hw + p]);
}

template <typename T>
__global__ void nhwc_to_nchw_float_kernel(const T* __restrict__ x, float* __restrict__ y, int c, int hw,
                                          long long total) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, C, HW)
    if (i >= total) return;
    int p = (int)(i % hw);
    long long rest = i / hw;
    int ch = (int)(rest % c);
    long long n = rest / c;
    y[i] = load_as_float(&x[(n * hw + p) * c + ch]);
}

template <typename T>
void nchw_float_to_nhwc(const float* x, T* y, int n, int c, int hw, cudaStream_t stream) {
    long long total = (long long)n * c * hw;
    nchw_float_to_nhwc_kernel<T><<<ceil_div(total, 256), 256, 0, stream>>>(x, y, c, hw, total);
    check_kernel_launch("nchw_float_to_nhwc");
}

template <typename T>
void nhwc_to_nchw_float(const T* x, float* y, int n, int c, int hw, cudaStream_t stream) {
    long long total = (long long)n * c * hw;
    nhwc_to_nchw_float_kernel<T><<<ceil_div(total, 256), 256, 0, stream>>>(x, y, c, hw, total);
    check_kernel_launch("nhwc_to_nchw_float");
}

template void nchw_float_to_nhwc<float>(const float*, float*, int, int, int, cudaStream_t);
template void nchw_float_to_nhwc<__half>(const float*, __half*, int, int, int, cudaStream_t);
template void nhwc_to_nchw_float<float>(const float*, float*, int, int, int, cudaStream_t);
template void nhwc_to_nchw_float<__half>(const __half*, float*, int, int, int, cudaStream_t);

}  // namespace resnest
