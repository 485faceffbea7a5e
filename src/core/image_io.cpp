#include "aegis/core/image_io.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "aegis/core/error.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace aegis {

void write_png(const std::string& path, const torch::Tensor& image_in, double lo, double hi) {
  AEGIS_CHECK(image_in.defined() && (image_in.dim() == 2 || image_in.dim() == 3), InvalidArgument,
              "write_png: image must be [C, H, W] or [H, W]");
  AEGIS_CHECK(hi > lo, InvalidArgument, "write_png: empty value range");
  torch::Tensor img = image_in.dim() == 2 ? image_in.unsqueeze(0) : image_in;
  const int64_t c = img.size(0), h = img.size(1), w = img.size(2);
  AEGIS_CHECK(c == 1 || c == 3, InvalidArgument, "write_png: 1 or 3 channels, got " << c);
  AEGIS_CHECK(h > 0 && w > 0, InvalidArgument, "write_png: empty image");
  torch::Tensor bytes = ((img.detach().to(torch::kFloat).cpu() - lo) / (hi - lo) * 255.0)
                            .round()
                            .clamp(0, 255)
                            .to(torch::kUInt8)
                            .permute({1, 2, 0})
                            .contiguous();
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    AEGIS_CHECK(!ec, Io, "cannot create " << parent.string() << ": " << ec.message());
  }
  int ok = stbi_write_png(path.c_str(), int(w), int(h), int(c), bytes.data_ptr<uint8_t>(), int(w * c));
  AEGIS_CHECK(ok != 0, Io, "cannot write PNG '" << path << "'");
}

namespace {

/// Pixels stb_easy_font covers for `lines` (one string per line), drawn at
/// `scale` times its native size: a [H, W] float mask of 0 and 1.
torch::Tensor text_mask(const std::vector<std::string>& lines, int64_t scale) {
  const int64_t line_h = 12;
  int64_t w = 1;
  for (std::string s : lines) w = std::max<int64_t>(w, stb_easy_font_width(s.data()));  // stb takes char*
  const int64_t h = std::max<int64_t>(line_h * int64_t(lines.size()), 1);
  torch::Tensor mask = torch::zeros({h * scale, w * scale});
  auto m = mask.accessor<float, 2>();
  std::vector<char> quads(size_t(64) * 1024);
  unsigned char color[4] = {255, 255, 255, 255};
  for (size_t li = 0; li < lines.size(); ++li) {
    std::string s = lines[li];
    const int n = stb_easy_font_print(0, float(int64_t(li) * line_h), s.data(), color, quads.data(), int(quads.size()));
    for (int q = 0; q < n; ++q) {  // each quad: 4 vertices of (x, y, z floats, 4 colour bytes)
      const float* v0 = reinterpret_cast<const float*>(quads.data() + size_t(q) * 64);
      const float* v2 = reinterpret_cast<const float*>(quads.data() + size_t(q) * 64 + 32);
      const int64_t x0 = int64_t(v0[0]) * scale, y0 = int64_t(v0[1]) * scale;
      const int64_t x1 = int64_t(v2[0]) * scale, y1 = int64_t(v2[1]) * scale;
      for (int64_t y = std::max<int64_t>(y0, 0); y < std::min<int64_t>(y1, mask.size(0)); ++y)
        for (int64_t x = std::max<int64_t>(x0, 0); x < std::min<int64_t>(x1, mask.size(1)); ++x) m[y][x] = 1.0f;
    }
  }
  return mask;
}

}  // namespace

torch::Tensor image_grid(const std::vector<torch::Tensor>& columns, double lo, double hi, int64_t scale,
                         const std::vector<std::vector<std::string>>& captions) {
  AEGIS_CHECK(!columns.empty(), InvalidArgument, "image grid: no columns");
  AEGIS_CHECK(scale >= 1 && scale <= 16, InvalidArgument, "image grid: scale must be in [1, 16]");
  const auto shape = columns[0].sizes();
  AEGIS_CHECK(columns[0].dim() == 4, InvalidArgument, "image grid: columns must be [N, C, H, W]");
  for (const auto& c : columns) AEGIS_CHECK(c.sizes() == shape, InvalidArgument, "image grid: columns differ in shape");
  const int64_t n = shape[0], ch = shape[1], h = shape[2] * scale, w = shape[3] * scale, gap = 2;
  const int64_t k = int64_t(columns.size());
  AEGIS_CHECK(captions.empty() || int64_t(captions.size()) == n, InvalidArgument,
              "image grid: " << captions.size() << " captions for " << n << " rows");
  // Captions go to the right of each row, dark on the grid's white, at a text
  // size that fits the row (at least stb_easy_font's native 12-pixel lines).
  std::vector<torch::Tensor> masks;
  int64_t caption_w = 0;
  for (const auto& lines : captions) {
    const int64_t fit = std::max<int64_t>(1, h / std::max<int64_t>(12 * int64_t(lines.size()), 1));
    masks.push_back(text_mask(lines, std::min<int64_t>(fit, 2)));
    caption_w = std::max(caption_w, masks.back().size(1) + 2 * gap);
  }
  torch::Tensor grid = torch::ones({ch, n * h + (n + 1) * gap, k * w + (k + 1) * gap + caption_w});
  for (int64_t i = 0; i < int64_t(masks.size()); ++i) {
    const torch::Tensor& mk = masks[size_t(i)];
    const int64_t mh = std::min<int64_t>(mk.size(0), h), top = gap + i * (h + gap) + (h - mh) / 2;
    torch::Tensor area = grid.narrow(1, top, mh).narrow(2, k * (w + gap) + 2 * gap, mk.size(1));
    area.copy_((1 - mk.narrow(0, 0, mh)).unsqueeze(0).expand_as(area));
  }
  for (int64_t j = 0; j < k; ++j) {
    torch::Tensor col = ((columns[size_t(j)].detach().to(torch::kFloat).cpu() - lo) / (hi - lo)).clamp(0, 1);
    if (scale > 1) col = col.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
    for (int64_t i = 0; i < n; ++i)
      grid.narrow(1, gap + i * (h + gap), h).narrow(2, gap + j * (w + gap), w).copy_(col[i]);
  }
  return grid;
}

void write_image_grid(const std::string& path, const std::vector<torch::Tensor>& columns, double lo, double hi,
                      int64_t scale, const std::vector<std::vector<std::string>>& captions) {
  write_png(path, image_grid(columns, lo, hi, scale, captions), 0.0, 1.0);
}

torch::Tensor tile_images(const torch::Tensor& images, const ImageGridOptions& o) {
  AEGIS_CHECK(images.defined() && images.dim() == 4, InvalidArgument,
              "tiled images must be [N, C, H, W], got " << (images.defined() ? images.dim() : 0) << " dims");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  AEGIS_CHECK(n >= 1 && h >= 1 && w >= 1, InvalidArgument, "tiling needs at least one non-empty image");
  AEGIS_CHECK(c == 1 || c == 3, InvalidArgument, "images must have 1 or 3 channels, got " << c);
  AEGIS_CHECK(o.padding_ >= 0 && o.padding_ <= 64, InvalidArgument, "padding must be in [0, 64], got " << o.padding_);
  AEGIS_CHECK(o.scale_ >= 1 && o.scale_ <= 16, InvalidArgument, "scale must be in [1, 16], got " << o.scale_);
  AEGIS_CHECK(o.columns_ >= 0, InvalidArgument, "columns must be >= 0, got " << o.columns_);
  AEGIS_CHECK(std::isfinite(o.lo_) && std::isfinite(o.hi_) && o.hi_ > o.lo_, InvalidArgument,
              "image range must have hi > lo, got [" << o.lo_ << ", " << o.hi_ << "]");
  const int64_t cols = o.columns_ > 0 ? std::min(o.columns_, n) : int64_t(std::ceil(std::sqrt(double(n))));
  const int64_t rows = (n + cols - 1) / cols;
  torch::Tensor px = torch::nan_to_num(((images.detach().to(torch::kFloat).cpu() - o.lo_) / (o.hi_ - o.lo_)), 0.0)
                         .clamp(0, 1);
  if (o.scale_ > 1) px = px.repeat_interleave(o.scale_, 2).repeat_interleave(o.scale_, 3);
  const int64_t sh = h * o.scale_, sw = w * o.scale_, p = o.padding_;
  torch::Tensor grid = torch::zeros({c, rows * sh + (rows + 1) * p, cols * sw + (cols + 1) * p});
  for (int64_t i = 0; i < n; ++i)
    grid.narrow(1, p + (i / cols) * (sh + p), sh).narrow(2, p + (i % cols) * (sw + p), sw).copy_(px[i]);
  return grid;
}

void write_tiled_png(const std::string& path, const torch::Tensor& images, const ImageGridOptions& options) {
  write_png(path, tile_images(images, options), 0.0, 1.0);
}

torch::Tensor amplify_perturbation(const torch::Tensor& delta) {
  torch::Tensor d = delta.detach().to(torch::kFloat);
  std::vector<int64_t> view(size_t(d.dim()), 1);
  view[0] = d.size(0);
  torch::Tensor m = d.flatten(1).abs().amax(1).clamp_min(1e-12).view(view);
  return (0.5 + d / (2 * m)).clamp(0, 1);
}

}  // namespace aegis
