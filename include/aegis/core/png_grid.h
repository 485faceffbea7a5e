#pragma once
/// PNG output for reports: one image, or a grid of images (adversarial
/// examples, model-inversion reconstructions, saliency maps). Written with
/// Debian's libstb (stb_image_write); values are mapped from the model's
/// valid range [lo, hi] to 0..255.
///
///   write_png(x[0], "sample.png");                                  // [C, H,
///   W] write_png_grid(batch, "grid.png",
///   ImageGridOptions().columns(8).scale(2));

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace aegis {

struct ImageGridOptions {
  int64_t columns_ = 0;  ///< images per row; 0 = ceil(sqrt(N))
  int64_t padding_ = 2;  ///< pixels between images (background 0), >= 0
  int64_t scale_ = 1;    ///< nearest-neighbour upscaling, in [1, 16]
  double lo_ = 0.0,
         hi_ = 1.0;  ///< value range mapped to 0..255 (clipped outside)
  ImageGridOptions& columns(int64_t v) { columns_ = v; return *this; }
  ImageGridOptions& padding(int64_t v) { padding_ = v; return *this; }
  ImageGridOptions& scale(int64_t v) { scale_ = v; return *this; }
  ImageGridOptions& range(double lo, double hi) { lo_ = lo; hi_ = hi; return *this; }
};

/// Writes one image [C, H, W] (C = 1 grey, 3 RGB) or [H, W] as PNG. Throws
/// InvalidArgument for other shapes or an empty range, Io when the file
/// cannot be written. Creates parent directories.
void write_png(const torch::Tensor& image, const std::string& path, double lo = 0.0, double hi = 1.0);

/// Writes images [N, C, H, W] (C = 1 or 3) tiled into one PNG.
void write_png_grid(const torch::Tensor& images, const std::string& path, const ImageGridOptions& options = {});

/// The grid as an 8-bit tensor [H', W', C] (what write_png_grid writes).
torch::Tensor image_grid(const torch::Tensor& images, const ImageGridOptions& options = {});

}  // namespace aegis
