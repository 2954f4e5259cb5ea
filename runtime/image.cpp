// image.cpp: reading and decoding image files to 8-bit RGB (see image.h). The format is sniffed from the
// first bytes, the container is walked and checked here (JPEG markers, PNG chunks, BMP/TGA/PNM sizes)
// so that truncated or unsupported files get a precise message, the pixel count is checked from the
// header, and only then does stb_image decode. EXIF orientation is parsed here (stb_image ignores it).
#include "image.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include <stb/stb_image.h>  // declarations only: the implementation is compiled in stb_image_impl.cpp

#include "resnest/error.h"

namespace resnest {

namespace {

enum class ImageFormat { unknown, jpeg, jpeg_fill_bytes, png, bmp, gif, pnm, webp, tiff, heif, pbm_ascii, psd };

const char* format_name(ImageFormat f) {
    switch (f) {
        case ImageFormat::jpeg: return "JPEG";
        case ImageFormat::jpeg_fill_bytes: return "JPEG with a malformed start (fill bytes, or no marker after SOI)";
        case ImageFormat::png: return "PNG";
        case ImageFormat::bmp: return "BMP";
        case ImageFormat::gif: return "GIF";
        case ImageFormat::pnm: return "PNM";
        case ImageFormat::webp: return "WebP";
        case ImageFormat::tiff: return "TIFF";
        case ImageFormat::heif: return "HEIF/AVIF";
        case ImageFormat::pbm_ascii: return "PBM or ASCII PNM (P1-P4)";
        case ImageFormat::psd: return "PSD";
        case ImageFormat::unknown: break;
    }
    return "TGA";  // the one supported format without a signature
}

bool starts_with(const uint8_t* p, size_t n, const char* magic, size_t m) {
    return n >= m && std::memcmp(p, magic, m) == 0;
}

ImageFormat sniff_format(const uint8_t* p, size_t n) {
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ImageFormat::jpeg;
    if (starts_with(p, n, "\x89PNG\r\n\x1a\n", 8)) return ImageFormat::png;
    if (starts_with(p, n, "BM", 2)) return ImageFormat::bmp;
    if (starts_with(p, n, "GIF87a", 6) || starts_with(p, n, "GIF89a", 6)) return ImageFormat::gif;
    if (n >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6')) return ImageFormat::pnm;
    if (n >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '4') return ImageFormat::pbm_ascii;
    if (n >= 12 && starts_with(p, n, "RIFF", 4) && std::memcmp(p + 8, "WEBP", 4) == 0) return ImageFormat::webp;
    if (starts_with(p, n, "II*\0", 4) || starts_with(p, n, "MM\0*", 4)) return ImageFormat::tiff;
    if (n >= 12 && std::memcmp(p + 4, "ftyp", 4) == 0) return ImageFormat::heif;
    if (starts_with(p, n, "8BPS", 4)) return ImageFormat::psd;
    // stb_image skips 0xFF fill bytes before a JPEG marker, so it decodes FF FF D8 ... (or FF D8 without a
    // marker after it) as a JPEG; the marker checks above expect SOI at offset 0, so such a file is refused
    // rather than handed to stb_image unchecked (its Huffman table builder overflows on a bad DHT).
    if (n >= 2 && p[0] == 0xFF) {
        size_t i = 0;
        while (i < n && p[i] == 0xFF) i++;
        if (i < n && p[i] == 0xD8) return ImageFormat::jpeg_fill_bytes;
    }
    return ImageFormat::unknown;
}

uint32_t be16(const uint8_t* p) { return (uint32_t)p[0] << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
uint32_t le16(const uint8_t* p) { return (uint32_t)p[1] << 8 | p[0]; }
uint32_t le32(const uint8_t* p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

// Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or malformed.
int exif_orientation_from_tiff(const uint8_t* t, size_t n) {
    if (n < 8) return 1;
    bool little;
    if (t[0] == 'I' && t[1] == 'I') little = true;
    else if (t[0] == 'M' && t[1] == 'M') little = false;
    else return 1;
    auto u16 = [&](size_t off) { return little ? le16(t + off) : be16(t + off); };
    auto u32 = [&](size_t off) { return little ? le32(t + off) : be32(t + off); };
    if (u16(2) != 42) return 1;
    size_t ifd = u32(4);
    if (ifd > n || n - ifd < 2) return 1;
    size_t count = u16(ifd);
    for (size_t i = 0; i < count; i++) {
        size_t e = ifd + 2 + 12 * i;
        if (e > n || n - e < 12) return 1;
        if (u16(e) != 0x0112) continue;
        uint32_t type = u16(e + 2), values = u32(e + 4);
        if (type != 3 || values < 1) return 1;  // SHORT, stored in the first two bytes of the value field
        uint32_t v = u16(e + 8);
        return (v >= 1 && v <= 8) ? (int)v : 1;
    }
    return 1;
}

// ---- JPEG: walk the markers -------------------------------------------------------------------------

struct JpegLayout {
    int sof_marker = -1;        // 0xC0.. of the first frame header
    int precision = 0;          // bits per sample
    int components = 0;
    int64_t width = 0, height = 0;
    int adobe_transform = -1;   // APP14 "Adobe" colour transform: 0 CMYK/RGB, 1 YCbCr, 2 YCCK; -1 absent
    int exif_orientation = 1;
    bool has_scan = false;
    bool has_eoi = false;
    bool bad_huffman = false;   // a DHT segment with more than 256 codes or overrunning its length
};

// Walks every marker segment and the entropy-coded data after each SOS, up to EOI. Reaching the end of
// the data first means the file is truncated.
JpegLayout jpeg_walk_markers(const uint8_t* p, size_t n, bool* truncated) {
    JpegLayout L;
    *truncated = true;
    size_t pos = 2;  // after SOI
    bool seen_exif = false;
    while (pos < n) {
        if (p[pos] != 0xFF) {  // stray bytes between segments: libjpeg skips them with a warning
            const void* ff = std::memchr(p + pos, 0xFF, n - pos);
            if (!ff) return L;
            pos = (size_t)((const uint8_t*)ff - p);
        }
        while (pos < n && p[pos] == 0xFF) pos++;  // fill bytes
        if (pos >= n) return L;
        const int m = p[pos++];
        if (m == 0xD9) {
            L.has_eoi = true;
            *truncated = false;
            return L;
        }
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) || m == 0xD8) continue;  // no length field
        if (n - pos < 2) return L;
        const size_t len = be16(p + pos);
        if (len < 2) return L;
        if (n - pos < len) return L;
        const uint8_t* seg = p + pos + 2;
        const size_t seg_len = len - 2;
        const bool is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (is_sof && L.sof_marker < 0 && seg_len >= 6) {
            L.sof_marker = m;
            L.precision = seg[0];
            L.height = be16(seg + 1);
            L.width = be16(seg + 3);
            L.components = seg[5];
        } else if (m == 0xC4) {
            // Huffman tables: at most 256 codes each. stb_image 2.27 writes past its arrays beyond that, so a
            // corrupt table is refused here.
            size_t t = 0;
            while (t < seg_len) {
                if (seg_len - t < 17 || (seg[t] >> 4) > 1 || (seg[t] & 15) > 3) {
                    L.bad_huffman = true;
                    break;
                }
                size_t codes = 0;
                for (int i = 1; i <= 16; i++) codes += seg[t + i];
                if (codes > 256 || seg_len - t - 17 < codes) {
                    L.bad_huffman = true;
                    break;
                }
                t += 17 + codes;
            }
        } else if (m == 0xE1 && !seen_exif && seg_len >= 6 && std::memcmp(seg, "Exif\0\0", 6) == 0) {
            seen_exif = true;
            L.exif_orientation = exif_orientation_from_tiff(seg + 6, seg_len - 6);
        } else if (m == 0xEE && seg_len >= 12 && std::memcmp(seg, "Adobe", 5) == 0) {
            L.adobe_transform = seg[11];
        }
        pos += len;
        if (m == 0xDA) {  // entropy-coded data: runs to the next marker other than RSTn and stuffed 0xFF00
            L.has_scan = true;
            for (;;) {
                const void* ff = pos < n ? std::memchr(p + pos, 0xFF, n - pos) : nullptr;
                if (!ff) return L;
                pos = (size_t)((const uint8_t*)ff - p);
                if (pos + 1 >= n) return L;
                const int next = p[pos + 1];
                if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) pos += 2;
                else if (next == 0xFF) pos += 1;
                else break;  // a marker: back to the segment loop
            }
        }
    }
    return L;
}

// Each check below walks or reads the container, throws for a truncated or unsupported file, and returns the
// header's width and height (0 when they cannot be known before decoding).
struct HeaderInfo {
    int64_t width = 0, height = 0;
    int orientation = 1;
};

HeaderInfo jpeg_check(const uint8_t* p, size_t n, const std::string& name) {
    bool truncated = false;
    JpegLayout L = jpeg_walk_markers(p, n, &truncated);
    if (L.sof_marker < 0 && truncated)
        throw Error(name + ": truncated JPEG: the data ends before the frame header");
    if (L.sof_marker < 0) throw Error(name + ": corrupt JPEG: no frame header (SOF) before the end-of-image marker");
    const int m = L.sof_marker;
    if (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF)
        throw Error(name + ": lossless JPEG (SOF" + std::to_string(m - 0xC0) + ") is not supported");
    if (m == 0xC5 || m == 0xC6 || m == 0xCD || m == 0xCE)
        throw Error(name + ": hierarchical JPEG (SOF" + std::to_string(m - 0xC0) + ") is not supported");
    if (m >= 0xC9)
        throw Error(name + ": arithmetic-coded JPEG (SOF" + std::to_string(m - 0xC0) +
                    ") is not supported; re-encode it with Huffman coding (e.g. jpegtran)");
    if (L.precision != 8)
        throw Error(name + ": " + std::to_string(L.precision) + "-bit JPEG is not supported (8-bit samples only)");
    if (L.components == 4 && L.adobe_transform != 0 && L.adobe_transform != 2)
        throw Error(name + ": 4-channel (CMYK) JPEG without an Adobe APP14 marker is not supported: its colour "
                           "convention is unknown; convert it to RGB");
    if (L.components != 1 && L.components != 3 && L.components != 4)
        throw Error(name + ": JPEG with " + std::to_string(L.components) + " components is not supported");
    if (L.bad_huffman) throw Error(name + ": corrupt JPEG: malformed Huffman table (DHT)");
    if (L.height == 0) throw Error(name + ": JPEG without a height in its frame header (DNL) is not supported");
    if (truncated || !L.has_scan)
        throw Error(name + ": truncated JPEG: the data ends before the end-of-image marker");
    return HeaderInfo{L.width, L.height, L.exif_orientation};
}

// ---- PNG: walk the chunks ---------------------------------------------------------------------------

HeaderInfo png_check(const uint8_t* p, size_t n, const std::string& name) {
    HeaderInfo info;
    if (n >= 24 && std::memcmp(p + 12, "IHDR", 4) == 0) info.width = be32(p + 16), info.height = be32(p + 20);
    size_t pos = 8;
    bool seen_iend = false, seen_idat = false;
    while (pos < n) {
        if (n - pos < 12) break;
        const size_t len = be32(p + pos);
        const uint8_t* type = p + pos + 4;
        if (len > n - pos - 12) break;
        if (std::memcmp(type, "IDAT", 4) == 0) seen_idat = true;
        if (std::memcmp(type, "eXIf", 4) == 0) info.orientation = exif_orientation_from_tiff(p + pos + 8, len);
        if (std::memcmp(type, "IEND", 4) == 0) {
            seen_iend = true;
            break;
        }
        pos += 12 + len;
    }
    if (!seen_iend)
        throw Error(name + (seen_idat ? ": truncated PNG: the data ends before the IEND chunk"
                                      : ": truncated PNG: the data ends before the image data (IDAT)"));
    return info;
}

// ---- BMP, TGA, PNM: uncompressed pixel data must be all there (stb_image would read zeros) -------------

HeaderInfo bmp_check(const uint8_t* p, size_t n, const std::string& name) {
    if (n < 30) throw Error(name + ": truncated BMP: the header is incomplete");
    const uint32_t data_offset = le32(p + 10), header_size = le32(p + 14);
    if (header_size < 40 || n < 34) return HeaderInfo{le16(p + 18), le16(p + 20), 1};  // OS/2 core header
    const int64_t w = (int32_t)le32(p + 18), h = (int32_t)le32(p + 22);
    const HeaderInfo info{std::llabs(w), std::llabs(h), 1};
    const uint32_t bpp = le16(p + 28), compression = le32(p + 30);
    if (compression != 0 && compression != 3) return info;  // RLE: stb_image's decoder stops at the data's end
    if (w <= 0 || h == 0 || bpp == 0 || w > (1 << 24) || std::llabs(h) > (1 << 24)) return info;  // stb_image rejects
    const int64_t row = (w * bpp + 31) / 32 * 4;
    if ((int64_t)data_offset + row * std::llabs(h) > (int64_t)n)
        throw Error(name + ": truncated BMP: " + std::to_string(n) + " bytes, the header needs " +
                    std::to_string((int64_t)data_offset + row * std::llabs(h)));
    return info;
}

HeaderInfo tga_check(const uint8_t* p, size_t n, const std::string& name) {
    if (n < 18) throw Error(name + ": not an image this build can read (supported: " + image_supported_formats() + ")");
    const int64_t id_len = p[0], cmap_type = p[1], cmap_len = le16(p + 5), cmap_bits = p[7];
    const int64_t w = le16(p + 12), h = le16(p + 14), bpp = p[16];
    const HeaderInfo info{w, h, 1};
    const int image_type = p[2];
    if (image_type != 1 && image_type != 2 && image_type != 3) return info;  // RLE or not a TGA
    const int64_t need = 18 + id_len + (cmap_type ? cmap_len * ((cmap_bits + 7) / 8) : 0) + w * h * ((bpp + 7) / 8);
    if (need > (int64_t)n)
        throw Error(name + ": truncated TGA: " + std::to_string(n) + " bytes, the header needs " + std::to_string(need));
    return info;
}

HeaderInfo pnm_check(const uint8_t* p, size_t n, const std::string& name) {
    // Header: magic, width, height, maxval as decimal tokens separated by whitespace or # comments, then one
    // whitespace byte and the samples.
    size_t pos = 2;
    int64_t v[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (pos < n && (p[pos] == ' ' || (p[pos] >= '\t' && p[pos] <= '\r'))) pos++;
            if (pos < n && p[pos] == '#') {
                while (pos < n && p[pos] != '\n' && p[pos] != '\r') pos++;
                continue;
            }
            break;
        }
        if (pos >= n || p[pos] < '0' || p[pos] > '9') throw Error(name + ": corrupt PNM header");
        while (pos < n && p[pos] >= '0' && p[pos] <= '9') {
            v[k] = v[k] * 10 + (p[pos++] - '0');
            if (v[k] > (1LL << 31)) throw Error(name + ": corrupt PNM header: value out of range");
        }
    }
    pos++;  // the single whitespace byte before the samples
    const int64_t w = v[0], h = v[1], maxval = v[2];
    if (maxval != 255)
        throw Error(name + ": PNM with maxval " + std::to_string(maxval) + " is not supported (8-bit, maxval 255, only)");
    const int64_t channels = p[1] == '6' ? 3 : 1;
    if (w > 0 && h > 0 && w <= (1 << 24) && h <= (1 << 24) && (int64_t)pos + w * h * channels > (int64_t)n)
        throw Error(name + ": truncated PNM: " + std::to_string(n) + " bytes, the header needs " +
                    std::to_string((int64_t)pos + w * h * channels));
    return HeaderInfo{w, h, 1};
}

struct StbFree {
    void operator()(void* p) const { stbi_image_free(p); }
};

std::string stb_reason() {
    const char* r = stbi_failure_reason();
    return r ? r : "unknown error";
}

}  // namespace

const char* image_supported_formats() { return "JPEG, PNG, BMP, GIF (first frame), TGA, PPM/PGM (binary)"; }

bool image_has_known_extension(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    static const char* known[] = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pnm"};
    return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return ext == k; });
}

int image_exif_orientation(const uint8_t* data, size_t size) {
    int orientation = 1;
    switch (sniff_format(data, size)) {
        case ImageFormat::jpeg: {
            bool truncated = false;
            orientation = jpeg_walk_markers(data, size, &truncated).exif_orientation;
            break;
        }
        case ImageFormat::png:
            try {
                orientation = png_check(data, size, "").orientation;
            } catch (const Error&) {
            }
            break;
        default: break;
    }
    return orientation;
}

ImageRGB8 image_apply_exif_orientation(const ImageRGB8& in, int orientation) {
    if (orientation < 2 || orientation > 8) return in;
    const int64_t W = in.width, H = in.height;
    const bool swap = orientation >= 5;
    ImageRGB8 out;
    out.width = (int)(swap ? H : W);
    out.height = (int)(swap ? W : H);
    out.pixels.resize(in.pixels.size());
    for (int64_t oy = 0; oy < out.height; oy++) {
        for (int64_t ox = 0; ox < out.width; ox++) {
            int64_t sx = ox, sy = oy;  // source pixel of output (ox, oy)
            switch (orientation) {
                case 2: sx = W - 1 - ox; break;                        // mirror left-right
                case 3: sx = W - 1 - ox, sy = H - 1 - oy; break;       // rotate 180
                case 4: sy = H - 1 - oy; break;                        // mirror top-bottom
                case 5: sx = oy, sy = ox; break;                       // transpose
                case 6: sx = oy, sy = H - 1 - ox; break;               // rotate 90 clockwise
                case 7: sx = W - 1 - oy, sy = H - 1 - ox; break;       // transverse
                case 8: sx = W - 1 - oy, sy = ox; break;               // rotate 90 counter-clockwise
            }
            const uint8_t* s = &in.pixels[(size_t)((sy * W + sx) * 3)];
            uint8_t* d = &out.pixels[(size_t)((oy * out.width + ox) * 3)];
            d[0] = s[0], d[1] = s[1], d[2] = s[2];
        }
    }
    return out;
}

ImageRGB8 image_decode_memory(const uint8_t* data, size_t size, const std::string& name,
                              const ImageDecodeOptions& options) {
    if (size == 0) throw Error(name + ": empty file, not an image");
    if ((int64_t)size > kMaxImageFileBytes)
        throw Error(name + ": file of " + std::to_string(size) + " bytes is over the " +
                    std::to_string(kMaxImageFileBytes >> 20) + " MiB image file limit");
    const ImageFormat format = sniff_format(data, size);
    switch (format) {
        case ImageFormat::webp:
        case ImageFormat::tiff:
        case ImageFormat::heif:
        case ImageFormat::pbm_ascii:
        case ImageFormat::psd:
        case ImageFormat::jpeg_fill_bytes:
            throw Error(name + ": " + format_name(format) + " images are not supported (supported: " +
                        image_supported_formats() + ")");
        default: break;
    }

    HeaderInfo header;
    if (format == ImageFormat::jpeg) header = jpeg_check(data, size, name);
    if (format == ImageFormat::png) header = png_check(data, size, name);
    if (format == ImageFormat::bmp) header = bmp_check(data, size, name);
    if (format == ImageFormat::gif && size >= 10) header = HeaderInfo{le16(data + 6), le16(data + 8), 1};
    if (format == ImageFormat::pnm) header = pnm_check(data, size, name);
    if (format == ImageFormat::unknown) tga_check(data, size, name);  // its size is trusted once stb_image accepts it
    const int orientation = options.apply_exif_orientation ? header.orientation : 1;
    auto check_limit = [&](int64_t w, int64_t h) {  // header sizes are below 2^32 each: the product fits
        if (w <= 0 || h <= 0) return;
        const uint64_t pixels = (uint64_t)w * (uint64_t)h;
        if (pixels > (uint64_t)options.max_pixels)
            throw Error(name + ": image of " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                        std::to_string(pixels) + " pixels is over the limit of " + std::to_string(options.max_pixels) +
                        " pixels (raise it with --max-pixels)");
    };
    check_limit(header.width, header.height);  // from our own header parse: stb_image refuses >1 GiB silently

    const int len = (int)size;
    int w = 0, h = 0, channels = 0;
    if (!stbi_info_from_memory(data, len, &w, &h, &channels)) {
        if (format == ImageFormat::unknown)
            throw Error(name + ": not an image this build can read (supported: " + std::string(image_supported_formats()) +
                        ")");
        throw Error(name + ": cannot read the " + format_name(format) + " header (stb_image: " + stb_reason() + ")");
    }
    if (w <= 0 || h <= 0) throw Error(name + ": image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
    check_limit(w, h);

    ImageRGB8 img;
    int dw = 0, dh = 0, file_channels = 0;
    if (stbi_is_16_bit_from_memory(data, len)) {
        std::unique_ptr<stbi_us, StbFree> p16(stbi_load_16_from_memory(data, len, &dw, &dh, &file_channels, 3));
        if (!p16) throw Error(name + ": cannot decode the " + std::string(format_name(format)) + " image (stb_image: " + stb_reason() + ")");
        img.pixels.resize((size_t)dw * dh * 3);
        for (size_t i = 0; i < img.pixels.size(); i++) img.pixels[i] = (uint8_t)(p16.get()[i] >> 8);  // high byte, as OpenCV
    } else {
        std::unique_ptr<stbi_uc, StbFree> p8(stbi_load_from_memory(data, len, &dw, &dh, &file_channels, 3));
        if (!p8) throw Error(name + ": cannot decode the " + std::string(format_name(format)) + " image (stb_image: " + stb_reason() + ")");
        img.pixels.assign(p8.get(), p8.get() + (size_t)dw * dh * 3);
    }
    if (dw != w || dh != h)
        throw Error(name + ": decoded size " + std::to_string(dw) + "x" + std::to_string(dh) +
                    " differs from the header's " + std::to_string(w) + "x" + std::to_string(h));
    img.width = dw;
    img.height = dh;
    if (orientation != 1) img = image_apply_exif_orientation(img, orientation);
    return img;
}

ImageRGB8 image_decode_file(const std::string& path, const ImageDecodeOptions& options) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not an image");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(path + ": cannot open the image: " + std::strerror(errno));
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(f, std::fclose);
    if (std::fseek(f, 0, SEEK_END) != 0) throw Error(path + ": cannot read the image: " + std::strerror(errno));
    const long size = std::ftell(f);
    if (size < 0) throw Error(path + ": cannot read the image: " + std::strerror(errno));
    if ((int64_t)size > kMaxImageFileBytes)
        throw Error(path + ": file of " + std::to_string(size) + " bytes is over the " +
                    std::to_string(kMaxImageFileBytes >> 20) + " MiB image file limit");
    std::fseek(f, 0, SEEK_SET);
    std::vector<uint8_t> bytes((size_t)size);
    if (size > 0 && std::fread(bytes.data(), 1, bytes.size(), f) != bytes.size())
        throw Error(path + ": cannot read the image: short read");
    return image_decode_memory(bytes.data(), bytes.size(), path, options);
}

}  // namespace resnest
