// split_attention_radix_softmax.cu: a thread per (image, channel) reads the channel's R logits (strided by C:
// consecutive threads read consecutive channels, coalesced), and writes their softmax (sigmoid for R = 1)
// back in place: the gate kernels' last step (split_attention_radix_softmax_math.cuh).
#include "split_attention_radix_softmax.cuh"

#include "kernel_common.cuh"
#include "split_attention_radix_softmax_math.cuh"
#include "split_attention_rows.cuh"

namespace resnest {

__global__ void split_attention_radix_softmax_kernel(float* __restrict__ attn, long long count, int radix,
                                                     int channels) {
    wait_for_producer_then_release_consumer();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // image * C + channel
    if (i >= count) return;
    const long long n = i / channels;
    float* z = attn + n * radix * channels + (i - n * channels);
    float v[kSplitAttentionMaxRadix];
#pragma unroll
    for (int r = 0; r < kSplitAttentionMaxRadix; r++)
        if (r < radix) v[r] = z[(long long)r * channels];
    radix_softmax_in_registers(v, radix);
#pragma unroll
    for (int r = 0; r < kSplitAttentionMaxRadix; r++)
        if (r < radix) z[(long long)r * channels] = v[r];
}

void split_attention_radix_softmax_thread_per_channel(float* attn, int n, int radix, int channels,
                                                      KernelStream stream) {
    radix_rows_check_radix("split_attention_radix_softmax_thread_per_channel", radix);
    const long long count = (long long)n * channels;
    if (count <= 0) return;
    constexpr int kThreads = 256;
    launch_kernel("split_attention_radix_softmax_thread_per_channel", split_attention_radix_softmax_kernel,
                  dim3((unsigned)ceil_div(count, kThreads)), dim3(kThreads), 0, stream, attn, count, radix, channels);
}

}  // namespace resnest
