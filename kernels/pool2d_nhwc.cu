// pool2d_nhwc.cu: max and average pooling, one thread per output cell and group of V channels
// (n, oy, ox, c..c+V-1): consecutive threads take consecutive channel groups, so every read of a window
// cell and every write is coalesced. V = 16 bytes' worth (8 halves, 4 floats) when the channel count
// and both buffers' alignment allow it, else 1. First, where given, the threads ask L2 for the filters of
// the library convolutions after the pool (kernel_common.cuh, prefetch_l2_across_grid).
#include "pool2d_nhwc.cuh"

#include "kernel_common.cuh"
#include "pool_window.cuh"

namespace resnest {

template <typename T, bool kMax, int V>
__global__ void pool2d_nhwc_kernel(const T* __restrict__ x, T* __restrict__ y, Pool2dShape s, long long total,
                                   L2Prefetch next) {
    prefetch_l2_across_grid(next);
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, OH, OW, C/V)
    if (i >= total) return;
    const PoolCell cell = pool_cell(i, s, V);
    const PoolWindow w = pool_window(s, cell.oy, cell.ox);
    const T* xn = x + cell.n * s.in_h * s.in_w * (long long)s.channels + cell.c;
    float acc[V];
    for (int k = 0; k < V; k++) acc[k] = kMax ? -INFINITY : 0.0f;
    for (int iy = w.y0; iy < w.y1; iy++)
        for (int ix = w.x0; ix < w.x1; ix++) {
            float v[V];
            load_as_floats<V>(&xn[((long long)iy * s.in_w + ix) * s.channels], v);
            for (int k = 0; k < V; k++) {
                if (kMax) acc[k] = v[k] > acc[k] ? v[k] : acc[k];  // as the CPU's std::max(best, v)
                else acc[k] += v[k];
            }
        }
    if (!kMax)
        for (int k = 0; k < V; k++) acc[k] /= (float)w.divisor;
    store_from_floats<V>(&y[i * V], acc);
}

template <typename T, bool kMax>
static void pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, KernelStream stream, const L2Prefetch& next,
                        const char* name) {
    const long long cells = (long long)s.n * s.out_h * s.out_w;
    const L2Prefetch ask = l2_prefetch_for(next, stream);
    if (s.channels % kVec16<T> == 0 && aligned16(x) && aligned16(y)) {
        long long total = cells * (s.channels / kVec16<T>);
        launch_kernel(name, pool2d_nhwc_kernel<T, kMax, kVec16<T>>, ceil_div(total, 256), 256, 0, stream, x, y, s,
                      total, ask);
    } else {
        long long total = cells * s.channels;
        launch_kernel(name, pool2d_nhwc_kernel<T, kMax, 1>, ceil_div(total, 256), 256, 0, stream, x, y, s, total,
                      ask);
    }
}

template <typename T>
void max_pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, KernelStream stream, const L2Prefetch& next) {
    pool2d_nhwc<T, true>(x, y, s, stream, next, "max_pool2d_nhwc");
}

template <typename T>
void avg_pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, KernelStream stream, const L2Prefetch& next) {
    pool2d_nhwc<T, false>(x, y, s, stream, next, "avg_pool2d_nhwc");
}

template void max_pool2d_nhwc<float>(const float*, float*, const Pool2dShape&, KernelStream, const L2Prefetch&);
template void max_pool2d_nhwc<__half>(const __half*, __half*, const Pool2dShape&, KernelStream, const L2Prefetch&);
template void avg_pool2d_nhwc<float>(const float*, float*, const Pool2dShape&, KernelStream, const L2Prefetch&);
template void avg_pool2d_nhwc<__half>(const __half*, __half*, const Pool2dShape&, KernelStream, const L2Prefetch&);

}  // namespace resnest
