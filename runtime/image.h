// image.h: image decoding for classification. JPEG (baseline and progressive), PNG (8 and 16 bit), BMP,
// GIF (first frame), TGA and binary PPM/PGM through stb_image, always to 8-bit RGB, as OpenCV's
// cv2.imread(path, IMREAD_COLOR) followed by a BGR->RGB swap gives them to PaddleClas:
//   - grey and grey+alpha are expanded to RGB by replication; alpha is dropped, never composited;
//   - 16-bit samples keep their high byte (v >> 8), as libpng's strip_16 in OpenCV's imread;
//   - the EXIF orientation (JPEG APP1 and PNG eXIf) is applied, as imread does by default;
//   - the pixel count is checked against a limit from the header, before anything is decoded.
// Every failure is a resnest::Error whose message starts with the file's name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace resnest {

struct ImageRGB8 {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> pixels;  // (height, width, 3) RGB, row-major, no padding
};

// 8192 x 8192: a 192 MiB RGB buffer at most. OpenCV's own default (CV_IO_MAX_IMAGE_PIXELS) is 2^30.
constexpr int64_t kDefaultMaxImagePixels = 8192LL * 8192LL;
// Files above this size are refused before they are read (stb_image takes an int length).
constexpr int64_t kMaxImageFileBytes = 1LL << 30;

struct ImageDecodeOptions {
    int64_t max_pixels = kDefaultMaxImagePixels;  // width * height from the header, checked before decoding
    bool apply_exif_orientation = true;           // false: as cv2.IMREAD_IGNORE_ORIENTATION
};

// Reads and decodes one file. Throws resnest::Error naming the file: missing or unreadable file, a
// directory, an empty file, an unsupported or unrecognised format, a truncated JPEG/PNG/BMP/TGA/PNM, a
// JPEG kind stb_image cannot decode (arithmetic coding, lossless, 12-bit, 4 channels without an Adobe
// marker), more pixels than the limit, or any decoder error.
ImageRGB8 image_decode_file(const std::string& path, const ImageDecodeOptions& options = {});

// The same on bytes already in memory; `name` is used in messages.
ImageRGB8 image_decode_memory(const uint8_t* data, size_t size, const std::string& name,
                              const ImageDecodeOptions& options = {});

// The EXIF orientation (1..8) found in a JPEG's APP1 or a PNG's eXIf chunk; 1 when there is none or it
// cannot be parsed (a damaged EXIF block is ignored, as OpenCV ignores it).
int image_exif_orientation(const uint8_t* data, size_t size);

// Applies an EXIF orientation: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
// 7 transverse, 8 rotate 90 counter-clockwise; 1 or any other value returns the image unchanged.
ImageRGB8 image_apply_exif_orientation(const ImageRGB8& image, int orientation);

// True for the extensions a directory listing picks up: .jpg .jpeg .jpe .png .bmp .gif .tga .ppm .pgm
// .pnm (any case). Files given by name are decoded whatever their extension: the format is sniffed.
bool image_has_known_extension(const std::string& path);

// "JPEG, PNG, BMP, GIF (first frame), TGA, PPM/PGM (binary)": for help texts and messages.
const char* image_supported_formats();

}  // namespace resnest
