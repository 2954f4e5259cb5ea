// cudnn_engine_choice.cpp: the cached form of a cuDNN graph engine configuration (see cudnn_engine_choice.h).
#include "cudnn_engine_choice.h"

#include "conv_algo_cache.h"

namespace resnest {

namespace {

constexpr int64_t kFormat = 1;

void put_word(std::string* bytes, int64_t v) {
    const uint64_t u = (uint64_t)v;
    for (int b = 0; b < 8; b++) bytes->push_back((char)((u >> (8 * b)) & 0xff));
}

int64_t get_word(const unsigned char* p) {
    uint64_t u = 0;
    for (int b = 7; b >= 0; b--) u = (u << 8) | p[b];
    return (int64_t)u;
}

}  // namespace

std::string encode_cudnn_engine_choice(const CudnnEngineChoice& c) {
    std::string bytes;
    put_word(&bytes, kFormat);
    put_word(&bytes, c.global_index);
    put_word(&bytes, (int64_t)c.knobs.size());
    for (const auto& k : c.knobs) {
        put_word(&bytes, k.first);
        put_word(&bytes, k.second);
    }
    return bytes_to_hex(bytes.data(), bytes.size());
}

bool decode_cudnn_engine_choice(const std::string& hex, CudnnEngineChoice* out) {
    if (hex.size() % 16 || hex.size() < 3 * 16 || hex.size() > (3 + 2 * (size_t)kMaxCudnnKnobs) * 16) return false;
    std::vector<unsigned char> bytes(hex.size() / 2);
    if (!hex_to_bytes(hex, bytes.data(), bytes.size())) return false;
    const size_t words = bytes.size() / 8;
    auto word = [&](size_t i) { return get_word(bytes.data() + 8 * i); };
    const int64_t count = word(2);
    if (word(0) != kFormat || word(1) < 0 || count < 0 || count > kMaxCudnnKnobs || words != 3 + 2 * (size_t)count)
        return false;
    CudnnEngineChoice c;
    c.global_index = word(1);
    for (int64_t k = 0; k < count; k++) {
        const int64_t type = word(3 + 2 * (size_t)k);
        if (type < 0 || type >= 1024) return false;
        c.knobs.emplace_back(type, word(4 + 2 * (size_t)k));
    }
    *out = std::move(c);
    return true;
}

}  // namespace resnest
