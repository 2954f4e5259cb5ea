// npy.cpp: reads and writes numpy .npy files holding float32, little-endian, C-order arrays.
//
// File layout: "\x93NUMPY", major and minor version bytes, header length (2 bytes LE for 1.0, 4 bytes LE for
// 2.0 and 3.0), then the header: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n', then the raw data.
#include "npy.h"

#include <sys/stat.h>  // fstat, S_ISREG

#include <algorithm>  // std::min
#include <cctype>     // std::isdigit, std::isspace
#include <cerrno>     // errno
#include <cstdio>     // std::fopen, std::fread, std::fwrite, std::fclose, std::remove
#include <cstring>    // std::memcmp, std::strerror
#include <limits>     // std::numeric_limits
#include <utility>    // std::pair

#include "graph.h"          // resnest::kMaxTensorElements
#include "resnest/error.h"  // resnest::Error

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.cpp reads and writes '<f4' data as raw host floats: it needs a little-endian host"
#endif

namespace resnest {

namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

std::string shape_text(const std::vector<int64_t>& shape) {
    // Python's tuple repr: (), (3,), (2, 3)
    std::string text = "(";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) text += ", ";
        text += std::to_string(shape[i]);
    }
    if (shape.size() == 1) text += ",";
    return text + ")";
}

// A file read front to back (it may be a pipe), counting the bytes it has delivered.
class InputFile {
  public:
    explicit InputFile(const std::string& path) : path_(path) {
        file_ = std::fopen(path.c_str(), "rb");
        if (!file_) {
            int error = errno;
            if (error == ENOENT) fail(path, "file does not exist");
            fail(path, std::string("cannot open: ") + std::strerror(error));
        }
    }
    ~InputFile() { std::fclose(file_); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    // Reads up to `count` bytes; fewer only at the end of the file.
    size_t read(void* out, size_t count) {
        size_t got = std::fread(out, 1, count, file_);
        if (got < count && std::ferror(file_)) fail(path_, std::string("read failed: ") + std::strerror(errno));
        consumed_ += got;
        return got;
    }
    // Reads and drops the rest of the file; returns how many bytes that was.
    uint64_t skip_rest() {
        uint8_t chunk[65536];
        uint64_t skipped = 0;
        size_t got = 0;
        while ((got = read(chunk, sizeof chunk)) > 0) skipped += got;
        return skipped;
    }
    uint64_t consumed() const { return consumed_; }
    // The bytes left to read when the file is a regular file, else -1.
    int64_t regular_bytes_left() const {
        struct stat info;
        if (::fstat(fileno(file_), &info) != 0 || !S_ISREG(info.st_mode)) return -1;
        return info.st_size - static_cast<int64_t>(consumed_);
    }

  private:
    std::string path_;
    FILE* file_ = nullptr;
    uint64_t consumed_ = 0;
};

// ---- header dict parsing ----

// The value of one header key: a string, a boolean or a tuple of integers.
struct HeaderValue {
    enum class Kind { string, boolean, tuple } kind = Kind::string;
    std::string text;
    bool flag = false;
    std::vector<int64_t> dims;
};

// A hand-written reader for the subset of Python literals numpy writes in the header.
class HeaderParser {
  public:
    HeaderParser(const std::string& path, const std::string& text) : path_(path), text_(text) {}

    // The dict's entries in order.
    std::vector<std::pair<std::string, HeaderValue>> parse_dict() {
        std::vector<std::pair<std::string, HeaderValue>> items;
        skip_spaces();
        expect('{');
        while (true) {
            skip_spaces();
            if (peek() == '}') break;
            std::string key = parse_string();
            skip_spaces();
            expect(':');
            skip_spaces();
            items.emplace_back(key, parse_value(key));
            skip_spaces();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() != '}') malformed("expected ',' or '}' after the value of '" + key + "'");
        }
        ++pos_;
        skip_spaces();
        if (pos_ != text_.size()) malformed("unexpected text after the closing '}'");
        return items;
    }

  private:
    [[noreturn]] void malformed(const std::string& what) const {
        fail(path_, "malformed .npy header at character " + std::to_string(pos_) + ": " + what + " (header: " +
                        header_excerpt() + ")");
    }

    // The header as it can be shown in a message: padding trimmed, other bytes than printable ASCII as '?'.
    std::string header_excerpt() const {
        const size_t max_chars = 200;
        size_t end = text_.find_last_not_of(" \n");
        size_t length = end == std::string::npos ? 0 : end + 1;
        std::string excerpt;
        for (size_t i = 0; i < length && i < max_chars; ++i) {
            unsigned char c = static_cast<unsigned char>(text_[i]);
            excerpt += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
        }
        if (length > max_chars) excerpt += "...";
        return excerpt;
    }

    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

    void skip_spaces() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }

    void expect(char c) {
        if (peek() != c) malformed(std::string("expected '") + c + "'");
        ++pos_;
    }

    bool match_word(const char* word) {
        size_t length = std::strlen(word);
        if (text_.compare(pos_, length, word) != 0) return false;
        pos_ += length;
        return true;
    }

    std::string parse_string() {
        char quote = peek();
        if (quote != '\'' && quote != '"') malformed("expected a quoted string");
        size_t start = ++pos_;
        while (pos_ < text_.size() && text_[pos_] != quote) {
            if (text_[pos_] == '\\') malformed("escape sequences are not supported in header strings");
            ++pos_;
        }
        if (pos_ >= text_.size()) malformed("unterminated string");
        return text_.substr(start, pos_++ - start);
    }

    int64_t parse_integer() {
        if (peek() == '-') malformed("shape dimensions must be non-negative");
        if (!std::isdigit(static_cast<unsigned char>(peek()))) malformed("expected an integer shape dimension");
        int64_t value = 0;
        while (std::isdigit(static_cast<unsigned char>(peek()))) {
            int digit = text_[pos_++] - '0';
            if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
                malformed("shape dimension does not fit in 64 bits");
            }
            value = value * 10 + digit;
        }
        if (peek() == 'L') ++pos_;  // Python 2 long suffix, as old numpy wrote it
        return value;
    }

    std::vector<int64_t> parse_tuple() {
        expect('(');
        std::vector<int64_t> dims;
        while (true) {
            skip_spaces();
            if (peek() == ')') break;
            if (dims.size() == kNpyMaxRank) malformed("shape has more than " + std::to_string(kNpyMaxRank) + " dimensions");
            dims.push_back(parse_integer());
            skip_spaces();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() != ')') malformed("expected ',' or ')' in the shape tuple");
            // "(3)" is the integer 3 in Python, not a tuple: a single element needs its comma.
            if (dims.size() == 1) malformed("a one-dimensional shape is written (n,), with the comma");
            break;
        }
        ++pos_;
        return dims;
    }

    HeaderValue parse_value(const std::string& key) {
        HeaderValue value;
        char c = peek();
        if (c == '\'' || c == '"') {
            value.kind = HeaderValue::Kind::string;
            value.text = parse_string();
        } else if (c == '(') {
            value.kind = HeaderValue::Kind::tuple;
            value.dims = parse_tuple();
        } else if (match_word("True")) {
            value.kind = HeaderValue::Kind::boolean;
            value.flag = true;
        } else if (match_word("False")) {
            value.kind = HeaderValue::Kind::boolean;
            value.flag = false;
        } else {
            malformed("unsupported value for '" + key + "' (expected a string, True/False or a tuple)");
        }
        return value;
    }

    const std::string& path_;
    const std::string& text_;
    size_t pos_ = 0;
};

struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
};

NpyHeader parse_header(const std::string& path, const std::string& text) {
    NpyHeader header;
    bool has_descr = false, has_order = false, has_shape = false;
    auto wrong_kind = [&path](const std::string& key, const char* expected) {
        fail(path, "malformed .npy header: '" + key + "' must be " + expected);
    };
    HeaderParser parser(path, text);
    for (const auto& item : parser.parse_dict()) {
        const std::string& key = item.first;
        const HeaderValue& value = item.second;
        bool* seen = nullptr;
        if (key == "descr") {
            if (value.kind != HeaderValue::Kind::string) wrong_kind(key, "a string such as '<f4'");
            header.descr = value.text;
            seen = &has_descr;
        } else if (key == "fortran_order") {
            if (value.kind != HeaderValue::Kind::boolean) wrong_kind(key, "True or False");
            header.fortran_order = value.flag;
            seen = &has_order;
        } else if (key == "shape") {
            if (value.kind != HeaderValue::Kind::tuple) wrong_kind(key, "a tuple of integers");
            header.shape = value.dims;
            seen = &has_shape;
        } else {
            fail(path, "malformed .npy header: unexpected key '" + key + "' (expected descr, fortran_order, shape)");
        }
        if (*seen) fail(path, "malformed .npy header: key '" + key + "' appears twice");
        *seen = true;
    }
    if (!has_descr) fail(path, "malformed .npy header: missing key 'descr'");
    if (!has_order) fail(path, "malformed .npy header: missing key 'fortran_order'");
    if (!has_shape) fail(path, "malformed .npy header: missing key 'shape'");
    return header;
}

// Reads the preamble (magic, version, header length) and returns the header text; the file is left at
// the first data byte.
std::string read_header_text(const std::string& path, InputFile& file) {
    uint8_t preamble[kMagicBytes + 2 + 4];
    size_t got = file.read(preamble, kMagicBytes + 2);
    if (got < kMagicBytes + 2 || std::memcmp(preamble, kMagic, kMagicBytes) != 0) {
        fail(path, "not a .npy file: it does not start with the magic \"\\x93NUMPY\" (write it with numpy.save)");
    }
    int major = preamble[6], minor = preamble[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        fail(path, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                       " (supported: 1.0, 2.0, 3.0)");
    }
    size_t length_bytes = major == 1 ? 2 : 4;
    if (file.read(preamble + kMagicBytes + 2, length_bytes) < length_bytes) {
        fail(path, "file is truncated inside the .npy preamble");
    }
    uint64_t header_bytes = 0;
    for (size_t i = length_bytes; i-- > 0;) header_bytes = (header_bytes << 8) | preamble[kMagicBytes + 2 + i];
    if (header_bytes > kNpyMaxHeaderBytes) {
        fail(path, ".npy header length " + std::to_string(header_bytes) + " exceeds the limit of " +
                       std::to_string(kNpyMaxHeaderBytes) + " bytes: the file is corrupt");
    }
    std::string text(header_bytes, '\0');
    if (file.read(&text[0], header_bytes) < header_bytes) {
        fail(path, ".npy header length " + std::to_string(header_bytes) + " is past the end of the file (" +
                       std::to_string(file.consumed()) + " bytes): the file is truncated");
    }
    return text;
}

uint64_t element_count(const std::string& path, const std::vector<int64_t>& shape) {
    for (int64_t size : shape) {
        if (size == 0) return 0;
    }
    uint64_t count = 1;
    for (int64_t size : shape) {
        // The byte count (count x 4) must fit in a signed 64-bit integer too.
        if (__builtin_mul_overflow(count, static_cast<uint64_t>(size), &count) ||
            count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / sizeof(float)) {
            fail(path, "shape " + shape_text(shape) + " has more elements than fit in 64 bits");
        }
    }
    return count;
}

std::string header_for(const std::vector<int64_t>& shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
    // Like numpy, leave room for the first dimension to grow to 21 digits so the header can be rewritten
    // in place, then pad so the data starts at a multiple of 64 bytes; the header ends in '\n'.
    if (!shape.empty()) dict.append(21 - std::to_string(shape[0]).size(), ' ');
    size_t unpadded = kMagicBytes + 2 + 2 + dict.size() + 1;
    dict.append(64 - unpadded % 64, ' ');
    return dict + "\n";
}

}  // namespace

NpyArray npy_read(const std::string& path) {
    InputFile file(path);
    NpyHeader header = parse_header(path, read_header_text(path, file));
    if (header.descr != "<f4") {
        fail(path, "dtype '" + header.descr +
                       "' is not supported: the runtime reads float32 ('<f4'); convert with arr.astype(numpy.float32)");
    }
    if (header.fortran_order) {
        fail(path,
             "array is stored in Fortran (column-major) order; the runtime reads C order: "
             "save numpy.ascontiguousarray(arr) instead");
    }
    uint64_t count = element_count(path, header.shape);
    if (count > static_cast<uint64_t>(kMaxTensorElements)) {
        fail(path, "shape " + shape_text(header.shape) + " has " + std::to_string(count) +
                       " elements, over the limit of " + std::to_string(kMaxTensorElements) + " for one tensor");
    }
    uint64_t expected = count * sizeof(float);
    // Read in chunks, growing the array with the bytes that arrive: a header that lies about the shape
    // costs no more memory than the file holds.
    NpyArray array;
    array.shape = header.shape;
    int64_t left = file.regular_bytes_left();
    if (left >= 0 && static_cast<uint64_t>(left) == expected) array.data.reserve(count);
    const uint64_t chunk_floats = 1u << 18;  // 1 MiB
    uint64_t have = 0;  // floats read
    while (have < count) {
        uint64_t want = std::min(chunk_floats, count - have);
        array.data.resize(have + want);
        size_t got = file.read(array.data.data() + have, want * sizeof(float));
        if (got < want * sizeof(float)) {
            fail(path, "shape " + shape_text(header.shape) + " of float32 needs " + std::to_string(expected) +
                           " data bytes but the file has " + std::to_string(have * sizeof(float) + got) +
                           ": the file is truncated");
        }
        have += want;
    }
    uint64_t trailing = file.skip_rest();
    if (trailing) {
        fail(path, "shape " + shape_text(header.shape) + " of float32 needs " + std::to_string(expected) +
                       " data bytes but the file has " + std::to_string(expected + trailing) + ": " +
                       std::to_string(trailing) + " trailing bytes after the array");
    }
    return array;
}

void npy_write(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
    if (shape.size() > kNpyMaxRank) fail(path, "cannot write a .npy array of rank " + std::to_string(shape.size()));
    for (int64_t size : shape) {
        if (size < 0) fail(path, "cannot write negative shape " + shape_text(shape));
    }
    uint64_t count = element_count(path, shape);
    if (count && !data) fail(path, "cannot write: data is null");

    std::string header = header_for(shape);
    uint8_t preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    preamble[8] = static_cast<uint8_t>(header.size() & 0xff);
    preamble[9] = static_cast<uint8_t>(header.size() >> 8);

    FILE* file = std::fopen(path.c_str(), "wb");
    if (!file) fail(path, std::string("cannot open for writing: ") + std::strerror(errno));
    bool ok = std::fwrite(preamble, 1, sizeof preamble, file) == sizeof preamble &&
              std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
              (count == 0 || std::fwrite(data, sizeof(float), count, file) == count);
    int error = errno;
    if (std::fclose(file) != 0 && ok) {
        ok = false;
        error = errno;
    }
    if (!ok) {
        std::remove(path.c_str());
        fail(path, std::string("write failed: ") + std::strerror(error));
    }
}

}  // namespace resnest
