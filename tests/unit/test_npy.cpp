// test_npy.cpp: .npy float32 reader/writer: round trip, numpy's exact byte layout, header variants, bad files.
// The hand-written files are byte for byte what numpy.save writes (checked once against numpy 1.24).
#include <catch2/catch.hpp>


#include <cstring>     // std::memcmp, std::memcpy
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream, std::ofstream
#include <random>      // std::mt19937, std::random_device

#include "npy.h"            // resnest::npy_read, npy_write
#include "resnest/error.h"  // resnest::Error
#include "test_helpers.h"    // test::TempDir, test::write_bytes

using namespace resnest;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::write_bytes;


std::string float_bytes(const std::vector<float>& values) {
    std::string bytes(values.size() * sizeof(float), '\0');
    if (!values.empty()) std::memcpy(&bytes[0], values.data(), bytes.size());
    return bytes;
}

const std::string kMagic = "\x93NUMPY";

// Format 1.0: magic, version 1.0, 2-byte little-endian header length, header.
std::string npy_v1(const std::string& header) {
    std::string length = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
    return kMagic + std::string("\x01\x00", 2) + length + header;
}

// Format 2.0 or 3.0: as 1.0 with a 4-byte header length.
std::string npy_v2(const std::string& header, char major = 2) {
    std::string length(4, '\0');
    for (int i = 0; i < 4; ++i) length[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return kMagic + std::string(1, major) + std::string(1, '\0') + length + header;
}

// numpy.save(f, numpy.arange(6, dtype=numpy.float32).reshape(2, 3)): a 118-byte header, data at byte 128.
const std::string kNumpyHeader2x3 =
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(58, ' ') + "\n";
const std::vector<float> kArange6 = {0, 1, 2, 3, 4, 5};

// The header numpy writes for an arbitrary dict text, padded to data at a multiple of 64 for format 1.0.
std::string padded_header(const std::string& dict) {
    std::string header = dict;
    header.append(64 - (10 + header.size() + 1) % 64, ' ');
    return header + "\n";
}

}  // namespace

TEST_CASE("npy round trip of random arrays of rank 0 to 4", "[npy]") {
    test::TempDir dir;
    std::random_device seed_source;
    uint32_t seed = seed_source();
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int64_t> dim(1, 6);
    std::uniform_real_distribution<float> value(-3.0f, 3.0f);

    std::vector<std::vector<int64_t>> shapes = {{}, {0}, {3, 0, 2}};
    for (int rank = 1; rank <= 4; ++rank) {
        for (int repeat = 0; repeat < 3; ++repeat) {
            std::vector<int64_t> shape;
            for (int i = 0; i < rank; ++i) shape.push_back(dim(rng));
            shapes.push_back(shape);
        }
    }
    for (const auto& shape : shapes) {
        size_t count = 1;
        for (int64_t size : shape) count *= static_cast<size_t>(size);
        std::vector<float> data(count);
        for (float& v : data) {
            v = value(rng);
            if (v == 0.0f) v = 1.0f;
        }
        const std::string path = dir.file("array.npy");
        npy_write(path, shape, data.data());
        NpyArray array = npy_read(path);
        CHECK(array.shape == shape);
        REQUIRE(array.data.size() == count);
        if (count) CHECK(std::memcmp(array.data.data(), data.data(), count * sizeof(float)) == 0);
        // Data starts at a multiple of 64, like numpy.
        std::string bytes = test::read_text(path);
        size_t header_length = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
        CHECK((10 + header_length) % 64 == 0);
        CHECK(bytes[10 + header_length - 1] == '\n');
    }
}

TEST_CASE("npy_write writes exactly the bytes numpy writes", "[npy]") {
    test::TempDir dir;
    const std::string path = dir.file("arange.npy");
    npy_write(path, {2, 3}, kArange6.data());
    CHECK(test::read_text(path) == npy_v1(kNumpyHeader2x3) + float_bytes(kArange6));

    // numpy.save of a 0-d array: no room left for a growing first axis.
    const float pi = 3.25f;
    npy_write(path, {}, &pi);
    std::string scalar_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }" + std::string(62, ' ') + "\n";
    CHECK(test::read_text(path) == npy_v1(scalar_header) + float_bytes({pi}));
}

TEST_CASE("npy_read parses a format 1.0 file as numpy writes it", "[npy]") {
    test::TempDir dir;
    const std::string path = dir.file("numpy_v1.npy");
    REQUIRE(kNumpyHeader2x3.size() == 118);
    write_bytes(path, npy_v1(kNumpyHeader2x3) + float_bytes(kArange6));
    NpyArray array = npy_read(path);
    CHECK(array.shape == std::vector<int64_t>{2, 3});
    CHECK(array.data == kArange6);
}

TEST_CASE("npy_read parses format 2.0 and 3.0 headers", "[npy]") {
    test::TempDir dir;
    const std::string path = dir.file("numpy_v2.npy");
    // numpy.lib.format.write_array(f, numpy.arange(6, dtype=numpy.float32), version=(2, 0)): data at byte 128.
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }" + std::string(58, ' ') + "\n";
    REQUIRE(12 + header.size() == 128);
    write_bytes(path, npy_v2(header, 2) + float_bytes(kArange6));
    NpyArray array = npy_read(path);
    CHECK(array.shape == std::vector<int64_t>{6});
    CHECK(array.data == kArange6);

    write_bytes(path, npy_v2(header, 3) + float_bytes(kArange6));
    CHECK(npy_read(path).data == kArange6);
}

TEST_CASE("npy_read tolerates header spelling variants", "[npy]") {
    test::TempDir dir;
    const std::string path = dir.file("variants.npy");
    const std::vector<std::string> dicts = {
        R"({"shape":(2,3),"descr":"<f4","fortran_order":False})",  // key order, double quotes, no spaces
        "{'descr':'<f4','fortran_order':False,'shape':(2,3,),}",   // trailing commas
        "  { 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 ) }  ",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",  // Python 2 longs
    };
    for (const std::string& dict : dicts) {
        CAPTURE(dict);
        write_bytes(path, npy_v1(dict) + float_bytes(kArange6));  // no padding, no newline: still fine
        NpyArray array = npy_read(path);
        CHECK(array.shape == std::vector<int64_t>{2, 3});
        CHECK(array.data == kArange6);
    }
    write_bytes(path,
                npy_v1(padded_header("{'descr': '<f4', 'fortran_order': False, 'shape': (), }")) + float_bytes({7.0f}));
    NpyArray scalar = npy_read(path);
    CHECK(scalar.shape.empty());
    CHECK(scalar.data == std::vector<float>{7.0f});
}

// ---- bad input ----

TEST_CASE("npy: nonexistent file", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("missing.npy");
    REQUIRE_THROWS_AS(npy_read(path), Error);
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("does not exist"));
}

TEST_CASE("npy: a directory is not an array file", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.path.string();
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("read failed: Is a directory"));
}

TEST_CASE("npy: bad magic", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("magic.npy");
    write_bytes(path, "PK\x03\x04 this is a zip file, perhaps an .npz");
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("not a .npy file"));
    write_bytes(path, "");
    REQUIRE_THROWS_WITH(npy_read(path), Contains("not a .npy file"));
}

TEST_CASE("npy: unsupported version", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("version.npy");
    write_bytes(path, npy_v2(padded_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }"), 4) +
                          float_bytes(kArange6));
    REQUIRE_THROWS_WITH(npy_read(path),
                        Contains(path) && Contains("unsupported .npy format version 4.0 (supported: 1.0, 2.0, 3.0)"));
}

TEST_CASE("npy: dtype other than float32", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("x.npy");
    write_bytes(path, npy_v1(padded_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }")) +
                          std::string(24, '\0'));
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path + ": dtype '<f8' is not supported: the runtime reads float32 "
                                                        "('<f4'); convert with arr.astype(numpy.float32)"));
    write_bytes(path, npy_v1(padded_header("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }")) +
                          std::string(12, '\0'));
    REQUIRE_THROWS_WITH(npy_read(path), Contains("dtype '>f4' is not supported") && Contains("astype"));
}

TEST_CASE("npy: fortran_order True", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("fortran.npy");
    write_bytes(path, npy_v1(padded_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }")) +
                          float_bytes(kArange6));
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("Fortran (column-major) order") &&
                                            Contains("numpy.ascontiguousarray"));
}

TEST_CASE("npy: truncated data", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("truncated.npy");
    write_bytes(path, npy_v1(kNumpyHeader2x3) + float_bytes({0, 1, 2, 3, 4}));
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("shape (2, 3) of float32 needs 24 data bytes but "
                                                                   "the file has 20: the file is truncated"));
}

TEST_CASE("npy: trailing data", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("trailing.npy");
    write_bytes(path, npy_v1(kNumpyHeader2x3) + float_bytes(kArange6) + "junk!");
    REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("needs 24 data bytes but the file has 29: "
                                                                   "5 trailing bytes after the array"));
}

TEST_CASE("npy: malformed header", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("header.npy");
    struct Case {
        std::string dict;
        const char* message;
    };
    const std::vector<Case> cases = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", "expected a quoted string"},
        {"'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
        {"{'descr': '<f4', 'shape': (2, 3)}", "missing key 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (2, 3)}", "missing key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", "unsupported value for 'extra'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': True}", "unexpected key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", "key 'descr' appears twice"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", "unsupported value for 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", "unsupported value for 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", "a one-dimensional shape is written (n,)"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}", "shape dimensions must be non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "expected ',' or ')' in the shape tuple"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}", "expected ',' or '}' after the value of 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", "unexpected text after the closing '}'"},
        {"{'descr': True, 'fortran_order': False, 'shape': (2, 3)}", "'descr' must be a string"},
        {"{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2, 3)}", "unsupported value for 'descr'"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}", "expected ':'"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.dict);
        write_bytes(path, npy_v1(c.dict + "\n") + float_bytes(kArange6));
        REQUIRE_THROWS_WITH(npy_read(path), Contains(path) && Contains("malformed .npy header") && Contains(c.message));
    }
}

TEST_CASE("npy: header length past the end or over the limit", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("length.npy");
    write_bytes(path, kMagic + std::string("\x01\x00\xff\x00", 4) + "{'descr': '<f4'");
    REQUIRE_THROWS_WITH(npy_read(path),
                        Contains(path) && Contains(".npy header length 255 is past the end of the file"));
    write_bytes(path, kMagic + std::string("\x02\x00\x00\x00\x00\x80", 6) + "{}");
    REQUIRE_THROWS_WITH(npy_read(path), Contains(".npy header length 2147483648 exceeds the limit of 1048576 bytes"));
    write_bytes(path, kMagic + std::string("\x02\x00\x10", 3));
    REQUIRE_THROWS_WITH(npy_read(path), Contains("truncated inside the .npy preamble"));
}

TEST_CASE("npy: shape too large", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("huge.npy");
    write_bytes(path, npy_v1(padded_header("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                           "(4611686018427387904, 4), }")));
    REQUIRE_THROWS_WITH(
        npy_read(path),
        Contains(path) && Contains("shape (4611686018427387904, 4) has more elements than fit in 64 bits"));
    write_bytes(path, npy_v1(padded_header("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                           "(99999999999999999999,), }")));
    REQUIRE_THROWS_WITH(npy_read(path), Contains("shape dimension does not fit in 64 bits"));
    std::string rank33 = "(";
    for (int i = 0; i < 33; ++i) rank33 += "1, ";
    write_bytes(path, npy_v1(padded_header("{'descr': '<f4', 'fortran_order': False, 'shape': " + rank33 + "), }")));
    REQUIRE_THROWS_WITH(npy_read(path), Contains("shape has more than 32 dimensions"));
}

TEST_CASE("npy_write reports an unwritable path", "[npy][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("no_such_dir/out.npy");
    REQUIRE_THROWS_WITH(npy_write(path, {2, 3}, kArange6.data()),
                        Contains(path) && Contains("cannot open for writing"));
}
