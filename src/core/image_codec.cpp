// encode_png and decode_image_file (declared in image_io.h), through
// Debian's compiled libstb; image_io.cpp holds the file writers.
#include "aegis/core/image_io.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <filesystem>

#include "aegis/core/error.h"

namespace aegis {

namespace {

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

}  // namespace

std::string encode_png(const torch::Tensor& image, double lo, double hi, int scale) {
  AEGIS_CHECK(image.defined(), InvalidArgument, "encode_png: no image");
  AEGIS_CHECK(hi > lo, InvalidArgument, "encode_png: empty value range [" << lo << ", " << hi << "]");
  AEGIS_CHECK(scale >= 1 && scale <= 16, InvalidArgument, "encode_png: scale must be in [1, 16], got " << scale);
  torch::Tensor t = image.detach().to(torch::kCPU, torch::kDouble);
  if (t.dim() == 2) t = t.unsqueeze(0);
  AEGIS_CHECK(t.dim() == 3 && (t.size(0) == 1 || t.size(0) == 3) && t.size(1) > 0 && t.size(2) > 0, InvalidArgument,
              "encode_png: expected [H, W], [1, H, W] or [3, H, W], got " << image.sizes());
  t = ((t - lo) / (hi - lo)).clamp(0, 1).mul(255).round().to(torch::kUInt8);
  if (scale > 1) t = t.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
  const int c = int(t.size(0)), h = int(t.size(1)), w = int(t.size(2));
  torch::Tensor hwc = t.permute({1, 2, 0}).contiguous();
  std::string out;
  int ok = stbi_write_png_to_func(&append_bytes, &out, w, h, c, hwc.data_ptr<uint8_t>(), w * c);
  AEGIS_CHECK(ok, Internal, "encode_png: stb failed to encode a " << w << "x" << h << " image");
  return out;
}

DecodedImage decode_image_file(const std::string& path) {
  AEGIS_CHECK(std::filesystem::exists(path), NotFound, "image " << path << " not found");
  DecodedImage img;
  unsigned char* data = stbi_load(path.c_str(), &img.width, &img.height, &img.channels, 0);
  AEGIS_CHECK(data, CorruptData, "image " << path << " cannot be decoded: " << stbi_failure_reason());
  img.pixels.assign(data, data + size_t(img.width) * img.height * img.channels);
  stbi_image_free(data);
  return img;
}

// base64_encode is defined once, in src/integrity/signature_bundle.cpp (standard alphabet, padded).

}  // namespace aegis
