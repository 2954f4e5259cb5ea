// softmax_rows.cuh: softmax over each row of a (rows, cols) tensor, max-subtracted, float arithmetic.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"

namespace resnest {

template <typename T>
void softmax_rows_block_per_row(const T* x, T* y, int rows, int cols, KernelStream stream);

}  // namespace resnest
