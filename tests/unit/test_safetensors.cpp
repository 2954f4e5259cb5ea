// test_safetensors.cpp: safetensors writer/reader round trip, and one test per malformed-file check.
// The malformed files are built byte by byte (8-byte length, JSON text, data) so each has exactly one defect.
#include <catch2/catch.hpp>


#include <cstring>     // std::memcmp
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <random>      // std::mt19937, std::random_device

#include "dtype.h"          // resnest::DType, float_to_half
#include "resnest/error.h"  // resnest::Error
#include "test_helpers.h"    // test::TempDir, test::write_bytes
#include "safetensors.h"    // resnest::SafetensorsFile, safetensors_write

using namespace resnest;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::write_bytes;

std::string le64(uint64_t value) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
    return bytes;
}

// A safetensors file: header length, header text, then `data_bytes` bytes of data (filled with 0xAB).
std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
    return le64(header.size()) + header + std::string(data_bytes, '\xab');
}

// Writes the file and opens it: the error cases expect this to throw.
std::shared_ptr<SafetensorsFile> open_raw(const std::string& path, const std::string& header, size_t data_bytes) {
    write_bytes(path, safetensors_bytes(header, data_bytes));
    return SafetensorsFile::open(path);
}

std::vector<uint8_t> random_f32_bytes(std::mt19937& rng, size_t count) {
    std::uniform_real_distribution<float> magnitude(0.5f, 2.0f);
    std::vector<float> values(count);
    for (float& v : values) v = (rng() & 1) ? magnitude(rng) : -magnitude(rng);
    std::vector<uint8_t> bytes(count * 4);
    if (count) std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
}

std::vector<uint8_t> random_f16_bytes(std::mt19937& rng, size_t count) {
    std::vector<uint8_t> f32 = random_f32_bytes(rng, count);
    std::vector<uint8_t> bytes(count * 2);
    for (size_t i = 0; i < count; ++i) {
        float value;
        std::memcpy(&value, f32.data() + 4 * i, 4);
        uint16_t half = float_to_half(value);
        std::memcpy(bytes.data() + 2 * i, &half, 2);
    }
    return bytes;
}

size_t element_count(const std::vector<int64_t>& shape) {
    size_t count = 1;
    for (int64_t size : shape) count *= static_cast<size_t>(size);
    return count;
}

const char* kF32x2x3 = R"({"dtype":"F32","shape":[2,3],"data_offsets":)";  // needs 24 bytes

}  // namespace

// ---- round trip ----

TEST_CASE("safetensors round trip keeps bytes, dtypes, shapes, order and metadata", "[safetensors]") {
    test::TempDir dir;
    std::random_device seed_source;
    uint32_t seed = seed_source();
    INFO("seed " << seed);
    std::mt19937 rng(seed);

    struct Spec {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
    };
    // Names deliberately out of sorted order: the file must keep the order they were given in.
    const std::vector<Spec> specs = {
        {"layer1.0.conv1.weight", DType::F32, {4, 3, 3, 3}},
        {"fc.bias", DType::F32, {10}},
        {"bn1.num_batches_tracked", DType::F32, {}},  // scalar
        {"empty", DType::F32, {0, 5}},                // zero-size
        {"half.weight", DType::F16, {3, 7}},
        {"conv1.0.weight", DType::F16, {5}},
        {"a.scalar_half", DType::F16, {}},
    };
    std::vector<std::vector<uint8_t>> payloads;
    std::vector<SafetensorsWriteTensor> tensors;
    for (const Spec& spec : specs) {
        size_t count = element_count(spec.shape);
        payloads.push_back(spec.dtype == DType::F32 ? random_f32_bytes(rng, count) : random_f16_bytes(rng, count));
    }
    for (size_t i = 0; i < specs.size(); ++i) {
        tensors.push_back({specs[i].name, specs[i].dtype, specs[i].shape, payloads[i].data()});
    }
    const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"source", "resnest-rt tests"}};
    const std::string path = dir.file("round_trip.safetensors");
    safetensors_write(path, tensors, metadata);

    auto file = SafetensorsFile::open(path);
    CHECK(file->path() == path);
    CHECK(file->metadata() == metadata);
    REQUIRE(file->tensors().size() == specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        const SafetensorsTensor& tensor = file->tensors()[i];
        CAPTURE(specs[i].name);
        CHECK(tensor.name == specs[i].name);
        CHECK(tensor.dtype == specs[i].dtype);
        CHECK(tensor.shape == specs[i].shape);
        REQUIRE(tensor.nbytes == payloads[i].size());
        if (tensor.nbytes) CHECK(std::memcmp(tensor.data, payloads[i].data(), payloads[i].size()) == 0);
        CHECK(file->find(specs[i].name) == &tensor);
    }
    CHECK(file->find("missing") == nullptr);
    CHECK(file->find("__metadata__") == nullptr);
}

TEST_CASE("safetensors writer pads the header to 8 bytes and packs the data", "[safetensors]") {
    test::TempDir dir;
    const float values[3] = {1.5f, -2.0f, 3.25f};
    const std::string path = dir.file("padded.safetensors");
    safetensors_write(path, {{"x", DType::F32, {3}, values}}, {{"k", "v"}});

    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() >= 8);
    uint64_t header_bytes = 0;
    for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | static_cast<uint8_t>(bytes[i]);
    CHECK(header_bytes % 8 == 0);
    CHECK(bytes.size() == 8 + header_bytes + sizeof values);
    std::string header = bytes.substr(8, header_bytes);
    // __metadata__ comes first, and padding is spaces only.
    CHECK(header.rfind(R"({"__metadata__":{"k":"v"},"x":)", 0) == 0);
    CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
    CHECK(std::memcmp(bytes.data() + 8 + header_bytes, values, sizeof values) == 0);
}

TEST_CASE("safetensors with no tensors and no data is legal", "[safetensors]") {
    test::TempDir dir;
    const std::string path = dir.file("empty.safetensors");
    safetensors_write(path, {});
    auto written = SafetensorsFile::open(path);
    CHECK(written->tensors().empty());
    CHECK(written->metadata().empty());

    auto raw = open_raw(dir.file("raw_empty.safetensors"), "{}", 0);
    CHECK(raw->tensors().empty());
}

TEST_CASE("safetensors reader accepts a header padded with spaces and zero-size tensors", "[safetensors]") {
    test::TempDir dir;
    std::string header = std::string(R"({"z":{"dtype":"F16","shape":[0,3],"data_offsets":[8,8]},)") +
                         R"("a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}     )";
    auto file = open_raw(dir.file("padded.safetensors"), header, 8);
    REQUIRE(file->tensors().size() == 2);
    CHECK(file->tensors()[0].name == "z");
    CHECK(file->tensors()[0].nbytes == 0);
    CHECK(file->tensors()[0].shape == std::vector<int64_t>{0, 3});
    CHECK(file->tensors()[1].dtype == DType::I64);
}

TEST_CASE("safetensors writer rejects duplicate names", "[safetensors][bad-input]") {
    test::TempDir dir;
    const float value = 1.0f;
    const std::string path = dir.file("dup.safetensors");
    REQUIRE_THROWS_WITH(safetensors_write(path, {{"w", DType::F32, {}, &value}, {"w", DType::F32, {}, &value}}),
                        Contains(path) && Contains("duplicate tensor name 'w'"));
}

TEST_CASE("safetensors writer rejects names that are not valid UTF-8", "[safetensors][bad-input]") {
    test::TempDir dir;
    const float value = 1.0f;
    const std::string path = dir.file("utf8.safetensors");
    REQUIRE_THROWS_WITH(safetensors_write(path, {{"bad\xff", DType::F32, {}, &value}}),
                        Contains(path) && Contains("not valid UTF-8"));
}

TEST_CASE("safetensors writer reports an unwritable path", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("no_such_dir/out.safetensors");
    REQUIRE_THROWS_WITH(safetensors_write(path, {}), Contains(path) && Contains("cannot open for writing"));
}

// ---- the file itself ----

TEST_CASE("safetensors: nonexistent file", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("missing.safetensors");
    REQUIRE_THROWS_AS(SafetensorsFile::open(path), Error);
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path), Contains(path) && Contains("does not exist"));
}

TEST_CASE("safetensors: a directory is not a weight file", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.path.string();
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path), Contains(path) && Contains("is not a regular file"));
}

TEST_CASE("safetensors: empty file", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("empty.safetensors");
    write_bytes(path, "");
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path),
                        Contains(path) && Contains("file is 0 bytes, shorter than the 8-byte header length"));
}

TEST_CASE("safetensors: file shorter than 8 bytes", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("short.safetensors");
    write_bytes(path, std::string("\x10\0\0\0\0", 5));
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path),
                        Contains(path) && Contains("file is 5 bytes, shorter than the 8-byte header length"));
}

// ---- header length ----

TEST_CASE("safetensors: header length 0", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("zero.safetensors");
    write_bytes(path, le64(0) + "{}");
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path), Contains(path) && Contains("header length is 0"));
}

TEST_CASE("safetensors: header length over the limit", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("huge.safetensors");
    write_bytes(path, le64(kSafetensorsMaxHeaderBytes + 1) + "{}");
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path),
                        Contains(path) && Contains("header length 100000001 exceeds the limit of 100000000 bytes"));
}

TEST_CASE("safetensors: header length past the end of the file", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("truncated.safetensors");
    write_bytes(path, le64(1000) + "{}");
    REQUIRE_THROWS_WITH(SafetensorsFile::open(path),
                        Contains(path) && Contains("header length 1000 is past the end of the file (10 bytes): "
                                                   "the file is truncated or not safetensors"));
}

// ---- the JSON ----

TEST_CASE("safetensors: header is not valid JSON", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("malformed.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, R"({"a": {"dtype": "F32",)", 0),
                        Contains(path) && Contains("header is not valid JSON"));
}

TEST_CASE("safetensors: header is not a JSON object", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("array.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, "[1, 2]", 0),
                        Contains(path) && Contains("header is an array, expected a JSON object"));
}

TEST_CASE("safetensors: tensor entry is not an object", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("entry.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": 5})", 0),
                        Contains(path) && Contains("tensor 'w': entry is an integer, expected an object"));
}

TEST_CASE("safetensors: missing dtype, shape or data_offsets", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("missing_field.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
                        Contains(path) && Contains("tensor 'w': missing 'dtype'"));
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
                        Contains("tensor 'w': missing 'shape'"));
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": "F32", "shape": [1]}})", 4),
                        Contains("tensor 'w': missing 'data_offsets'"));
}

TEST_CASE("safetensors: ill-typed dtype, shape or data_offsets", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("ill_typed.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4),
                        Contains(path) && Contains("tensor 'w': 'dtype' is an integer, expected a string"));
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4),
                        Contains("tensor 'w': 'shape' is an integer, expected a list of integers"));
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
                        Contains("tensor 'w': shape dimension 0 is a floating-point number, expected an integer"));
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}})", 4),
                        Contains("tensor 'w': 'data_offsets' is \"0-4\", expected [begin, end]"));
}

TEST_CASE("safetensors: unknown dtype", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("dtype.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, R"({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}})", 16),
                        Contains(path) && Contains("tensor 'w': unknown dtype 'F128'") &&
                            Contains("known dtypes: F64, F32, F16, BF16, I64") && Contains("F8_E5M2"));
}

TEST_CASE("safetensors: negative shape dimension", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("negative.safetensors");
    REQUIRE_THROWS_WITH(
        open_raw(path, R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 0]}})", 0),
        Contains(path) && Contains("tensor 'w': shape dimension 1 is -3: dimensions must be non-negative"));
}

TEST_CASE("safetensors: shape product overflows", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("overflow.safetensors");
    REQUIRE_THROWS_WITH(
        open_raw(path, R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})", 0),
        Contains(path) && Contains("tensor 'w': shape [4611686018427387904, 4] has more elements than fit in 64 bits"));
    REQUIRE_THROWS_WITH(
        open_raw(path, R"({"w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 0]}})", 0),
        Contains("tensor 'w': shape dimension 0 is 18446744073709551615, too large"));
}

TEST_CASE("safetensors: byte size overflows", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("bytes_overflow.safetensors");
    REQUIRE_THROWS_WITH(
        open_raw(path, R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0),
        Contains(path) && Contains("tensor 'w': shape [4611686018427387904] of F32 has a byte size that overflows"));
}

TEST_CASE("safetensors: data_offsets not two non-negative integers", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("offsets.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, std::string(R"({"w": )") + kF32x2x3 + "[24]}}", 24),
                        Contains(path) && Contains("tensor 'w': 'data_offsets' is [24], expected [begin, end]"));
    REQUIRE_THROWS_WITH(open_raw(path, std::string(R"({"w": )") + kF32x2x3 + "[0, 24, 48]}}", 48),
                        Contains("'data_offsets' is [0,24,48], expected [begin, end]"));
    REQUIRE_THROWS_WITH(open_raw(path, std::string(R"({"w": )") + kF32x2x3 + "[-8, 16]}}", 24),
                        Contains("tensor 'w': data_offsets begin is -8, expected a non-negative integer"));
    REQUIRE_THROWS_WITH(open_raw(path, std::string(R"({"w": )") + kF32x2x3 + "[0, 24.0]}}", 24),
                        Contains("tensor 'w': data_offsets end is 24.0, expected a non-negative integer"));
}

// ---- spans ----

TEST_CASE("safetensors: data_offsets reversed", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("weights.safetensors");
    std::string header = R"({"layer1.0.conv1.weight": {"dtype": "U8", "shape": [50], "data_offsets": [100, 50]}})";
    REQUIRE_THROWS_WITH(open_raw(path, header, 100),
                        Contains(path + ": tensor 'layer1.0.conv1.weight': data_offsets [100, 50) are reversed"));
}

TEST_CASE("safetensors: span size does not match the shape", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("mismatch.safetensors");
    REQUIRE_THROWS_WITH(
        open_raw(path, std::string(R"({"w": )") + kF32x2x3 + "[0, 20]}}", 20),
        Contains(path) && Contains("tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20) span 20"));
    // A zero-size tensor must have an empty span.
    REQUIRE_THROWS_WITH(open_raw(path, R"({"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 4]}})", 4),
                        Contains("tensor 'e': shape [0, 3] of F32 needs 0 bytes but data_offsets [0, 4) span 4"));
}

TEST_CASE("safetensors: span past the end of the data block", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("bounds.safetensors");
    REQUIRE_THROWS_WITH(open_raw(path, std::string(R"({"w": )") + kF32x2x3 + "[0, 24]}}", 16),
                        Contains(path) && Contains("tensor 'w': data_offsets [0, 24) run past the end of the data "
                                                   "block (16 bytes)"));
}

TEST_CASE("safetensors: overlapping spans", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("overlap.safetensors");
    std::string header = R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                         R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})";
    REQUIRE_THROWS_WITH(open_raw(path, header, 24),
                        Contains(path) && Contains("tensors 'a' [0, 16) and 'b' [8, 24) overlap"));
}

TEST_CASE("safetensors: a hole in the data block", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("hole.safetensors");
    std::string between = R"({"b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},)"
                          R"( "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
    REQUIRE_THROWS_WITH(open_raw(path, between, 24),
                        Contains(path) && Contains("data block bytes [8, 16) (between tensors 'a' and 'b') are not "
                                                   "covered by any tensor"));
    std::string before = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})";
    REQUIRE_THROWS_WITH(open_raw(path, before, 16),
                        Contains("data block bytes [0, 8) (before tensor 'a') are not covered by any tensor"));
}

TEST_CASE("safetensors: trailing bytes after the last tensor", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("trailing.safetensors");
    std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
    REQUIRE_THROWS_WITH(open_raw(path, header, 12),
                        Contains(path) && Contains("data block bytes [8, 12) (after the last tensor 'a') are not "
                                                   "covered by any tensor: trailing bytes"));
    REQUIRE_THROWS_WITH(open_raw(path, "{}", 4),
                        Contains("data block bytes [0, 4) (with no tensor in the header) are not covered"));
}

// ---- names and metadata ----

TEST_CASE("safetensors: duplicate tensor names", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("duplicate.safetensors");
    std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                         R"( "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})";
    REQUIRE_THROWS_WITH(open_raw(path, header, 16), Contains(path) && Contains("duplicate tensor name 'a'"));
    std::string field = R"({"a": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]}})";
    REQUIRE_THROWS_WITH(open_raw(path, field, 8), Contains("tensor 'a': key 'dtype' appears twice"));
    std::string meta = R"({"__metadata__": {"k": "1", "k": "2"}})";
    REQUIRE_THROWS_WITH(open_raw(path, meta, 0), Contains("__metadata__ key 'k' appears twice"));
}

TEST_CASE("safetensors: __metadata__ must map strings to strings", "[safetensors][bad-input]") {
    test::TempDir dir;
    const std::string path = dir.file("metadata.safetensors");
    REQUIRE_THROWS_WITH(
        open_raw(path, R"({"__metadata__": {"format": "pt", "epoch": 3}})", 0),
        Contains(path) && Contains("__metadata__ value for key 'epoch' is an integer, expected a string"));
    REQUIRE_THROWS_WITH(open_raw(path, R"({"__metadata__": ["pt"]})", 0),
                        Contains("__metadata__ is an array, expected an object of string keys to string values"));
}
