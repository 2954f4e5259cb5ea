// split_attention_combine.cu: one thread per output cell and group of V channels (n, position, c..c+V-1),
// consecutive threads on consecutive groups: each reads its R splits of U (coalesced per split) and R
// attention weights (cached) and writes V values. V = 16 bytes' worth (8 halves, 4 floats) when the
// channel count and the alignment of the splits and of y allow it, else 1 (a vector never leaves its
// split: C % V == 0).
// U's splits come through per-split row pointers (split_attention_rows.cuh), interleaved in one tensor or
// apart. The pooled variant sums the window of the weighted sums before dividing.
#include "split_attention_combine.cuh"

#include "kernel_common.cuh"
#include "pool_window.cuh"

namespace resnest {

template <typename T, int V>
__global__ void split_attention_weighted_sum_kernel(const __grid_constant__ RadixRows<T> u,
                                                    const float* __restrict__ attn, T* __restrict__ y, int hw,
                                                    int radix, int c, long long total, L2Prefetch next) {
    prefetch_l2_across_grid(next);
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, HW, C/V)
    if (i >= total) return;
    const int groups = c / V;
    const int ch = (int)(i % groups) * V;
    const long long np = i / groups;  // n * hw + p
    const long long n = np / hw;
    const long long at = np * u.row + ch;  // channels ch .. ch + V - 1 of position p, in every split
    const float* a = attn + n * radix * (long long)c + ch;
    float sum[V];
    for (int k = 0; k < V; k++) sum[k] = 0.0f;
    for (int r = 0; r < radix; r++) {
        float uv[V], av[V];
        load_readonly_as_floats<V>(u.split[r] + at, uv);
        load_floats<V>(&a[(long long)r * c], av);
        for (int k = 0; k < V; k++) sum[k] += av[k] * uv[k];
    }
    store_from_floats<V>(&y[i * V], sum);
}

static_assert(kMaxCombineRadix <= kSplitAttentionMaxRadix, "the pooled kernel's slots index RadixRows::split");

// kRadix: the radix fixed at compile time (2, ResNeSt's: 16 weight registers a thread instead of 64), or 0
// for any radix up to kMaxCombineRadix.
template <typename T, int V, int kRadix>
__global__ void split_attention_weighted_sum_avg_pool_kernel(const __grid_constant__ RadixRows<T> u,
                                                             const float* __restrict__ attn, T* __restrict__ y,
                                                             int radix, Pool2dShape s, long long total,
                                                             L2Prefetch next) {
    prefetch_l2_across_grid(next);
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
    const long long image = n * s.in_h * s.in_w;  // image n's first position, n * HW
    float sum[V];
    for (int k = 0; k < V; k++) sum[k] = 0.0f;
    for (int iy = w.y0; iy < w.y1; iy++)
        for (int ix = w.x0; ix < w.x1; ix++) {
            const long long at = (image + (long long)iy * s.in_w + ix) * u.row + ch;  // in every split
            for (int r = 0; r < kSlots; r++)
                if (r < radix) {
                    float uv[V];
                    load_readonly_as_floats<V>(u.split[r] + at, uv);
                    for (int k = 0; k < V; k++) sum[k] += weight[r][k] * uv[k];
                }
        }
    for (int k = 0; k < V; k++) sum[k] /= (float)w.divisor;
    store_from_floats<V>(&y[i * V], sum);
}

// Whether the 16-byte kernels take u and y: C whole vectors, every split's rows and y 16-byte aligned.
template <typename T>
static bool weighted_sum_vectorised(const RadixRows<T>& u, const float* attn, const T* y, int radix, int c) {
    // The gates load as float4s too (load_floats): an offset view of them takes the scalar kernel.
    return c % kVec16<T> == 0 && radix_rows_aligned(u, radix, 16) && aligned16(attn) && aligned16(y);
}

template <typename T>
void split_attention_weighted_sum(const RadixRows<T>& u, const float* attn, T* y, int n, int hw, int radix, int c,
                                  KernelStream stream, const L2Prefetch& next) {
    radix_rows_check_radix("split_attention_weighted_sum", radix);
    const long long cells = (long long)n * hw;
    const L2Prefetch ask = l2_prefetch_for(next, stream);
    if (weighted_sum_vectorised(u, attn, y, radix, c)) {
        long long total = cells * (c / kVec16<T>);
        launch_kernel("split_attention_weighted_sum", split_attention_weighted_sum_kernel<T, kVec16<T>>,
                      ceil_div(total, 256), 256, 0, stream, u, attn, y, hw, radix, c, total, ask);
    } else {
        long long total = cells * c;
        launch_kernel("split_attention_weighted_sum", split_attention_weighted_sum_kernel<T, 1>, ceil_div(total, 256),
                      256, 0, stream, u, attn, y, hw, radix, c, total, ask);
    }
}

template <typename T, int V>
static void launch_weighted_sum_avg_pool(const RadixRows<T>& u, const float* attn, T* y, int radix,
                                         const Pool2dShape& pool, long long total, KernelStream stream,
                                         const L2Prefetch& next) {
    launch_kernel("split_attention_weighted_sum_avg_pool",
                  radix == 2 ? split_attention_weighted_sum_avg_pool_kernel<T, V, 2>
                             : split_attention_weighted_sum_avg_pool_kernel<T, V, 0>,
                  ceil_div(total, 256), 256, 0, stream, u, attn, y, radix, pool, total, next);
}

template <typename T>
void split_attention_weighted_sum_avg_pool(const RadixRows<T>& u, const float* attn, T* y, int radix,
                                           const Pool2dShape& pool, KernelStream stream, const L2Prefetch& next) {
    radix_rows_check_radix("split_attention_weighted_sum_avg_pool", radix);
    const long long cells = (long long)pool.n * pool.out_h * pool.out_w;
    const L2Prefetch ask = l2_prefetch_for(next, stream);
    if (weighted_sum_vectorised(u, attn, y, radix, pool.channels))
        launch_weighted_sum_avg_pool<T, kVec16<T>>(u, attn, y, radix, pool, cells * (pool.channels / kVec16<T>),
                                                   stream, ask);
    else
        launch_weighted_sum_avg_pool<T, 1>(u, attn, y, radix, pool, cells * pool.channels, stream, ask);
}

template void split_attention_weighted_sum<float>(const RadixRows<float>&, const float*, float*, int, int, int, int,
                                                 KernelStream, const L2Prefetch&);
template void split_attention_weighted_sum<__half>(const RadixRows<__half>&, const float*, __half*, int, int, int, int,
                                                   KernelStream, const L2Prefetch&);
template void split_attention_weighted_sum_avg_pool<float>(const RadixRows<float>&, const float*, float*, int,
                                                           const Pool2dShape&, KernelStream, const L2Prefetch&);
template void split_attention_weighted_sum_avg_pool<__half>(const RadixRows<__half>&, const float*, __half*, int,
                                                            const Pool2dShape&, KernelStream, const L2Prefetch&);

}  // namespace resnest
