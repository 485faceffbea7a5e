#pragma once
/// Images in and out, through stb (Debian's libstb-dev): PNG files of tensor
/// images for reports (adversarial examples beside their originals,
/// perturbations, saliency maps, model-inversion reconstructions), PNG bytes
/// and base64 for data URIs, decoding of PNG/JPEG files (tests and tools).
/// Values are mapped from [lo] (the model's valid range) to 0..255, clipped.
///
///   write_png("x.png", x[0]);                                        // [C, H, W]
///   write_image_grid("grid.png", {originals, adversarials, amplified}, 0, 1, 3);
///   write_tiled_png("inversions.png", recs, ImageGridOptions().columns(5).scale(2));
///   std::string uri = "data:image/png;base64," + base64_encode(encode_png(x[0]));

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aegis {

/// Writes one image, [C, H, W] (C = 1 or 3) or [H, W], mapping [lo, hi] to
/// 0..255 (values outside are clipped). Throws InvalidArgument on another
/// shape, Io when the file cannot be written.
void write_png(const std::string& path, const torch::Tensor& image, double lo = 0.0, double hi = 1.0);

/// A grid: one column per tensor of `columns` (each [N, C, H, W], same shape),
/// one row per sample, a 2-pixel gap, every image scaled up `scale` times
/// (nearest neighbour). `captions`, when given, holds one list of text lines
/// per row (ASCII), printed dark on white to the right of the row (e.g. the
/// true and the predicted class). Returns the grid as [C, H', W'] in [0, 1].
torch::Tensor image_grid(const std::vector<torch::Tensor>& columns, double lo = 0.0, double hi = 1.0, int64_t scale = 1,
                         const std::vector<std::vector<std::string>>& captions = {});
void write_image_grid(const std::string& path, const std::vector<torch::Tensor>& columns, double lo = 0.0,
                      double hi = 1.0, int64_t scale = 1, const std::vector<std::vector<std::string>>& captions = {});

struct ImageGridOptions {
  int64_t columns_ = 0;  ///< images per row; 0 = ceil(sqrt(N))
  int64_t padding_ = 2;  ///< pixels between images (background 0), in [0, 64]
  int64_t scale_ = 1;    ///< nearest-neighbour upscaling, in [1, 16]
  double lo_ = 0.0, hi_ = 1.0;  ///< value range mapped to 0..255 (clipped outside)
  ImageGridOptions& columns(int64_t v) { columns_ = v; return *this; }
  ImageGridOptions& padding(int64_t v) { padding_ = v; return *this; }
  ImageGridOptions& scale(int64_t v) { scale_ = v; return *this; }
  ImageGridOptions& range(double lo, double hi) { lo_ = lo; hi_ = hi; return *this; }
};

/// Images [N, C, H, W] (C = 1 or 3) tiled row by row: [C, H', W'] in [0, 1].
/// Throws InvalidArgument for other shapes, an empty range or bad options.
torch::Tensor tile_images(const torch::Tensor& images, const ImageGridOptions& options = {});
void write_tiled_png(const std::string& path, const torch::Tensor& images, const ImageGridOptions& options = {});

/// A perturbation made visible: 0.5 + delta / (2 max|delta|) per sample, in [0, 1].
torch::Tensor amplify_perturbation(const torch::Tensor& delta);
/// PNG bytes of an image tensor [H, W], [1, H, W] or [3, H, W] whose values
/// lie in [lo, hi] (clamped), scaled to 0..255. `scale` > 1 enlarges it by
/// pixel repetition. Throws InvalidArgument for other shapes.
std::string encode_png(const torch::Tensor& image, double lo = 0.0, double hi = 1.0, int scale = 1);

struct DecodedImage {
  int width = 0, height = 0, channels = 0;  ///< channels as stored in `pixels`
  std::vector<uint8_t> pixels;              ///< row-major, interleaved
};
/// Decodes a PNG/JPEG/BMP file to 8-bit pixels (channels as in the file).
/// Throws NotFound / CorruptData.
DecodedImage decode_image_file(const std::string& path);

std::string base64_encode(std::string_view bytes);

}  // namespace aegis
