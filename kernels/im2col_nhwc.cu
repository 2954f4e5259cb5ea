// im2col_nhwc.cu: the im2col gather (im2col_nhwc.cuh). One thread per V consecutive channels of one
// (output position, [group,] kh, kw) cell: V = 16 bytes' worth of T (8 halves, 4 floats) when a group's
// channel count allows it, else 1.
// Consecutive threads take consecutive channel groups of one cell, then the next cell of the same row, so
// both the reads (one input pixel's channels) and the writes (one row of cols) are contiguous. First, where
// given, the threads ask L2 for the matmul's filter, a 4 KiB piece each (grid-stride).
#include "im2col_nhwc.cuh"

#include <algorithm>
#include <cstdint>

#include "kernel_common.cuh"

namespace resnest {

template <typename T, int V>
__global__ void im2col_nhwc_kernel(const T* __restrict__ x, T* __restrict__ cols, Im2colShape s, L2Prefetch next) {
    prefetch_l2_across_grid(next);
    wait_for_producer_then_release_consumer();
    const int khw = s.kh * s.kw, group_c = s.c / s.groups;        // cells a window, channels a group
    const int vecs = group_c / V;                                 // V-channel vectors per (group, cell)
    const long long per_row = (long long)s.groups * khw * vecs;   // thread items per row of cols
    const long long total = s.rows() * per_row;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long row = i / per_row;
        const int in_row = (int)(i - row * per_row);
        const int group_cell = in_row / vecs;                     // g * KH*KW + cell
        const int g = group_cell / khw, cell = group_cell - g * khw;
        const int ci = g * group_c + (in_row - group_cell * vecs) * V;  // the input channel
        const int ky = cell / s.kw, kx = cell - ky * s.kw;
        const int ox = (int)(row % s.ow);
        const long long t = row / s.ow;
        const int oy = (int)(t % s.oh), b = (int)(t / s.oh);
        const int iy = oy * s.stride_h - s.pad_h + ky * s.dilation_h;
        const int ix = ox * s.stride_w - s.pad_w + kx * s.dilation_w;
        T* dst = cols + i * V;  // row * (KH*KW*C) + ((g * KH*KW + cell) * C/G + ci - g * C/G)
        const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
        const T* src = x + (((long long)b * s.h + iy) * s.w + ix) * s.c + ci;
        if constexpr (V * sizeof(T) == 16) {
            *reinterpret_cast<uint4*>(dst) = inside ? *reinterpret_cast<const uint4*>(src) : make_uint4(0, 0, 0, 0);
        } else {
            *dst = inside ? *src : T(0.0f);
        }
    }
}

template <typename T>
void im2col_nhwc(const T* x, T* cols, const Im2colShape& s, KernelStream stream, const L2Prefetch& next) {
    constexpr int kThreads = 256, kMaxBlocks = 132 * 16;
    // 16-byte accesses where C is whole vectors and both buffers are 16-byte aligned (a misaligned vector
    // access would be a device fault, not an error): else one element a thread.
    if (s.groups < 1 || s.c % s.groups != 0)
        throw Error("im2col_nhwc: " + std::to_string(s.c) + " channels do not split into " + std::to_string(s.groups) +
                    " groups");
    const bool vec = (s.c / s.groups) % kVec16<T> == 0 && aligned16(x) && aligned16(cols);
    const long long items = s.rows() * s.kh * s.kw * (vec ? s.c / kVec16<T> : s.c);
    if (items == 0) return;
    const int blocks = (int)std::min<long long>((items + kThreads - 1) / kThreads, kMaxBlocks);
    const L2Prefetch ask = l2_prefetch_for(next, stream);
    if (vec)
        launch_kernel("im2col_nhwc (16-byte)", im2col_nhwc_kernel<T, kVec16<T>>, blocks, kThreads, 0, stream, x, cols, s,
                      ask);
    else
        launch_kernel("im2col_nhwc", im2col_nhwc_kernel<T, 1>, blocks, kThreads, 0, stream, x, cols, s, ask);
}

template void im2col_nhwc<float>(const float*, float*, const Im2colShape&, KernelStream, const L2Prefetch&);
template void im2col_nhwc<__half>(const __half*, __half*, const Im2colShape&, KernelStream, const L2Prefetch&);

}  // namespace resnest
