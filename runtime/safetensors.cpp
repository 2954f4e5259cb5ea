// safetensors.cpp: memory-mapped, fully validated safetensors reader, and the matching writer.
#include "safetensors.h"

#include <fcntl.h>     // open, O_RDONLY, O_CLOEXEC
#include <sys/mman.h>  // mmap, munmap
#include <sys/stat.h>  // fstat
#include <unistd.h>    // close

#include <algorithm>  // std::sort
#include <cerrno>     // errno
#include <cstdio>     // std::fopen, std::fwrite, std::fclose, std::remove
#include <cstring>    // std::strerror
#include <limits>     // std::numeric_limits
#include <set>        // std::set
#include <utility>    // std::move

#include <nlohmann/json.hpp>  // nlohmann::ordered_json

#include "json_bounded.h"     // resnest::JsonBoundedParser
#include "resnest/error.h"  // resnest::Error

namespace resnest {

namespace {

// The parsed header is a plain (key-sorted) json; the order of the tensors is taken from the parser's events.
using json = nlohmann::json;
// The writer's entries keep the format's key order: dtype, shape, data_offsets.
using ordered_json = nlohmann::ordered_json;

constexpr char kMetadataKey[] = "__metadata__";

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const std::string& what) {
    fail(path, "tensor '" + name + "': " + what);
}

// "an object", "a string", ... for messages about a JSON value of the wrong kind.
std::string json_kind(const json& value) {
    switch (value.type()) {
        case json::value_t::object: return "an object";
        case json::value_t::array: return "an array";
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::null: return "null";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a floating-point number";
        default: return "an unexpected JSON value";
    }
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + "]";
}

std::string span_text(uint64_t begin, uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// The text with control and non-ASCII bytes shown as '?', cut to a length that fits in a message: the
// parser's "last read" excerpt can hold any bytes of a corrupt header.
std::string printable_excerpt(const std::string& text) {
    const size_t max_chars = 300;
    std::string excerpt;
    for (size_t i = 0; i < text.size() && i < max_chars; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        excerpt += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
    if (text.size() > max_chars) excerpt += "...";
    return excerpt;
}

std::string known_dtype_names() {
    const DType all[] = {DType::F64, DType::F32, DType::F16,  DType::BF16,    DType::I64,
                         DType::I32, DType::I16, DType::I8,   DType::U64,     DType::U32,
                         DType::U16, DType::U8,  DType::BOOL, DType::F8_E4M3, DType::F8_E5M2};
    std::string names;
    for (DType dtype : all) {
        if (!names.empty()) names += ", ";
        names += dtype_name(dtype);
    }
    return names;
}

bool multiply_overflows(uint64_t a, uint64_t b, uint64_t* product) { return __builtin_mul_overflow(a, b, product); }

// ---- header parsing ----

[[noreturn]] void report_duplicate_key(const std::string& path, const JsonBoundedParser& parser) {
    const std::string& key = parser.duplicate_key();
    const std::string& owner = parser.duplicate_owner();
    if (owner.empty()) {
        if (key == kMetadataKey) fail(path, "'__metadata__' appears twice in the header");
        fail(path, "duplicate tensor name '" + key + "' in the header");
    }
    if (owner == kMetadataKey) fail(path, "__metadata__ key '" + key + "' appears twice");
    fail_tensor(path, owner, "key '" + key + "' appears twice in its entry");
}

// Parses the header text into `header` and returns its top-level keys in file order. The parser runs in
// linear time, refuses nesting past kSafetensorsMaxJsonDepth as it opens, and reports a key that appears
// twice in one object, which nlohmann's DOM would otherwise resolve silently.
std::vector<std::string> parse_header(const std::string& path, const char* text, size_t length, json* header_out) {
    JsonBoundedParser parser(kSafetensorsMaxJsonDepth, path + ": header JSON nesting depth exceeds the limit of " +
                                                           std::to_string(kSafetensorsMaxJsonDepth) + " levels");
    json header;
    try {
        header = parser.parse(text, text + length);
    } catch (const json::exception& e) {
        // A syntax error (parse_error) or a number too large for a double (out_of_range.406). e.what()
        // reads "[json.exception.parse_error.101] parse error at ...": keep the part after the tag.
        std::string detail = e.what();
        size_t tag_end = detail.find("] ");
        if (tag_end != std::string::npos) detail = detail.substr(tag_end + 2);
        fail(path, "header is not valid JSON (" + printable_excerpt(detail) + ")");
    }
    if (parser.found_duplicate()) report_duplicate_key(path, parser);
    if (!header.is_object()) {
        fail(path, "header is " + json_kind(header) + ", expected a JSON object mapping tensor names to entries");
    }
    *header_out = std::move(header);
    return parser.top_keys();
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& value) {
    if (!value.is_object()) {
        fail(path, "__metadata__ is " + json_kind(value) + ", expected an object of string keys to string values");
    }
    std::map<std::string, std::string> metadata;
    for (const auto& item : value.items()) {
        if (!item.value().is_string()) {
            fail(path, "__metadata__ value for key '" + item.key() + "' is " + json_kind(item.value()) +
                           ", expected a string");
        }
        metadata[item.key()] = item.value().get<std::string>();
    }
    return metadata;
}

// A tensor entry as read from the header, before its span is checked against the others.
struct TensorEntry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin;
    uint64_t end;
};

const json& entry_field(const std::string& path, const std::string& name, const json& entry, const char* key) {
    auto it = entry.find(key);
    if (it == entry.end()) fail_tensor(path, name, std::string("missing '") + key + "'");
    return *it;
}

DType parse_dtype(const std::string& path, const std::string& name, const json& entry) {
    const json& value = entry_field(path, name, entry, "dtype");
    if (!value.is_string()) {
        fail_tensor(path, name, "'dtype' is " + json_kind(value) + ", expected a string such as \"F32\"");
    }
    DType dtype;
    if (!dtype_from_name(value.get<std::string>(), &dtype)) {
        fail_tensor(path, name,
                    "unknown dtype '" + value.get<std::string>() + "' (known dtypes: " + known_dtype_names() + ")");
    }
    return dtype;
}

std::vector<int64_t> parse_shape(const std::string& path, const std::string& name, const json& entry) {
    const json& value = entry_field(path, name, entry, "shape");
    if (!value.is_array()) {
        fail_tensor(path, name, "'shape' is " + json_kind(value) + ", expected a list of integers");
    }
    std::vector<int64_t> shape;
    for (size_t i = 0; i < value.size(); ++i) {
        const json& dim = value[i];
        if (!dim.is_number_integer()) {
            fail_tensor(path, name,
                        "shape dimension " + std::to_string(i) + " is " + json_kind(dim) + ", expected an integer");
        }
        if (dim.is_number_unsigned()) {
            uint64_t size = dim.get<uint64_t>();
            if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                fail_tensor(path, name,
                            "shape dimension " + std::to_string(i) + " is " + std::to_string(size) +
                                ", too large for a 64-bit signed size");
            }
            shape.push_back(static_cast<int64_t>(size));
        } else {
            int64_t size = dim.get<int64_t>();
            if (size < 0) {
                fail_tensor(path, name,
                            "shape dimension " + std::to_string(i) + " is " + std::to_string(size) +
                                ": dimensions must be non-negative");
            }
            shape.push_back(size);
        }
    }
    return shape;
}

// The element count, or an error when it does not fit in a signed 64-bit integer.
uint64_t shape_element_count(const std::string& path, const std::string& name, const std::vector<int64_t>& shape) {
    for (int64_t size : shape) {
        if (size == 0) return 0;
    }
    uint64_t count = 1;
    for (int64_t size : shape) {
        if (multiply_overflows(count, static_cast<uint64_t>(size), &count) ||
            count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            fail_tensor(path, name, "shape " + shape_text(shape) + " has more elements than fit in 64 bits");
        }
    }
    return count;
}

uint64_t parse_offset(const std::string& path, const std::string& name, const json& value, const char* which) {
    if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0)) {
        fail_tensor(path, name,
                    std::string("data_offsets ") + which + " is " + value.dump() + ", expected a non-negative integer");
    }
    return value.get<uint64_t>();
}

TensorEntry parse_entry(const std::string& path, const std::string& name, const json& entry, uint64_t data_bytes) {
    if (!entry.is_object()) {
        fail_tensor(path, name,
                    "entry is " + json_kind(entry) + ", expected an object with dtype, shape and data_offsets");
    }
    TensorEntry tensor;
    tensor.name = name;
    tensor.dtype = parse_dtype(path, name, entry);
    tensor.shape = parse_shape(path, name, entry);
    uint64_t count = shape_element_count(path, name, tensor.shape);
    uint64_t nbytes = 0;
    if (multiply_overflows(count, dtype_size(tensor.dtype), &nbytes)) {
        fail_tensor(path, name,
                    "shape " + shape_text(tensor.shape) + " of " + dtype_name(tensor.dtype) +
                        " has a byte size that overflows 64 bits");
    }

    const json& offsets = entry_field(path, name, entry, "data_offsets");
    if (!offsets.is_array() || offsets.size() != 2) {
        fail_tensor(path, name, "'data_offsets' is " + offsets.dump() + ", expected [begin, end]");
    }
    tensor.begin = parse_offset(path, name, offsets[0], "begin");
    tensor.end = parse_offset(path, name, offsets[1], "end");
    std::string span = span_text(tensor.begin, tensor.end);
    if (tensor.begin > tensor.end) fail_tensor(path, name, "data_offsets " + span + " are reversed");
    if (tensor.end - tensor.begin != nbytes) {
        fail_tensor(path, name,
                    "shape " + shape_text(tensor.shape) + " of " + dtype_name(tensor.dtype) + " needs " +
                        std::to_string(nbytes) + " bytes but data_offsets " + span + " span " +
                        std::to_string(tensor.end - tensor.begin) + " bytes");
    }
    if (tensor.end > data_bytes) {
        fail_tensor(path, name,
                    "data_offsets " + span + " run past the end of the data block (" + std::to_string(data_bytes) +
                        " bytes): the file is truncated or the offsets are wrong");
    }
    return tensor;
}

// Every byte of the data block must belong to exactly one tensor. Empty tensors cover nothing.
void check_data_coverage(const std::string& path, const std::vector<TensorEntry>& tensors, uint64_t data_bytes) {
    std::vector<const TensorEntry*> spans;
    for (const TensorEntry& tensor : tensors) {
        if (tensor.end > tensor.begin) spans.push_back(&tensor);
    }
    std::sort(spans.begin(), spans.end(), [](const TensorEntry* a, const TensorEntry* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t covered_end = 0;
    const TensorEntry* previous = nullptr;  // the span reaching covered_end
    for (const TensorEntry* span : spans) {
        if (previous && span->begin < covered_end) {
            fail(path, "tensors '" + previous->name + "' " + span_text(previous->begin, previous->end) + " and '" +
                           span->name + "' " + span_text(span->begin, span->end) + " overlap in the data block");
        }
        if (span->begin > covered_end) {
            std::string where = previous ? "between tensors '" + previous->name + "' and '" + span->name + "'"
                                         : "before tensor '" + span->name + "'";
            fail(path, "data block bytes " + span_text(covered_end, span->begin) + " (" + where +
                           ") are not covered by any tensor");
        }
        covered_end = span->end;
        previous = span;
    }
    if (covered_end < data_bytes) {
        std::string where =
            previous ? "after the last tensor '" + previous->name + "'" : "with no tensor in the header";
        fail(path, "data block bytes " + span_text(covered_end, data_bytes) + " (" + where +
                       ") are not covered by any tensor: trailing bytes");
    }
}

uint64_t read_le64(const uint8_t* bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
    return value;
}

// ---- writing ----

class OutputFile {
  public:
    explicit OutputFile(const std::string& path) : path_(path) {
        file_ = std::fopen(path.c_str(), "wb");
        if (!file_) fail(path, std::string("cannot open for writing: ") + std::strerror(errno));
    }
    ~OutputFile() {
        if (file_) {
            std::fclose(file_);
            std::remove(path_.c_str());  // only reached when a write failed: drop the partial file
        }
    }
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    void write(const void* bytes, size_t count) {
        if (count == 0) return;
        if (std::fwrite(bytes, 1, count, file_) != count) {
            fail(path_, std::string("write failed: ") + std::strerror(errno));
        }
    }
    void close() {
        FILE* file = file_;
        file_ = nullptr;
        if (std::fclose(file) != 0) {
            int error = errno;
            std::remove(path_.c_str());
            fail(path_, std::string("write failed on close: ") + std::strerror(error));
        }
    }

  private:
    std::string path_;
    FILE* file_ = nullptr;
};

uint64_t write_tensor_bytes(const std::string& path, const SafetensorsWriteTensor& tensor) {
    uint64_t count = 1;
    for (int64_t size : tensor.shape) {
        if (size < 0) fail_tensor(path, tensor.name, "cannot write negative shape " + shape_text(tensor.shape));
        if (multiply_overflows(count, static_cast<uint64_t>(size), &count)) {
            fail_tensor(path, tensor.name, "cannot write shape " + shape_text(tensor.shape) + ": too many elements");
        }
    }
    uint64_t nbytes = 0;
    if (multiply_overflows(count, dtype_size(tensor.dtype), &nbytes)) {
        fail_tensor(path, tensor.name, "cannot write shape " + shape_text(tensor.shape) + ": byte size overflows");
    }
    if (nbytes > 0 && !tensor.data) fail_tensor(path, tensor.name, "cannot write: data is null");
    return nbytes;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        if (error == ENOENT) fail(path, "file does not exist");
        fail(path, std::string("cannot open: ") + std::strerror(error));
    }
    struct stat info;
    if (::fstat(fd, &info) != 0) {
        int error = errno;
        ::close(fd);
        fail(path, std::string("cannot stat: ") + std::strerror(error));
    }
    if (!S_ISREG(info.st_mode)) {
        ::close(fd);
        fail(path, "is not a regular file");
    }
    uint64_t file_bytes = static_cast<uint64_t>(info.st_size);
    if (file_bytes < 8) {
        ::close(fd);
        fail(path,
             "file is " + std::to_string(file_bytes) +
                 " bytes, shorter than the 8-byte header length: the file is empty, truncated or not safetensors");
    }

    std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
    file->path_ = path;
    void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_error = errno;
    ::close(fd);  // the mapping stays valid without the descriptor
    if (map == MAP_FAILED) fail(path, std::string("cannot memory-map the file: ") + std::strerror(map_error));
    file->map_ = map;
    file->map_bytes_ = file_bytes;
    const uint8_t* bytes = static_cast<const uint8_t*>(map);

    uint64_t header_bytes = read_le64(bytes);
    if (header_bytes == 0) fail(path, "header length is 0: the file is not safetensors");
    if (header_bytes > kSafetensorsMaxHeaderBytes) {
        fail(path, "header length " + std::to_string(header_bytes) + " exceeds the limit of " +
                       std::to_string(kSafetensorsMaxHeaderBytes) + " bytes: the file is corrupt or not safetensors");
    }
    if (8 + header_bytes > file_bytes) {
        fail(path, "header length " + std::to_string(header_bytes) + " is past the end of the file (" +
                       std::to_string(file_bytes) + " bytes): the file is truncated or not safetensors");
    }
    const uint8_t* data = bytes + 8 + header_bytes;
    uint64_t data_bytes = file_bytes - 8 - header_bytes;

    json header;
    std::vector<std::string> names =
        parse_header(path, reinterpret_cast<const char*>(bytes + 8), header_bytes, &header);
    std::vector<TensorEntry> entries;
    for (const std::string& name : names) {
        if (name == kMetadataKey) {
            file->metadata_ = parse_metadata(path, header.at(name));
        } else {
            entries.push_back(parse_entry(path, name, header.at(name), data_bytes));
        }
    }
    check_data_coverage(path, entries, data_bytes);

    for (const TensorEntry& entry : entries) {
        file->index_[entry.name] = file->tensors_.size();
        file->tensors_.push_back({entry.name, entry.dtype, entry.shape, data + entry.begin, entry.end - entry.begin});
    }
    return file;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) ::munmap(map_, map_bytes_);
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

void safetensors_write(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    // The header is assembled entry by entry so the tensors keep the order they were given in.
    std::string text = "{";
    std::set<std::string> names;
    std::vector<uint64_t> sizes;
    uint64_t offset = 0;
    try {
        if (!metadata.empty()) text += json(kMetadataKey).dump() + ":" + json(metadata).dump();
        for (const SafetensorsWriteTensor& tensor : tensors) {
            if (tensor.name == kMetadataKey)
                fail(path, "cannot write a tensor named '__metadata__': the name is reserved");
            if (!names.insert(tensor.name).second)
                fail(path, "cannot write duplicate tensor name '" + tensor.name + "'");
            uint64_t nbytes = write_tensor_bytes(path, tensor);
            ordered_json entry = ordered_json::object();
            entry["dtype"] = dtype_name(tensor.dtype);
            entry["shape"] = tensor.shape;
            entry["data_offsets"] = {offset, offset + nbytes};
            if (text.size() > 1) text += ",";
            text += json(tensor.name).dump() + ":" + entry.dump();
            sizes.push_back(nbytes);
            offset += nbytes;
        }
    } catch (const json::type_error&) {
        // dump() refuses strings that are not valid UTF-8.
        fail(path, std::string("cannot write the header: a tensor name or metadata string is not valid UTF-8"));
    }
    text += "}";
    text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data block 8-byte aligned
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

    OutputFile out(path);
    out.write(length, sizeof length);
    out.write(text.data(), text.size());
    for (size_t i = 0; i < tensors.size(); ++i) out.write(tensors[i].data, sizes[i]);
    out.close();
}

}  // namespace resnest
