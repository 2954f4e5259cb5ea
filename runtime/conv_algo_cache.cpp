// conv_algo_cache.cpp: keys, file reading and appending for the convolution algorithm cache.
#include "conv_algo_cache.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>
#include <sys/stat.h>

namespace resnest {

namespace {

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return s;
}

}  // namespace

std::string op_algo_key(const ConvAlgoKeyParts& p, const std::string& op) {
    std::ostringstream k;
    k << "v1|" << one_line(p.device) << "|sm" << p.cc_major << p.cc_minor << "|cudnn" << p.cudnn_version << "|"
      << p.precision << "|n" << p.batch << "|" << one_line(op);
    return k.str();
}

std::string conv_algo_key(const ConvAlgoKeyParts& p) {
    std::ostringstream k;
    k << "c" << p.in_channels << "|" << p.in_h << "x" << p.in_w << "|k" << p.out_channels
      << "|" << p.kernel_h << "x" << p.kernel_w << "|s" << p.stride_h << "x" << p.stride_w << "|p" << p.pad_h
      << "x" << p.pad_w << "|d" << p.dilation_h << "x" << p.dilation_w << "|g" << p.groups << "|"
      << (p.fused_bias_relu ? "bias_relu" : "plain") << (p.residual ? "|z" : "") << (p.timed_search ? "|timed" : "");
    if (p.workspace_mib != 128) k << "|ws" << p.workspace_mib;
    return op_algo_key(p, k.str());
}

std::string conv_algo_cache_default_path() {
    const char* dir = std::getenv("RESNEST_CACHE_DIR");
    if (dir && *dir) return std::string(dir) + "/conv_algos.tsv";
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) return std::string(xdg) + "/resnest/conv_algos.tsv";
    const char* home = std::getenv("HOME");
    if (home && *home) return std::string(home) + "/.cache/resnest/conv_algos.tsv";
    return "";
}

std::string conv_algo_cache_path(const std::string& option) {
    if (option == "none") return "";
    return option.empty() ? conv_algo_cache_default_path() : option;
}

std::string bytes_to_hex(const void* data, size_t bytes) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char* p = (const unsigned char*)data;
    std::string hex(2 * bytes, '0');
    for (size_t i = 0; i < bytes; i++) hex[2 * i] = digits[p[i] >> 4], hex[2 * i + 1] = digits[p[i] & 15];
    return hex;
}

bool hex_to_bytes(const std::string& hex, void* data, size_t bytes) {
    if (hex.size() != 2 * bytes) return false;
    auto nibble = [](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    unsigned char* p = (unsigned char*)data;
    for (size_t i = 0; i < bytes; i++) {
        const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        p[i] = (unsigned char)(hi * 16 + lo);
    }
    return true;
}

static uint32_t fnv1a32(const void* data, size_t bytes) {
    uint32_t h = 2166136261u;
    const unsigned char* p = (const unsigned char*)data;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

std::string bytes_to_checked_hex(const void* data, size_t bytes) {
    const uint32_t h = fnv1a32(data, bytes);
    const unsigned char tail[4] = {(unsigned char)(h >> 24), (unsigned char)(h >> 16), (unsigned char)(h >> 8),
                                   (unsigned char)h};
    return bytes_to_hex(data, bytes) + bytes_to_hex(tail, 4);
}

bool checked_hex_to_bytes(const std::string& hex, void* data, size_t bytes) {
    std::vector<unsigned char> all(bytes + 4);  // the bytes, then their hash (big-endian)
    if (!hex_to_bytes(hex, all.data(), all.size())) return false;
    const unsigned char* tail = all.data() + bytes;
    const uint32_t h = fnv1a32(all.data(), bytes);
    if (((uint32_t)tail[0] << 24 | (uint32_t)tail[1] << 16 | (uint32_t)tail[2] << 8 | tail[3]) != h) return false;
    std::memcpy(data, all.data(), bytes);
    return true;
}

namespace {

bool parse_line(const std::string& line, std::string* key, ConvAlgoChoice* c) {
    size_t t1 = line.find('\t');
    if (t1 == std::string::npos || t1 == 0) return false;
    *key = line.substr(0, t1);
    std::istringstream rest(line.substr(t1 + 1));
    long long algo, math, bytes;
    if (!(rest >> algo >> math >> bytes)) return false;
    std::string opaque, extra;
    if (rest >> opaque) {
        if (rest >> extra) return false;
        if (opaque.size() % 2 || opaque.size() > kMaxOpaqueHex) return false;
        std::string raw(opaque.size() / 2, '\0');
        if (!hex_to_bytes(opaque, &raw[0], raw.size())) return false;
    }
    if (algo < 0 || algo > kMaxCachedAlgo || math < 0 || math >= 1024 || bytes < 0 || bytes > (1ll << 40)) return false;
    c->algo = (int)algo;
    c->math_type = (int)math;
    c->workspace_bytes = bytes;
    c->opaque = opaque;
    return true;
}

// mkdir -p for the file's folder.
bool make_parent_dirs(const std::string& file) {
    for (size_t pos = file.find('/', 1); pos != std::string::npos; pos = file.find('/', pos + 1)) {
        std::string dir = file.substr(0, pos);
        if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
    return true;
}

}  // namespace

ConvAlgoCache::ConvAlgoCache(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) {
        writable_ = false;
        warning_ = path_ + ": is a folder, not an algorithm cache file: choices stay in memory; give a file path "
                   "(--algo-cache)";
        return;
    }
    std::ifstream f(path_);
    std::string line;
    while (f && std::getline(f, line)) {
        if (line.empty()) continue;
        std::string key;
        ConvAlgoChoice c;
        if (parse_line(line, &key, &c)) {
            choices_[key] = c;
            loaded_++;
        } else {
            skipped_++;
        }
    }
    if (skipped_) warning_ = path_ + ": skipped " + std::to_string(skipped_) + " malformed line(s)";
    if (skipped_ && !loaded_) {  // some other file (a graph, weights): never appended to
        writable_ = false;
        warning_ = path_ + ": not a resnest algorithm cache (none of its " + std::to_string(skipped_) +
                   " lines parse): choices stay in memory and the file is left as it is; give another --algo-cache";
    }
}

bool ConvAlgoCache::lookup(const std::string& key, ConvAlgoChoice* out) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = choices_.find(key);
    if (it == choices_.end()) return false;
    *out = it->second;
    return true;
}

void ConvAlgoCache::insert(const std::string& key, const ConvAlgoChoice& choice) {
    std::lock_guard<std::mutex> lock(mutex_);
    choices_[key] = choice;
    if (path_.empty() || !writable_) return;
    auto fail = [&](const std::string& why) {  // the first failure is printed, then the file is left alone
        writable_ = false;
        warning_ = path_ + ": " + why + "; the cache stays in memory";
        std::fprintf(stderr, "resnest: warning: %s\n", warning_.c_str());
    };
    if (!make_parent_dirs(path_)) return fail(std::string("cannot create its folder (") + std::strerror(errno) + ")");
    // One line, one write: another process appending to the same file cannot land inside it.
    std::string line = key + '\t' + std::to_string(choice.algo) + '\t' + std::to_string(choice.math_type) + '\t' +
                       std::to_string(choice.workspace_bytes);
    if (!choice.opaque.empty()) line += '\t' + choice.opaque;
    line += '\n';
    std::FILE* f = std::fopen(path_.c_str(), "a");
    if (!f) return fail(std::string("cannot open it for writing (") + std::strerror(errno) + ")");
    std::setvbuf(f, nullptr, _IOFBF, line.size());
    const bool written = std::fwrite(line.data(), 1, line.size(), f) == line.size();
    if (std::fclose(f) != 0 || !written) fail("cannot write it");
}

std::string ConvAlgoCache::last_warning() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return warning_;
}

}  // namespace resnest
