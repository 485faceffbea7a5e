#include "aegis/core/png_grid.h"

#include <stb/stb_image_write.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "aegis/core/error.h"

namespace aegis {

torch::Tensor image_grid(const torch::Tensor& images, const ImageGridOptions& o) {
  AEGIS_CHECK(images.defined() && images.dim() == 4, InvalidArgument,
              "image grid needs [N, C, H, W] images, got " << (images.defined() ? images.dim() : 0) << " dims");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  AEGIS_CHECK(n >= 1 && h >= 1 && w >= 1, InvalidArgument, "image grid needs at least one non-empty image");
  AEGIS_CHECK(c == 1 || c == 3, InvalidArgument, "images must have 1 or 3 channels, got " << c);
  AEGIS_CHECK(o.padding_ >= 0 && o.padding_ <= 64, InvalidArgument, "padding must be in [0, 64], got " << o.padding_);
  AEGIS_CHECK(o.scale_ >= 1 && o.scale_ <= 16, InvalidArgument, "scale must be in [1, 16], got " << o.scale_);
  AEGIS_CHECK(o.columns_ >= 0, InvalidArgument, "columns must be >= 0, got " << o.columns_);
  AEGIS_CHECK(std::isfinite(o.lo_) && std::isfinite(o.hi_) && o.hi_ > o.lo_, InvalidArgument,
              "image range must have hi > lo, got [" << o.lo_ << ", " << o.hi_ << "]");
  const int64_t cols = o.columns_ > 0 ? std::min(o.columns_, n) : int64_t(std::ceil(std::sqrt(double(n))));
  const int64_t rows = (n + cols - 1) / cols;
  torch::Tensor px = ((images.detach().to(torch::kFloat).cpu() - o.lo_) / (o.hi_ - o.lo_)).clamp(0, 1);
  px = torch::nan_to_num(px, 0.0) * 255.0;
  px = px.round().to(torch::kUInt8);
  if (o.scale_ > 1) px = px.repeat_interleave(o.scale_, 2).repeat_interleave(o.scale_, 3);
  const int64_t sh = h * o.scale_, sw = w * o.scale_, p = o.padding_;
  torch::Tensor grid = torch::zeros({rows * sh + (rows + 1) * p, cols * sw + (cols + 1) * p, c}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / cols, col = i % cols;
    grid.narrow(0, p + r * (sh + p), sh).narrow(1, p + col * (sw + p), sw).copy_(px[i].permute({1, 2, 0}));
  }
  return grid.contiguous();
}

namespace {

void write_hwc(const torch::Tensor& hwc, const std::string& path) {
  std::filesystem::path fp(path);
  if (fp.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(fp.parent_path(), ec);
    AEGIS_CHECK(!ec, Io, "cannot create " << fp.parent_path().string() << ": " << ec.message());
  }
  const int h = int(hwc.size(0)), w = int(hwc.size(1)), c = int(hwc.size(2));
  int ok = stbi_write_png(path.c_str(), w, h, c, hwc.data_ptr<uint8_t>(), w * c);
  AEGIS_CHECK(ok != 0, Io, "cannot write PNG " << path);
}

}  // namespace

void write_png(const torch::Tensor& image, const std::string& path, double lo, double hi) {
  AEGIS_CHECK(image.defined() && (image.dim() == 2 || image.dim() == 3), InvalidArgument,
              "write_png needs a [C, H, W] or [H, W] image");
  torch::Tensor chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  write_hwc(image_grid(chw.unsqueeze(0), ImageGridOptions().padding(0).range(lo, hi)), path);
}

void write_png_grid(const torch::Tensor& images, const std::string& path, const ImageGridOptions& options) {
  write_hwc(image_grid(images, options), path);
}

}  // namespace aegis
