// weight_layout.cpp: filter transposition and half conversion (see weight_layout.h).
#include "weight_layout.h"

#include "dtype.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace resnest {

std::vector<float> conv_weight_oihw_to_ohwi(const std::vector<float>& w, int out_channels, int in_per_group,
                                            int kernel_h, int kernel_w) {
    std::vector<float> out(w.size());
    const int64_t khw = (int64_t)kernel_h * kernel_w;
    for (int64_t o = 0; o < out_channels; o++)
        for (int64_t i = 0; i < in_per_group; i++)
            for (int64_t k = 0; k < khw; k++)
                out[(o * khw + k) * in_per_group + i] = w[(o * in_per_group + i) * khw + k];
    return out;
}

std::vector<float> conv_weight_grouped_to_dense(const std::vector<float>& w, int out_channels, int in_channels,
                                                int groups, int kernel_h, int kernel_w) {
    const int64_t khw = (int64_t)kernel_h * kernel_w, in_pg = in_channels / groups, out_pg = out_channels / groups;
    std::vector<float> dense((size_t)out_channels * in_channels * khw, 0.0f);
    for (int64_t o = 0; o < out_channels; o++) {
        int64_t g = o / out_pg;
        for (int64_t i = 0; i < in_pg; i++)
            for (int64_t k = 0; k < khw; k++)
                dense[(o * in_channels + g * in_pg + i) * khw + k] = w[(o * in_pg + i) * khw + k];
    }
    return dense;
}

std::vector<float> conv_weight_pad_in_channels(const std::vector<float>& w, int out_channels, int in_channels,
                                               int padded, int kernel_h, int kernel_w) {
    const int64_t khw = (int64_t)kernel_h * kernel_w;
    std::vector<float> out((size_t)out_channels * padded * khw, 0.0f);
    for (int64_t o = 0; o < out_channels; o++)
        for (int64_t i = 0; i < in_channels; i++)
            for (int64_t k = 0; k < khw; k++) out[(o * padded + i) * khw + k] = w[(o * in_channels + i) * khw + k];
    return out;
}

std::vector<uint16_t> floats_to_halves(const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    size_t i = 0;
#if defined(__F16C__)
    // Eight at a time in hardware (F16C, part of x86-64-v3): the same round-to-nearest-even, and the same
    // quieted NaN, as float_to_half (tests/unit/test_dtype.cpp compares the two bit for bit).
    for (; i + 8 <= v.size(); i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(&v[i]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[i]), h);
    }
#endif
    for (; i < v.size(); i++) out[i] = float_to_half(v[i]);
    return out;
}

}  // namespace resnest
