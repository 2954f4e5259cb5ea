// pool2d_nhwc.cu: max and average pooling, one thread per output element (n, oy, ox, c): consecutive threads
// take consecutive channels, so every read of a window cell and every write is coalesced.
#include "pool2d_nhwc.cuh"

#include "kernel_common.cuh"

namespace resnest {

template <typename T, bool kMax>
__global__ void pool2d_nhwc_kernel(const T* __restrict__ x, T* __restrict__ y, Pool2dShape s, long long total) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, OH, OW, C)
    if (i >= total) return;
    int c = (int)(i % s.channels);
    long long rest = i / s.channels;
    int ox = (int)(rest % s.out_w);
    rest /= s.out_w;
    int oy = (int)(rest % s.out_h);
    long long n = rest / s.out_h;
    int ys = oy * s.stride_h - s.pad_h, xs = ox * s.stride_w - s.pad_w;
    int y0 = max(ys, 0), y1 = min(ys + s.kernel_h, s.in_h);
    int x0 = max(xs, 0), x1 = min(xs + s.kernel_w, s.in_w);
    const T* xn = x + n * s.in_h * s.in_w * (long long)s.channels + c;
    float acc = kMax ? -INFINITY : 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = load_as_float(&xn[((long long)iy * s.in_w + ix) * s.channels]);
            if (kMax) acc = v > acc ? v : acc;  // as the CPU's std::max(best, v)
            else acc += v;
        }
    if (kMax) {
        store_from_float(&y[i], acc);
    } else {
        int divisor = s.count_include_pad
                          ? (min(ys + s.kernel_h, s.in_h + s.pad_h) - ys) * (min(xs + s.kernel_w, s.in_w + s.pad_w) - xs)
                          : (y1 - y0) * (x1 - x0);
        store_from_float(&y[i], acc / (float)divisor);
    }
}

template <typename T>
void max_pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, cudaStream_t stream) {
    long long total = (long long)s.n * s.out_h * s.out_w * s.channels;
    pool2d_nhwc_kernel<T, true><<<ceil_div(total, 256), 256, 0, stream>>>(x, y, s, total);
    check_kernel_launch("max_pool2d_nhwc");
}

template <typename T>
void avg_pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, cudaStream_t stream) {
    long long total = (long long)s.n * s.out_h * s.out_w * s.channels;
    pool2d_nhwc_kernel<T, false><<<ceil_div(total, 256), 256, 0, stream>>>(x, y, s, total);
    check_kernel_launch("avg_pool2d_nhwc");
}

template void max_pool2d_nhwc<float>(const float*, float*, const Pool2dShape&, cudaStream_t);
template void max_pool2d_nhwc<__half>(const __half*, __half*, const Pool2dShape&, cudaStream_t);
template void avg_pool2d_nhwc<float>(const float*, float*, const Pool2dShape&, cudaStream_t);
template void avg_pool2d_nhwc<__half>(const __half*, __half*, const Pool2dShape&, cudaStream_t);

}  // namespace resnest
