// split_attention_rows.cuh: where split attention's kernels find their input U: one base pointer per
// radix split and one row stride, so that U may be a single tensor with the R splits interleaved in each
// position's row, or R separate tensors anywhere in the arena. Also the radix limit every split-attention
// kernel shares. Plain C++ (no device code), so host code can build these descriptions and test them.
#pragma once
#include <cstdint>
#include <string>

#include "resnest/error.h"

namespace resnest {

constexpr int kSplitAttentionMaxRadix = 8;  // R at most, in every split-attention kernel

// Split r of U's row for position p of image n starts at split[r] + (n*HW + p) * row (elements of T):
//   interleaved, one tensor (N, HW, R*C): split[r] = u + r*C, row = R*C
//   apart, R tensors (N, HW, C):           split[r] = u_r,     row = C
// Entries r >= R are null. Kernels take it as a `const __grid_constant__` launch parameter (72 bytes): split[r]
// with r known only at run time then reads the parameter in place (an ordinary by-value parameter would be
// copied to each thread's local memory), and they load U through kernel_common.cuh's load_readonly_*
// (ld.global.nc), since a pointer inside a struct carries no __restrict__.
template <typename T>
struct RadixRows {
    const T* split[kSplitAttentionMaxRadix];
    long long row;
};

// Throws unless 1 <= radix <= kSplitAttentionMaxRadix, naming `what` (a kernel or a constructor).
inline void radix_rows_check_radix(const char* what, int radix) {
    if (radix < 1 || radix > kSplitAttentionMaxRadix)
        throw Error(std::string(what) + ": radix " + std::to_string(radix) + " is outside 1.." +
                    std::to_string(kSplitAttentionMaxRadix));
}

// u (N, HW, R*C), radix-major channels (split r holds channels r*C .. r*C + C - 1).
template <typename T>
RadixRows<T> radix_rows_interleaved(const T* u, int radix, int c) {
    radix_rows_check_radix("radix_rows_interleaved", radix);
    RadixRows<T> rows{};
    for (int r = 0; r < kSplitAttentionMaxRadix; r++) rows.split[r] = r < radix ? u + (long long)r * c : nullptr;
    rows.row = (long long)radix * c;
    return rows;
}

// u[r] (N, HW, C) for r < R, each its own tensor.
template <typename T>
RadixRows<T> radix_rows_apart(const T* const* u, int radix, int c) {
    radix_rows_check_radix("radix_rows_apart", radix);
    RadixRows<T> rows{};
    for (int r = 0; r < kSplitAttentionMaxRadix; r++) rows.split[r] = r < radix ? u[r] : nullptr;
    rows.row = c;
    return rows;
}

// Whether u is radix_rows_interleaved(u.split[0], radix, c): one tensor whose rows hold the R splits side by
// side, so a load may cross from one split into the next (always true for radix 1).
template <typename T>
bool radix_rows_are_interleaved(const RadixRows<T>& u, int radix, int c) {
    if (u.row != (long long)radix * c) return false;
    for (int r = 1; r < radix; r++)
        if (u.split[r] != u.split[0] + (long long)r * c) return false;
    return true;
}

// Whether every split's rows start at a multiple of `bytes`: each split pointer and the row stride.
template <typename T>
bool radix_rows_aligned(const RadixRows<T>& u, int radix, int bytes) {
    if (u.row * (long long)sizeof(T) % bytes != 0) return false;
    for (int r = 0; r < radix; r++)
        if (reinterpret_cast<uintptr_t>(u.split[r]) % (uintptr_t)bytes != 0) return false;
    return true;
}

}  // namespace resnest
