#include "aegis/explain/segmentation.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "aegis/core/error.h"

namespace aegis {

namespace {

/// 4-connected components of `labels` (H x W, row-major), relabelled 0..;
/// returns the number of components.
int64_t components(const std::vector<int64_t>& labels, int64_t h, int64_t w, std::vector<int64_t>& out) {
  out.assign(labels.size(), -1);
  int64_t next = 0;
  std::vector<int64_t> stack;
  for (int64_t start = 0; start < h * w; ++start) {
    if (out[size_t(start)] >= 0) continue;
    out[size_t(start)] = next;
    stack.push_back(start);
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      const int64_t r = p / w, c = p % w;
      const int64_t nb[4][2] = {{r - 1, c}, {r + 1, c}, {r, c - 1}, {r, c + 1}};
      for (const auto& q : nb) {
        if (q[0] < 0 || q[0] >= h || q[1] < 0 || q[1] >= w) continue;
        const int64_t qi = q[0] * w + q[1];
        if (out[size_t(qi)] < 0 && labels[size_t(qi)] == labels[size_t(p)]) {
          out[size_t(qi)] = next;
          stack.push_back(qi);
        }
      }
    }
    ++next;
  }
  return next;
}

}  // namespace

torch::Tensor slic(const torch::Tensor& image, const SlicOptions& o, double lo, double hi) {
  AEGIS_CHECK(image.dim() == 3 && image.size(1) >= 1 && image.size(2) >= 1, InvalidArgument,
              "superpixels need an image [C, H, W], got " << image.sizes());
  AEGIS_CHECK(o.segments_ >= 1, InvalidArgument, "superpixels: segments must be >= 1, got " << o.segments_);
  AEGIS_CHECK(o.compactness_ > 0, InvalidArgument, "superpixels: compactness must be > 0, got " << o.compactness_);
  AEGIS_CHECK(o.iterations_ >= 1, InvalidArgument, "superpixels: iterations must be >= 1, got " << o.iterations_);
  AEGIS_CHECK(hi > lo, InvalidArgument, "superpixels: empty value range");
  const int64_t ch = image.size(0), h = image.size(1), w = image.size(2), n = h * w;
  torch::Tensor img = ((image.to(torch::kDouble) - lo) / (hi - lo)).contiguous();
  const double* v = img.data_ptr<double>();  // [ch][h][w]
  auto val = [&](int64_t k, int64_t p) { return v[k * n + p]; };

  // Centres on a regular grid of step S.
  const double step = std::max(1.0, std::sqrt(double(n) / double(o.segments_)));
  std::vector<std::vector<double>> centres;  // [y, x, value per channel]
  for (double y = step / 2; y < double(h); y += step)
    for (double x = step / 2; x < double(w); x += step) {
      std::vector<double> c = {y, x};
      const int64_t p = int64_t(y) * w + int64_t(x);
      for (int64_t k = 0; k < ch; ++k) c.push_back(val(k, p));
      centres.push_back(std::move(c));
    }
  const double m2 = (o.compactness_ / step) * (o.compactness_ / step);
  std::vector<int64_t> label(size_t(n), 0);
  std::vector<double> best(static_cast<size_t>(n));
  for (int64_t it = 0; it < o.iterations_; ++it) {
    std::fill(best.begin(), best.end(), std::numeric_limits<double>::infinity());
    for (size_t c = 0; c < centres.size(); ++c) {
      const auto& cc = centres[c];
      const int64_t y0 = std::max<int64_t>(0, int64_t(cc[0] - step)),
                    y1 = std::min<int64_t>(h - 1, int64_t(cc[0] + step));
      const int64_t x0 = std::max<int64_t>(0, int64_t(cc[1] - step)),
                    x1 = std::min<int64_t>(w - 1, int64_t(cc[1] + step));
      for (int64_t y = y0; y <= y1; ++y)
        for (int64_t x = x0; x <= x1; ++x) {
          const int64_t p = y * w + x;
          double dc = 0;
          for (int64_t k = 0; k < ch; ++k) dc += (val(k, p) - cc[size_t(2 + k)]) * (val(k, p) - cc[size_t(2 + k)]);
          const double dy = double(y) - cc[0], dx = double(x) - cc[1];
          const double d = dc / double(ch) + m2 * (dy * dy + dx * dx);
          if (d < best[size_t(p)]) {
            best[size_t(p)] = d;
            label[size_t(p)] = int64_t(c);
          }
        }
    }
    // Pixels no window reached (none with these windows, but stay safe) keep their label.
    std::vector<std::vector<double>> sum(centres.size(), std::vector<double>(size_t(2 + ch), 0.0));
    std::vector<int64_t> count(centres.size(), 0);
    for (int64_t p = 0; p < n; ++p) {
      auto& s = sum[size_t(label[size_t(p)])];
      s[0] += double(p / w);
      s[1] += double(p % w);
      for (int64_t k = 0; k < ch; ++k) s[size_t(2 + k)] += val(k, p);
      ++count[size_t(label[size_t(p)])];
    }
    for (size_t c = 0; c < centres.size(); ++c)
      if (count[c] > 0)
        for (size_t j = 0; j < sum[c].size(); ++j) centres[c][j] = sum[c][j] / double(count[c]);
  }

  // Connectivity: split disconnected segments, merge fragments into a neighbour.
  std::vector<int64_t> comp;
  int64_t ncomp = components(label, h, w, comp);
  const int64_t min_size = std::max<int64_t>(1, int64_t(double(n) / double(centres.size()) / 4));
  for (;;) {
    std::vector<int64_t> size(size_t(ncomp), 0);
    for (int64_t p = 0; p < n; ++p) ++size[size_t(comp[size_t(p)])];
    // Each small component joins the first other component it touches in
    // scan order (union-find, so mutual choices merge instead of swapping).
    std::vector<int64_t> parent(static_cast<size_t>(ncomp));
    for (int64_t c = 0; c < ncomp; ++c) parent[size_t(c)] = c;
    auto root = [&](int64_t c) {
      while (parent[size_t(c)] != c) c = parent[size_t(c)] = parent[size_t(parent[size_t(c)])];
      return c;
    };
    std::vector<char> placed(size_t(ncomp), 0);
    bool merged = false;
    for (int64_t p = 0; p < n && ncomp > 1; ++p) {
      const int64_t c = comp[size_t(p)];
      if (size[size_t(c)] >= min_size || placed[size_t(c)]) continue;
      const int64_t r = p / w, cc = p % w;
      const int64_t nb[4][2] = {{r - 1, cc}, {r, cc - 1}, {r + 1, cc}, {r, cc + 1}};
      for (const auto& t : nb) {
        if (t[0] < 0 || t[0] >= h || t[1] < 0 || t[1] >= w) continue;
        const int64_t d = comp[size_t(t[0] * w + t[1])];
        if (d == c) continue;
        placed[size_t(c)] = 1;
        const int64_t a = root(c), b = root(d);
        if (a != b) parent[size_t(std::max(a, b))] = std::min(a, b);
        merged = true;
        break;
      }
    }
    if (!merged) break;
    std::vector<int64_t> joined(comp.size());
    for (size_t p = 0; p < comp.size(); ++p) joined[p] = root(comp[p]);
    ncomp = components(joined, h, w, comp);
  }
  torch::Tensor out = torch::empty({h, w}, torch::kLong);
  std::copy(comp.begin(), comp.end(), out.data_ptr<int64_t>());
  return out;
}

}  // namespace aegis
