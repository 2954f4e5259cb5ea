// channel_affine.cu: one thread per element; the channel is the index mod C (channels are innermost).
#include "channel_affine.cuh"

#include "kernel_common.cuh"
#include "resnest/error.h"

namespace resnest {

template <typename T>
__global__ void channel_affine_activation_kernel(const T* x, const float* __restrict__ scale,
                                                 const float* __restrict__ shift, const T* z, T* y, long long count,
                                                 int channels, bool relu) {
    wait_for_producer_then_release_consumer();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= count) return;
    int c = (int)(i % channels);
    float v = load_as_float(&x[i]);
    if (scale) v *= scale[c];
    if (shift) v += shift[c];
    if (z) v += load_as_float(&z[i]);
    if (relu) v = relu_keeping_nan(v);
    store_from_float(&y[i], v);
}

template <typename T>
void channel_affine_activation(const T* x, const float* scale, const float* shift, const T* z, T* y, long long count,
                               int channels, bool relu, KernelStream stream) {
    if (count > 0 && (channels <= 0 || count % channels != 0))
        throw Error("channel_affine_activation: " + std::to_string(count) + " elements are not whole rows of " +
                    std::to_string(channels) + " channels");
    launch_kernel("channel_affine_activation", channel_affine_activation_kernel<T>, ceil_div(count, 256), 256, 0,
                  stream, x, scale, shift, z, y, count, channels, relu);
}

template void channel_affine_activation<float>(const float*, const float*, const float*, const float*, float*,
                                               long long, int, bool, KernelStream);
template void channel_affine_activation<__half>(const __half*, const float*, const float*, const __half*, __half*,
                                                long long, int, bool, KernelStream);

}  // namespace resnest
