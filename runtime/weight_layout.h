// weight_layout.h: the host-side weight rearrangements the CUDA backend uploads: convolution filters from
// the file's (O, I, KH, KW) to NHWC filters (O, KH, KW, I), their dense and channel-padded forms, and float
// to IEEE half. Host code only.
#pragma once
#include <cstdint>
#include <vector>

namespace resnest {

// w (O, I, KH, KW) -> (O, KH, KW, I), I being the per-group input channels.
std::vector<float> conv_weight_oihw_to_ohwi(const std::vector<float>& w, int out_channels, int in_per_group,
                                            int kernel_h, int kernel_w);

// A grouped filter (O, I/G, KH, KW) as the equivalent dense filter (O, I, KH, KW): output channel o keeps its
// group's weights at input channels g*I/G .. (g+1)*I/G - 1 and zeros elsewhere. A dense convolution with it
// computes the grouped one with G times the arithmetic, which tensor cores can still make the faster choice.
std::vector<float> conv_weight_grouped_to_dense(const std::vector<float>& w, int out_channels, int in_channels,
                                                int groups, int kernel_h, int kernel_w);

// w (O, I, KH, KW) -> (O, padded, KH, KW), padded >= I: input channels I .. padded - 1 get zero weights, so
// the convolution of an input widened with zero channels computes the same sums (ungrouped filters).
std::vector<float> conv_weight_pad_in_channels(const std::vector<float>& w, int out_channels, int in_channels,
                                               int padded, int kernel_h, int kernel_w);

// Round-to-nearest-even float -> half bits.
std::vector<uint16_t> floats_to_halves(const std::vector<float>& v);

}  // namespace resnest
