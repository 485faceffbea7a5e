#pragma once
/// Images in and out, through stb (Debian's libstb): PNG encoding of a
/// tensor image (for reports), decoding of PNG/JPEG files (for tests and
/// tools), and base64 for data URIs.
///
///   std::string png = encode_png(x[0], /*lo=*/0, /*hi=*/1);      // [C,H,W] or
///   [H,W] std::string uri = "data:image/png;base64," + base64_encode(png);

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aegis {

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
