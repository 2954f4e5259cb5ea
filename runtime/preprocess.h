// preprocess.h: from a decoded RGB image to the model's input tensor, (3, crop, crop) float32 CHW.
//
// paddleclas (default): PaddleClas's inference pipeline (spec §7), reproduced to the bit:
//   ResizeImage(resize_short=256): percent = 256 / min(w, h); new = int(round(side * percent)) with
//     round-half-to-even on doubles; cv2.resize(INTER_LINEAR): half-pixel centres, OpenCV's 11-bit
//     fixed-point weights and integer rounding (resize_bilinear_opencv_fixed_point), no antialiasing;
//   CropImage(224): centre crop at ((new_w - 224) // 2, (new_h - 224) // 2);
//   NormalizeImage: (x * float32(1/255) - mean) / std in float32, mean (0.485, 0.456, 0.406),
//     std (0.229, 0.224, 0.225), RGB order; ToCHWImage.
// timm / timm-bicubic: timm's eval transform for resnest50d (crop_pct 0.875): torchvision
//   Resize(256) on a PIL image (short side 256, long side int(256 * long / short)), Pillow's antialiased
//   bilinear or bicubic convolution (resize_pil_convolution_fixed_point), CenterCrop(224) at
//   int(round((new - 224) / 2.0)), ToTensor (x / 255) and Normalize in float32.
//
// Only the crop window of the resized image is computed: each output pixel depends only on its own
// coordinates, so the window equals the crop of the full resize, without allocating the full resize
// (a 1 x 4000 image resizes to 256 x 1024000).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "image.h"

namespace resnest {

enum class PreprocessPipeline { paddleclas, timm_bilinear, timm_bicubic };

const char* preprocess_pipeline_name(PreprocessPipeline p);  // "paddleclas", "timm", "timm-bicubic"
// Throws resnest::Error listing the accepted names.
PreprocessPipeline parse_preprocess_pipeline(const std::string& name);

struct PreprocessOptions {
    PreprocessPipeline pipeline = PreprocessPipeline::paddleclas;
    int resize_short = 256;  // the short side after resizing
    int crop = 224;          // the side of the centre crop: the model's input size
};

// The short-side resize and the crop's top-left corner in the resized image.
struct ResizeCropGeometry {
    int64_t resized_width = 0;
    int64_t resized_height = 0;
    int64_t crop_x = 0;
    int64_t crop_y = 0;
};

// PaddleClas's ResizeImage(resize_short) + CropImage(crop) on a width x height image.
ResizeCropGeometry paddleclas_resize_crop_geometry(int64_t width, int64_t height, int resize_short, int crop);
// torchvision's Resize(resize_short) + CenterCrop(crop), as timm's eval transform uses them.
ResizeCropGeometry torchvision_resize_crop_geometry(int64_t width, int64_t height, int resize_short, int crop);

// Rows [y0, y0 + out_h) and columns [x0, x0 + out_w) of cv2.resize(src, (dst_w, dst_h), INTER_LINEAR) on
// 8-bit RGB, (out_h, out_w, 3). OpenCV's arithmetic: sx = float((dx + 0.5) * (1 / (dst_w / src_w)) - 0.5);
// x weights round((1 - f) * 2048), round(f * 2048) with f clamped to 0 at the borders; y weights from the
// unclamped f with rows clamped to the image; a horizontal pass into int, then a vertical pass
// ((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2. An exact 2x reduction in both directions is
// OpenCV's INTER_AREA fast path, the rounded mean of each 2x2 block; equal sizes are a copy.
std::vector<uint8_t> resize_bilinear_opencv_fixed_point(const ImageRGB8& src, int64_t dst_w, int64_t dst_h,
                                                        int64_t x0, int64_t y0, int out_w, int out_h);

enum class PilFilter { bilinear, bicubic };

// The same window of Pillow's Image.resize((dst_w, dst_h), BILINEAR or BICUBIC) on 8-bit RGB: a separable
// convolution whose support widens with the reduction factor (antialiasing), coefficients normalised in
// double and quantised to 22 fractional bits, horizontal pass first into 8 bits, then the vertical pass.
std::vector<uint8_t> resize_pil_convolution_fixed_point(const ImageRGB8& src, PilFilter filter, int64_t dst_w,
                                                        int64_t dst_h, int64_t x0, int64_t y0, int out_w, int out_h);

// The resized, centre-cropped image, (crop, crop, 3) uint8 RGB, before normalisation. Throws
// resnest::Error when resize_short < crop or either is not positive.
std::vector<uint8_t> preprocess_resize_crop(const ImageRGB8& image, const PreprocessOptions& options);

// Normalisation tables, (3, 256): the float32 value each 8-bit sample of each channel becomes.
// paddleclas: float32(float32(float32(x * float32(1/255)) - mean) / std); torchvision: x / 255 first.
std::vector<float> normalize_table_paddleclas();
std::vector<float> normalize_table_torchvision();

// (crop, crop, 3) uint8 HWC -> (3, crop, crop) float32 CHW through the pipeline's table.
void normalize_hwc_to_chw(const uint8_t* hwc, int height, int width, PreprocessPipeline pipeline, float* chw);

// Everything: (3, crop, crop) float32 written to `out`.
void preprocess_image(const ImageRGB8& image, const PreprocessOptions& options, float* out);

}  // namespace resnest
