// split_attention_combine.cu: one thread per output element (n, position, c), consecutive threads on
// consecutive channels: each reads its R values of U (coalesced per split) and R attention weights (cached)
// and writes one value. The pooled variant sums the window of the weighted sums before dividing.
#include "split_attention_combine.cuh"

#include "kernel_common.cuh"

namespace resnest {

template <typename T>
__global__ void split_attention_weighted_sum_kernel(const T* __restrict__ u, const float* __restrict__ attn,
                                                    T* __restrict__ y, int hw, int radix, int c, long long total) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, HW, C)
    if (i >= total) return;
    int ch = (int)(i % c);
    long long np = i / c;  // n * hw + p
    long long n = np / hw;
    const T* row = u + np * radix * (long long)c + ch;
    const float* a = attn + n * radix * (long long)c + ch;
    float sum = 0.0f;
    for (int r = 0; r < radix; r++) sum += a[(long long)r * c] * load_as_float(&row[(long long)r * c]);
    store_from_float(&y[i], sum);
}

template <typename T>
__global__ void split_attention_weighted_sum_avg_pool_kernel(const T* __restrict__ u, const float* __restrict__ attn,
                                                             T* __restrict__ y, int radix, Pool2dShape s,
                                                             long long total) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;  // index into y (N, OH, OW, C)
    if (i >= total) return;
    const int c = s.channels;
    int ch = (int)(i % c);
    long long rest = i / c;
    int ox = (int)(rest % s.out_w);
    rest /= s.out_w;
    int oy = (int)(rest % s.out_h);
    long long n = rest / s.out_h;
    int ys = oy * s.stride_h - s.pad_h, xs = ox * s.stride_w - s.pad_w;
    int y0 = max(ys, 0), y1 = min(ys + s.kernel_h, s.in_h);
    int x0 = max(xs, 0), x1 = min(xs + s.kernel_w, s.in_w);
    const long long rc = (long long)radix * c;
    const float* a = attn + n * rc + ch;
    float weight[kMaxCombineRadix];
    for (int r = 0; r < kMaxCombineRadix; r++) weight[r] = r < radix ? a[(long long)r * c] : 0.0f;
    const T* un = u + n * s.in_h * s.in_w * rc + ch;
    float sum = 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            const T* row = un + ((long long)iy * s.in_w + ix) * rc;
            for (int r = 0; r < kMaxCombineRadix; r++)
                if (r < radix) sum += weight[r] * load_as_float(&row[(long long)r * c]);
        }
    int divisor = s.count_include_pad
                      ? (min(ys + s.kernel_h, s.in_h + s.pad_h) - ys) * (min(xs + s.kernel_w, s.in_w + s.pad_w) - xs)
                      : (y1 - y0) * (x1 - x0);
    store_from_float(&y[i], sum / (float)divisor);
}

template <typename T>
void split_attention_weighted_sum(const T* u, const float* attn, T* y, int n, int hw, int radix, int c,
                                  cudaStream_t stream) {
    long long total = (long long)n * hw * c;
    split_attention_weighted_sum_kernel<T><<<ceil_div(total, 256), 256, 0, stream>>>(u, attn, y, hw, radix, c, total);
    check_kernel_launch("split_attention_weighted_sum");
}

template <typename T>
void split_attention_weighted_sum_avg_pool(const T* u, const float* attn, T* y, int radix, const Pool2dShape& pool,
                                           cudaStream_t stream) {
    long long total = (long long)pool.n * pool.out_h * pool.out_w * pool.channels;
    split_attention_weighted_sum_avg_pool_kernel<T>
        <<<ceil_div(total, 256), 256, 0, stream>>>(u, attn, y, radix, pool, total);
    check_kernel_launch("split_attention_weighted_sum_avg_pool");
}

template void split_attention_weighted_sum<float>(const float*, const float*, float*, int, int, int, int, cudaStream_t);
template void split_attention_weighted_sum<__half>(const __half*, const float*, __half*, int, int, int, int,
                                                   cudaStream_t);
template void split_attention_weighted_sum_avg_pool<float>(const float*, const float*, float*, int, const Pool2dShape&,
                                                           cudaStream_t);
template void split_attention_weighted_sum_avg_pool<__half>(const __half*, const float*, __half*, int,
                                                            const Pool2dShape&, cudaStream_t);

}  // namespace resnest
