// kernel_common.cuh: what every kernel in kernels/ shares: element conversion between the storage types
// (float, __half) and float arithmetic, and the launch-error check the launchers end with.
//
// Activations are NHWC in the storage type T (float for fp32/tf32, __half for fp16); all arithmetic is
// float. Every launcher is a plain function taking device pointers and a KernelStream (kernel_stream.h);
// it launches through launch_kernel() and throws resnest::Error (naming the kernel) when the launch fails.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>

#include "kernel_stream.h"
#include "weight_slice.h"

namespace resnest {

__device__ __forceinline__ float load_as_float(const float* p) { return *p; }
__device__ __forceinline__ float load_as_float(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ void store_from_float(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_from_float(__half* p, float v) { *p = __float2half_rn(v); }

// 16-byte accesses (8 halves or 4 floats), converted to and from float: the vectorised kernels take a
// channel group of kVec16<T> elements per thread when the channel count is a multiple of it (every offset
// is then a multiple of 16 bytes; buffers start 64-byte aligned).
template <typename T>
constexpr int kVec16 = 16 / (int)sizeof(T);

// Whether a launcher may hand p to 16-byte accesses. The engine's buffers always are (64-byte arena
// offsets); a caller passing a view into a tensor may not be, and then gets the one-element kernel.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ReLU as the CPU oracle's (relu_inplace): NaN stays NaN, so that a NaN read upstream is not hidden as 0
// (fmaxf(NaN, 0) is 0).
__device__ __forceinline__ float relu_keeping_nan(float v) { return v > 0.0f ? v : (v != v ? v : 0.0f); }

__device__ __forceinline__ void floats4_to_float(float4 q, float* v) { v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w; }
__device__ __forceinline__ void load16_as_float(const float* p, float* v) {
    floats4_to_float(*reinterpret_cast<const float4*>(p), v);
}
__device__ __forceinline__ void halves8_to_float(uint4 raw, float* v) {
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
    for (int k = 0; k < 4; k++) {
        float2 f = __half22float2(h[k]);
        v[2 * k] = f.x, v[2 * k + 1] = f.y;
    }
}
__device__ __forceinline__ void load16_as_float(const __half* p, float* v) {
    halves8_to_float(*reinterpret_cast<const uint4*>(p), v);
}
__device__ __forceinline__ void store16_from_float(float* p, const float* v) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store16_from_float(__half* p, const float* v) {
    uint4 raw;
    __half2* h = reinterpret_cast<__half2*>(&raw);
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
}

// V consecutive elements as float: V = 1 (any alignment) or kVec16<T> (16-byte aligned).
template <int V, typename T>
__device__ __forceinline__ void load_as_floats(const T* p, float* v) {
    if constexpr (V == 1)
        v[0] = load_as_float(p);
    else
        load16_as_float(p, v);
}
template <int V, typename T>
__device__ __forceinline__ void store_from_floats(T* p, const float* v) {
    if constexpr (V == 1)
        store_from_float(p, v[0]);
    else
        store16_from_float(p, v);
}
// The same loads through the read-only path (ld.global.nc, as for a const __restrict__ kernel parameter):
// for an input the kernel never writes that it reaches through a launch-parameter struct (RadixRows,
// split_attention_rows.cuh), where no __restrict__ can say so. Only __ldg's volatile forms (float, the
// unsigned integers, float4, uint4 in sm_32_intrinsics.hpp): cuda_fp16.hpp's __half and __half2 forms are
// plain asm, which the "memory" clobber of the dependent-launch wait below does not keep after it. Halves
// therefore load as their bits.
__device__ __forceinline__ float load_readonly_as_float(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load_readonly_as_float(const __half* p) {
    return __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short*>(p))));
}
__device__ __forceinline__ float2 load_readonly_half2_as_float2(const __half* p) {  // 4-byte aligned
    const unsigned int bits = __ldg(reinterpret_cast<const unsigned int*>(p));  // p[0] in the low half
    return make_float2(__half2float(__ushort_as_half((unsigned short)(bits & 0xffffu))),
                       __half2float(__ushort_as_half((unsigned short)(bits >> 16))));
}
__device__ __forceinline__ void load16_readonly_as_float(const float* p, float* v) {
    floats4_to_float(__ldg(reinterpret_cast<const float4*>(p)), v);
}
__device__ __forceinline__ void load16_readonly_as_float(const __half* p, float* v) {
    halves8_to_float(__ldg(reinterpret_cast<const uint4*>(p)), v);
}
template <int V, typename T>
__device__ __forceinline__ void load_readonly_as_floats(const T* p, float* v) {
    if constexpr (V == 1)
        v[0] = load_readonly_as_float(p);
    else
        load16_readonly_as_float(p, v);
}
// V consecutive floats (V = 1, 4 or 8; 16-byte aligned when V > 1).
template <int V>
__device__ __forceinline__ void load_floats(const float* p, float* v) {
    if constexpr (V == 1)
        v[0] = *p;
    else
        for (int k = 0; k < V; k += 4) load16_as_float(p + k, v + k);
}

// Programmatic dependent launch, the kernel's side: every kernel here calls this first, in every thread,
// before it reads or writes global memory (asking L2 for its weights, prefetch_l2_run below, may come
// before it). It waits until the grid this one depends on has completed and
// its writes are visible (transitively: that grid waited for its own predecessor the same way, or was
// launched only after it finished), then lets the next kernel in the stream begin launching; its blocks
// wait in the same prologue. Both instructions are no-ops for an ordinary launch. The wait is the
// instruction cudaGridDependencySynchronize() emits (CUDA 13's cuda_device_runtime_api.h), with the same
// "memory" clobber, so the compiler moves no load or store above it.
__device__ __forceinline__ void wait_for_producer_then_release_consumer() {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Asynchronous copies (sm_80 and later), for the kernels that stage tiles in shared memory: 16 bytes global
// -> shared without a register round trip, zeros when !valid (the source is then not read); a commit closes
// the group of copies issued since the last one, and the waits block until all groups but the newest, or
// all, have landed. Each is a compiler memory barrier ("memory"), so no shared-memory access moves across
// a copy or a wait even where no __syncthreads follows.
__device__ __forceinline__ void copy16_async(void* smem, const void* gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void copy_wait_all_but_newest() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
__device__ __forceinline__ void copy_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Weights into L2 ahead of their loads. No kernel writes weights, so a kernel may ask for its share before
// wait_for_producer_then_release_consumer() (when KernelStream::prefetch_weights says so): a dependent
// launch's blocks start while the kernel before them still runs, and the fetch from memory overlaps that
// kernel; an ordinary launch still has every line in flight at once, where a K loop of two stages keeps one
// step's. Only a hint: the loads that follow read the same bytes whatever it does. On sm_90 a run that is
// 16-byte aligned and whole 16 bytes goes as bulk prefetches (cp.async.bulk.prefetch.L2) of up to 4 KiB;
// otherwise one prefetch per 128-byte line, the first line holding the run's first byte (device
// allocations are 256-byte aligned, so that line is the allocation's).
constexpr long long kPrefetchBulkBytes = 4096;
__device__ __forceinline__ void prefetch_l2_run(const void* p, long long bytes) {
    const char* c = static_cast<const char*>(p);
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
    if ((uintptr_t)c % 16 == 0 && bytes % 16 == 0) {
        for (long long off = 0; off < bytes; off += kPrefetchBulkBytes) {
            const unsigned size = (unsigned)(bytes - off < kPrefetchBulkBytes ? bytes - off : kPrefetchBulkBytes);
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(__cvta_generic_to_global(c + off)),
                         "r"(size)
                         : "memory");
        }
        return;
    }
#endif
    for (const char* line = c - (uintptr_t)c % 128; line < c + bytes; line += 128)
        asm volatile("prefetch.L2 [%0];" ::"l"(line));
}
// The runs of slice `s` of the T elements at w, one run a thread: this thread is `lane` of `lanes`.
template <typename T>
__device__ __forceinline__ void prefetch_l2_rows(const T* w, const WeightSlice& s, int lane, int lanes) {
    for (int r = lane; r < s.rows; r += lanes)
        prefetch_l2_run(w + s.first + (long long)r * s.pitch, s.row_elems * (long long)sizeof(T));
}

// The runs of `next` asked for by the whole grid, a kPrefetchBulkBytes piece a thread, grid-stride over
// blockIdx.x and threadIdx.x (a block of more rows calls it from one row): how a kernel fetches the weights
// of the library calls after it (cuBLASLt or cuDNN convolutions, cuBLAS's classifier, which cannot ask for
// their own) while it does its own work.
__device__ __forceinline__ void prefetch_l2_across_grid(const L2Prefetch& next) {
    const long long first = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * kPrefetchBulkBytes;
    const long long step = (long long)gridDim.x * blockDim.x * kPrefetchBulkBytes;
    for (int r = 0; r < kL2PrefetchRanges && next.ptr[r]; r++) {
        const char* c = static_cast<const char*>(next.ptr[r]);
        for (long long at = first; at < next.bytes[r]; at += step)
            prefetch_l2_run(c + at, next.bytes[r] - at < kPrefetchBulkBytes ? next.bytes[r] - at : kPrefetchBulkBytes);
    }
}
// `next` as a launcher passes it on: nothing when the stream says not to prefetch.
inline L2Prefetch l2_prefetch_for(const L2Prefetch& next, const KernelStream& stream) {
    return stream.prefetch_weights ? next : L2Prefetch{};
}

// Throws resnest::Error naming `kernel` when `launched` (what the launch returned) or the last error says
// the launch failed (bad configuration, no device, unsupported attribute).
void check_kernel_launch(const char* kernel, cudaError_t launched = cudaSuccess);

// kernel<<<grid, block, smem, s.stream>>>(args...) through cudaLaunchKernelEx, as a programmatic dependent
// launch when s.dependent_launch (the kernel must begin with wait_for_producer_then_release_consumer()).
// A grid without blocks (a zero count: nothing to compute) launches nothing, rather than failing as an
// invalid configuration (which would read as a refused dependent launch).
template <typename... Params, typename... Args>
void launch_kernel(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, KernelStream s,
                   Args&&... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = s.stream;
    config.attrs = s.dependent_launch ? attr : nullptr;
    config.numAttrs = s.dependent_launch ? 1 : 0;
    check_kernel_launch(name, cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

}  // namespace resnest
