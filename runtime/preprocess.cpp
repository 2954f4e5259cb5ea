// preprocess.cpp: short-side resize, centre crop and normalisation, reproducing OpenCV's INTER_LINEAR
// (PaddleClas) and Pillow's convolution resampling (timm) to the bit. See preprocess.h.
//
// The coordinate arithmetic must round exactly as OpenCV's and Pillow's own builds do: a product rounded
// to double before the next addition, never a fused multiply-add. The library is compiled with
// -ffp-contract=fast, so contraction is switched off for this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "resnest/error.h"

namespace resnest {

namespace {

constexpr int kOpenCvCoefBits = 11;  // INTER_RESIZE_COEF_BITS
constexpr int kOpenCvCoefScale = 1 << kOpenCvCoefBits;
constexpr int kPilPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

// cvRound / saturate_cast<short>(float): round half to even (the default rounding mode), then clamp.
int16_t round_to_short(float v) {
    float r = std::nearbyint(v);
    if (r > 32767.f) return 32767;
    if (r < -32768.f) return -32768;
    return (int16_t)r;
}

struct OpenCvTap {
    int64_t i0, i1;  // source indices, in range
    int32_t w0, w1;  // 11-bit fixed-point weights
};

// One axis of OpenCV's INTER_LINEAR coefficients for destination indices [d0, d0 + count).
// clamp_weights: the x axis sets the weight to 0 at both borders; the y axis keeps the fraction and only
// clamps the row indices (OpenCV's resize has done so since 2.x).
std::vector<OpenCvTap> opencv_linear_taps(int64_t src, int64_t dst, int64_t d0, int count, bool clamp_weights) {
    const double inv_scale = (double)dst / (double)src;
    const double scale = 1.0 / inv_scale;
    std::vector<OpenCvTap> taps((size_t)count);
    for (int k = 0; k < count; k++) {
        const int64_t d = d0 + k;
        float f = (float)(((double)d + 0.5) * scale - 0.5);
        int64_t s = (int64_t)std::floor(f);
        f -= (float)s;
        if (clamp_weights) {
            if (s < 0) f = 0.f, s = 0;
            if (s >= src - 1) f = 0.f, s = src - 1;
        }
        OpenCvTap t;
        t.w0 = round_to_short((1.f - f) * (float)kOpenCvCoefScale);
        t.w1 = round_to_short(f * (float)kOpenCvCoefScale);
        t.i0 = std::min(std::max<int64_t>(s, 0), src - 1);
        t.i1 = std::min(std::max<int64_t>(s + 1, 0), src - 1);
        taps[(size_t)k] = t;
    }
    return taps;
}

// ---- Pillow ------------------------------------------------------------------------------------------

double pil_bilinear(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

double pil_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct PilTaps {
    int ksize = 0;
    std::vector<int64_t> first;   // first source index per output index
    std::vector<int> count;       // taps used per output index
    std::vector<int32_t> coeffs;  // (outputs, ksize), 22-bit fixed point
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for outputs [d0, d0 + n) of an in_size -> out_size
// resize over the box [0, in_size).
PilTaps pil_taps(int64_t in_size, int64_t out_size, PilFilter filter, int64_t d0, int n) {
    const double support_1 = filter == PilFilter::bilinear ? 1.0 : 2.0;
    const double scale = (double)in_size / (double)out_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = support_1 * filterscale;
    PilTaps t;
    t.ksize = (int)std::ceil(support) * 2 + 1;
    t.first.resize((size_t)n);
    t.count.resize((size_t)n);
    t.coeffs.assign((size_t)n * t.ksize, 0);
    std::vector<double> k((size_t)t.ksize);
    for (int j = 0; j < n; j++) {
        const int64_t xx = d0 + j;
        const double center = ((double)xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int64_t xmin = (int64_t)(center - support + 0.5);  // truncation toward zero, as Pillow's (int) cast
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        xmax = std::min<int64_t>(xmax, t.ksize);
        double ww = 0.0;
        for (int64_t x = 0; x < xmax; x++) {
            const double arg = ((double)(x + xmin) - center + 0.5) * ss;
            const double w = filter == PilFilter::bilinear ? pil_bilinear(arg) : pil_bicubic(arg);
            k[(size_t)x] = w;
            ww += w;
        }
        for (int64_t x = 0; x < xmax; x++) {
            if (ww != 0.0) k[(size_t)x] /= ww;
            const double v = k[(size_t)x] * (double)(1 << kPilPrecisionBits);
            t.coeffs[(size_t)j * t.ksize + (size_t)x] = (int32_t)(v < 0 ? -0.5 + v : 0.5 + v);
        }
        t.first[(size_t)j] = xmin;
        t.count[(size_t)j] = (int)std::max<int64_t>(xmax, 0);
    }
    return t;
}

uint8_t pil_clip8(int64_t ss) {
    int64_t v = ss >> kPilPrecisionBits;  // arithmetic shift: floor
    return (uint8_t)std::min<int64_t>(std::max<int64_t>(v, 0), 255);
}

void check_window(const ImageRGB8& src, int64_t dst_w, int64_t dst_h, int64_t x0, int64_t y0, int out_w, int out_h) {
    if (src.width <= 0 || src.height <= 0 || src.pixels.size() != (size_t)src.width * src.height * 3)
        throw Error("resize: the source image is empty or inconsistent");
    if (dst_w <= 0 || dst_h <= 0 || out_w <= 0 || out_h <= 0 || x0 < 0 || y0 < 0 || x0 + out_w > dst_w ||
        y0 + out_h > dst_h)
        throw Error("resize: window " + std::to_string(out_w) + "x" + std::to_string(out_h) + " at (" +
                    std::to_string(x0) + ", " + std::to_string(y0) + ") does not fit the " + std::to_string(dst_w) +
                    "x" + std::to_string(dst_h) + " output");
}

}  // namespace

const char* preprocess_pipeline_name(PreprocessPipeline p) {
    switch (p) {
        case PreprocessPipeline::paddleclas: return "paddleclas";
        case PreprocessPipeline::timm_bilinear: return "timm";
        case PreprocessPipeline::timm_bicubic: return "timm-bicubic";
    }
    return "?";
}

PreprocessPipeline parse_preprocess_pipeline(const std::string& name) {
    if (name == "paddleclas") return PreprocessPipeline::paddleclas;
    if (name == "timm") return PreprocessPipeline::timm_bilinear;
    if (name == "timm-bicubic") return PreprocessPipeline::timm_bicubic;
    throw Error("unknown preprocessing '" + name + "' (accepted: paddleclas, timm, timm-bicubic)");
}

ResizeCropGeometry paddleclas_resize_crop_geometry(int64_t width, int64_t height, int resize_short, int crop) {
    ResizeCropGeometry g;
    const double percent = (double)resize_short / (double)std::min(width, height);
    g.resized_width = (int64_t)std::nearbyint((double)width * percent);  // Python round(): half to even
    g.resized_height = (int64_t)std::nearbyint((double)height * percent);
    g.crop_x = (g.resized_width - crop) / 2;  // non-negative: floor division
    g.crop_y = (g.resized_height - crop) / 2;
    return g;
}

ResizeCropGeometry torchvision_resize_crop_geometry(int64_t width, int64_t height, int resize_short, int crop) {
    ResizeCropGeometry g;
    const int64_t short_side = std::min(width, height), long_side = std::max(width, height);
    const int64_t new_long = (int64_t)((double)((int64_t)resize_short * long_side) / (double)short_side);  // int(): trunc
    g.resized_width = width <= height ? resize_short : new_long;
    g.resized_height = width <= height ? new_long : resize_short;
    g.crop_x = (int64_t)std::nearbyint((double)(g.resized_width - crop) / 2.0);
    g.crop_y = (int64_t)std::nearbyint((double)(g.resized_height - crop) / 2.0);
    return g;
}

std::vector<uint8_t> resize_bilinear_opencv_fixed_point(const ImageRGB8& src, int64_t dst_w, int64_t dst_h,
                                                        int64_t x0, int64_t y0, int out_w, int out_h) {
    check_window(src, dst_w, dst_h, x0, y0, out_w, out_h);
    const int64_t sw = src.width, sh = src.height;
    const uint8_t* s = src.pixels.data();  // (sh, sw, 3)
    std::vector<uint8_t> out((size_t)out_w * out_h * 3);  // (out_h, out_w, 3)

    if (dst_w == sw && dst_h == sh) {  // cv::resize copies
        for (int y = 0; y < out_h; y++)
            std::memcpy(&out[(size_t)y * out_w * 3], s + ((y0 + y) * sw + x0) * 3, (size_t)out_w * 3);
        return out;
    }
    if (sw == 2 * dst_w && sh == 2 * dst_h) {  // INTER_LINEAR at exactly 1/2 is OpenCV's INTER_AREA fast path
        for (int y = 0; y < out_h; y++) {
            const uint8_t* r0 = s + (2 * (y0 + y)) * sw * 3;
            const uint8_t* r1 = r0 + sw * 3;
            for (int x = 0; x < out_w; x++) {
                const int64_t c = 2 * (x0 + x) * 3;
                for (int ch = 0; ch < 3; ch++)
                    out[((size_t)y * out_w + x) * 3 + ch] =
                        (uint8_t)((r0[c + ch] + r0[c + 3 + ch] + r1[c + ch] + r1[c + 3 + ch] + 2) >> 2);
            }
        }
        return out;
    }

    const std::vector<OpenCvTap> xt = opencv_linear_taps(sw, dst_w, x0, out_w, true);
    const std::vector<OpenCvTap> yt = opencv_linear_taps(sh, dst_h, y0, out_h, false);
    std::vector<int32_t> h0((size_t)out_w * 3), h1((size_t)out_w * 3);  // horizontal pass of two rows, 11-bit
    auto horizontal = [&](int64_t row, int32_t* h) {
        const uint8_t* r = s + row * sw * 3;
        for (int x = 0; x < out_w; x++) {
            const OpenCvTap& t = xt[(size_t)x];
            for (int ch = 0; ch < 3; ch++)
                h[x * 3 + ch] = (int32_t)r[t.i0 * 3 + ch] * t.w0 + (int32_t)r[t.i1 * 3 + ch] * t.w1;
        }
    };
    for (int y = 0; y < out_h; y++) {
        const OpenCvTap& t = yt[(size_t)y];
        horizontal(t.i0, h0.data());
        horizontal(t.i1, h1.data());
        uint8_t* o = &out[(size_t)y * out_w * 3];
        for (int i = 0; i < out_w * 3; i++) {
            const int32_t v = (((t.w0 * (h0[(size_t)i] >> 4)) >> 16) + ((t.w1 * (h1[(size_t)i] >> 4)) >> 16) + 2) >> 2;
            o[i] = (uint8_t)std::min(std::max(v, 0), 255);
        }
    }
    return out;
}

std::vector<uint8_t> resize_pil_convolution_fixed_point(const ImageRGB8& src, PilFilter filter, int64_t dst_w,
                                                        int64_t dst_h, int64_t x0, int64_t y0, int out_w, int out_h) {
    check_window(src, dst_w, dst_h, x0, y0, out_w, out_h);
    const int64_t sw = src.width, sh = src.height;
    const PilTaps xt = pil_taps(sw, dst_w, filter, x0, out_w);
    const PilTaps yt = pil_taps(sh, dst_h, filter, y0, out_h);
    // Source rows the vertical pass reads.
    int64_t row_first = sh, row_end = 0;
    for (int y = 0; y < out_h; y++) {
        row_first = std::min(row_first, yt.first[(size_t)y]);
        row_end = std::max(row_end, yt.first[(size_t)y] + yt.count[(size_t)y]);
    }
    if (row_end <= row_first) row_first = 0, row_end = 1;
    const int64_t rows = row_end - row_first;
    // Horizontal pass into 8 bits, (rows, out_w, 3).
    std::vector<uint8_t> mid((size_t)rows * out_w * 3);
    const int64_t half = (int64_t)1 << (kPilPrecisionBits - 1);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t* in = src.pixels.data() + (row_first + r) * sw * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t* k = &xt.coeffs[(size_t)x * xt.ksize];
            const int64_t first = xt.first[(size_t)x];
            for (int ch = 0; ch < 3; ch++) {
                int64_t ss = half;
                for (int i = 0; i < xt.count[(size_t)x]; i++) ss += (int64_t)in[(first + i) * 3 + ch] * k[i];
                mid[((size_t)r * out_w + x) * 3 + ch] = pil_clip8(ss);
            }
        }
    }
    // Vertical pass.
    std::vector<uint8_t> out((size_t)out_w * out_h * 3);
    for (int y = 0; y < out_h; y++) {
        const int32_t* k = &yt.coeffs[(size_t)y * yt.ksize];
        const int64_t first = yt.first[(size_t)y] - row_first;
        for (int x = 0; x < out_w; x++) {
            for (int ch = 0; ch < 3; ch++) {
                int64_t ss = half;
                for (int i = 0; i < yt.count[(size_t)y]; i++)
                    ss += (int64_t)mid[((size_t)(first + i) * out_w + x) * 3 + ch] * k[i];
                out[((size_t)y * out_w + x) * 3 + ch] = pil_clip8(ss);
            }
        }
    }
    return out;
}

std::vector<uint8_t> preprocess_resize_crop(const ImageRGB8& image, const PreprocessOptions& options) {
    const int crop = options.crop;
    if (crop <= 0 || options.resize_short <= 0)
        throw Error("preprocess: the crop (" + std::to_string(crop) + ") and the short side (" +
                    std::to_string(options.resize_short) + ") must be positive");
    if (options.resize_short < crop)
        throw Error("preprocess: the short side after resizing (" + std::to_string(options.resize_short) +
                    ") is smaller than the crop (" + std::to_string(crop) + ")");
    if (options.pipeline == PreprocessPipeline::paddleclas) {
        ResizeCropGeometry g = paddleclas_resize_crop_geometry(image.width, image.height, options.resize_short, crop);
        return resize_bilinear_opencv_fixed_point(image, g.resized_width, g.resized_height, g.crop_x, g.crop_y, crop, crop);
    }
    ResizeCropGeometry g = torchvision_resize_crop_geometry(image.width, image.height, options.resize_short, crop);
    if (g.resized_width == image.width && g.resized_height == image.height) {  // torchvision returns the image as is
        std::vector<uint8_t> out((size_t)crop * crop * 3);
        for (int y = 0; y < crop; y++)
            std::memcpy(&out[(size_t)y * crop * 3], &image.pixels[(size_t)((g.crop_y + y) * image.width + g.crop_x) * 3],
                        (size_t)crop * 3);
        return out;
    }
    const PilFilter filter =
        options.pipeline == PreprocessPipeline::timm_bicubic ? PilFilter::bicubic : PilFilter::bilinear;
    return resize_pil_convolution_fixed_point(image, filter, g.resized_width, g.resized_height, g.crop_x, g.crop_y,
                                              crop, crop);
}

// Each step is computed in double from float operands and rounded to float: for one +, -, * or / of two
// floats this is the correctly rounded float result (53 >= 2 * 24 + 2 bits), as numpy and torch give.
std::vector<float> normalize_table_paddleclas() {
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    const float scale = (float)(1.0 / 255.0);  // np.float32(1.0 / 255.0)
    std::vector<float> t(3 * 256);
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            const float scaled = (float)((double)v * (double)scale);
            const float centred = (float)((double)scaled - (double)mean[c]);
            t[(size_t)c * 256 + v] = (float)((double)centred / (double)stdv[c]);
        }
    return t;
}

std::vector<float> normalize_table_torchvision() {
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    std::vector<float> t(3 * 256);
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            const float scaled = (float)((double)v / 255.0);  // ToTensor: x.float().div(255)
            const float centred = (float)((double)scaled - (double)mean[c]);
            t[(size_t)c * 256 + v] = (float)((double)centred / (double)stdv[c]);
        }
    return t;
}

void normalize_hwc_to_chw(const uint8_t* hwc, int height, int width, PreprocessPipeline pipeline, float* chw) {
    static const std::vector<float> paddle = normalize_table_paddleclas();
    static const std::vector<float> torch = normalize_table_torchvision();
    const std::vector<float>& table = pipeline == PreprocessPipeline::paddleclas ? paddle : torch;
    const size_t plane = (size_t)height * width;
    for (int c = 0; c < 3; c++) {
        const float* tc = &table[(size_t)c * 256];
        float* dst = chw + c * plane;
        for (size_t i = 0; i < plane; i++) dst[i] = tc[hwc[i * 3 + c]];
    }
}

void preprocess_image(const ImageRGB8& image, const PreprocessOptions& options, float* out) {
    const std::vector<uint8_t> crop = preprocess_resize_crop(image, options);  // (crop, crop, 3)
    normalize_hwc_to_chw(crop.data(), options.crop, options.crop, options.pipeline, out);  // (3, crop, crop)
}

}  // namespace resnest
