// split_attention_combine.cu: one thread per output cell and group of V channels (n, position, c..c+V-1),
// consecutive threads on consecutive groups: each reads its R splits of U (coalesced per split) and R
// attention weights (cached) and writes V values. V = 16 bytes' worth (8 halves, 4 floats) when the
// channel count allows it, else 1. The pooled variant sums the window of the weighted sums before dividing.
#include "split_attention_combine.cuh"

#include "kernel_common.cuh"
#include "pool_window.cuh"

namespace resnest {

template <typename T, int V>
__global__ void split_attention_weighted_sum_kernel(const T* __restrict__ u, const float* __restrict__ attn,
                                                    T* __restrict__ y, int hw, int radix, int c, long long total) {
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, HW, C/V)
    if (i >= total) return;
    const int groups = c / V;
    const int ch = (int)(i % groups) * V;
    const long long np = i / groups;  // n * hw + p
    const long long n = np / hw;
    const T* row = u + np * radix * (long long)c + ch;
    const float* a = attn + n * radix * (long long)c + ch;
    float sum[V];
    for (int k = 0; k < V; k++) sum[k] = 0.0f;
    for (int r = 0; r < radix; r++) {
        float uv[V], av[V];
        load_as_floats<V>(&row[(long long)r * c], uv);
        load_floats<V>(&a[(long long)r * c], av);
        for (int k = 0; k < V; k++) sum[k] += av[k] * uv[k];
    }
    store_from_floats<V>(&y[i * V], sum);
}

// kRadix: the radix fixed at compile time (2, ResNeSt's: 16 weight registers a thread instead of 64), or 0
// for any radix up to kMaxCombineRadix.
template <typename T, int V, int kRadix>
__global__ void split_attention_weighted_sum_avg_pool_kernel(const T* __restrict__ u, const float* __restrict__ attn,
                                                             T* __restrict__ y, int radix, Pool2dShape s,
                                                             long long total) {
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, OH, OW, C/V)
    if (i >= total) return;
    const int c = s.channels;
    const PoolCell cell = pool_cell(i, s, V);
    const long long n = cell.n;
    const int ch = cell.c;
    const PoolWindow w = pool_window(s, cell.oy, cell.ox);
    constexpr int kSlots = kRadix ? kRadix : kMaxCombineRadix;
    if (kRadix) radix = kRadix;
    const long long rc = (long long)radix * c;
    float weight[kSlots][V];
    for (int r = 0; r < kSlots; r++) {
        if (r < radix)
            load_floats<V>(attn + n * rc + (long long)r * c + ch, weight[r]);
        else
            for (int k = 0; k < V; k++) weight[r][k] = 0.0f;
    }
    const T* un = u + n * s.in_h * s.in_w * rc + ch;
    float sum[V];
    for (int k = 0; k < V; k++) sum[k] = 0.0f;
    for (int iy = w.y0; iy < w.y1; iy++)
        for (int ix = w.x0; ix < w.x1; ix++) {
            const T* row = un + ((long long)iy * s.in_w + ix) * rc;
            for (int r = 0; r < kSlots; r++)
                if (r < radix) {
                    float uv[V];
                    load_as_floats<V>(&row[(long long)r * c], uv);
                    for (int k = 0; k < V; k++) sum[k] += weight[r][k] * uv[k];
                }
        }
    for (int k = 0; k < V; k++) sum[k] /= (float)w.divisor;
    store_from_floats<V>(&y[i * V], sum);
}

template <typename T>
void split_attention_weighted_sum(const T* u, const float* attn, T* y, int n, int hw, int radix, int c,
                                  KernelStream stream) {
    const long long cells = (long long)n * hw;
    if (c % kVec16<T> == 0) {
        long long total = cells * (c / kVec16<T>);
        launch_kernel("split_attention_weighted_sum", split_attention_weighted_sum_kernel<T, kVec16<T>>,
                      ceil_div(total, 256), 256, 0, stream, u, attn, y, hw, radix, c, total);
    } else {
        long long total = cells * c;
        launch_kernel("split_attention_weighted_sum", split_attention_weighted_sum_kernel<T, 1>, ceil_div(total, 256),
                      256, 0, stream, u, attn, y, hw, radix, c, total);
    }
}

template <typename T, int V>
static void launch_weighted_sum_avg_pool(const T* u, const float* attn, T* y, int radix, const Pool2dShape& pool,
                                         long long total, KernelStream stream) {
    launch_kernel("split_attention_weighted_sum_avg_pool",
                  radix == 2 ? split_attention_weighted_sum_avg_pool_kernel<T, V, 2>
                             : split_attention_weighted_sum_avg_pool_kernel<T, V, 0>,
                  ceil_div(total, 256), 256, 0, stream, u, attn, y, radix, pool, total);
}

template <typename T>
void split_attention_weighted_sum_avg_pool(const T* u, const float* attn, T* y, int radix, const Pool2dShape& pool,
                                           KernelStream stream) {
    const long long cells = (long long)pool.n * pool.out_h * pool.out_w;
    if (pool.channels % kVec16<T> == 0)
        launch_weighted_sum_avg_pool<T, kVec16<T>>(u, attn, y, radix, pool, cells * (pool.channels / kVec16<T>),
                                                   stream);
    else
        launch_weighted_sum_avg_pool<T, 1>(u, attn, y, radix, pool, cells * pool.channels, stream);
}

template void split_attention_weighted_sum<float>(const float*, const float*, float*, int, int, int, int, KernelStream);
template void split_attention_weighted_sum<__half>(const __half*, const float*, __half*, int, int, int, int,
                                                   KernelStream);
template void split_attention_weighted_sum_avg_pool<float>(const float*, const float*, float*, int, const Pool2dShape&,
                                                           KernelStream);
template void split_attention_weighted_sum_avg_pool<__half>(const __half*, const float*, __half*, int,
                                                            const Pool2dShape&, KernelStream);

}  // namespace resnest
