#include "aegis/explain/surrogate_tree.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <sstream>

#include "aegis/core/error.h"

namespace aegis {

void SurrogateTreeOptions::validate() const {
  AEGIS_CHECK(max_depth_ >= 1, InvalidArgument, "the tree's max depth must be >= 1, got " << max_depth_);
  AEGIS_CHECK(min_samples_leaf_ >= 1, InvalidArgument, "min samples per leaf must be >= 1, got " << min_samples_leaf_);
  AEGIS_CHECK(bins_ >= 2 && bins_ <= 256, InvalidArgument, "bins must be in [2, 256], got " << bins_);
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "the batch size must be >= 1, got " << batch_size_);
}

nlohmann::json SurrogateTreeOptions::to_json() const {
  return {{"max_depth", max_depth_}, {"min_samples_leaf", min_samples_leaf_}, {"bins", bins_}};
}

namespace {

/// Candidate thresholds of one feature from its sorted values: the midpoints
/// between consecutive distinct values when there are at most `bins` of them,
/// else the values at `bins - 1` evenly spaced quantiles (distinct ones).
std::vector<float> thresholds_of(const float* sorted, int64_t n, int64_t bins) {
  std::vector<float> distinct;
  for (int64_t i = 0; i < n; ++i)
    if (distinct.empty() || sorted[i] != distinct.back()) distinct.push_back(sorted[i]);
  std::vector<float> t;
  if (int64_t(distinct.size()) <= bins) {
    for (size_t i = 0; i + 1 < distinct.size(); ++i) t.push_back(0.5f * (distinct[i] + distinct[i + 1]));
    return t;
  }
  for (int64_t k = 1; k < bins; ++k) {
    const float v = sorted[k * n / bins];
    if (v < distinct.back() && (t.empty() || v > t.back())) t.push_back(v);
  }
  return t;
}

struct Builder {
  const uint8_t* bins;  // [N, F] bin of each value
  const int64_t* y;
  int64_t F, C, B;  // features, classes, max bins
  const std::vector<std::vector<float>>& thresholds;
  const SurrogateTreeOptions& o;
  std::vector<TreeNode>& nodes;
  std::vector<int32_t> hist;  // [F, B, C], reused

  int64_t grow(std::vector<int32_t>& idx, int64_t depth) {
    const int64_t n = int64_t(idx.size());
    std::vector<int64_t> counts(C, 0);
    for (int32_t i : idx) ++counts[y[i]];
    const int64_t label = std::max_element(counts.begin(), counts.end()) - counts.begin();
    TreeNode node;
    node.label = label;
    node.samples = n;
    node.purity = n ? double(counts[label]) / double(n) : 0.0;
    node.depth = depth;
    const int64_t id = int64_t(nodes.size());
    nodes.push_back(node);
    if (depth >= o.max_depth_ || counts[label] == n || n < 2 * o.min_samples_leaf_) return id;

    // Class histograms of every feature's bins over the node's samples.
    std::fill(hist.begin(), hist.end(), 0);
    for (int32_t i : idx) {
      const uint8_t* row = bins + int64_t(i) * F;
      const int64_t c = y[i];
      for (int64_t f = 0; f < F; ++f) ++hist[(f * B + row[f]) * C + c];
    }
    // Gini: minimise sum over sides of (n_side - sum_c n_c^2 / n_side).
    double parent = double(n);
    for (int64_t c = 0; c < C; ++c) parent -= double(counts[c]) * double(counts[c]) / double(n);
    double best = parent - 1e-9;
    int64_t best_f = -1, best_j = -1;
    std::vector<int64_t> left(C);
    for (int64_t f = 0; f < F; ++f) {
      const int64_t nt = int64_t(thresholds[f].size());
      if (nt == 0) continue;
      std::fill(left.begin(), left.end(), 0);
      int64_t nl = 0;
      for (int64_t j = 0; j < nt; ++j) {  // split j: bins 0..j go left
        const int32_t* h = &hist[(f * B + j) * C];
        for (int64_t c = 0; c < C; ++c) {
          left[c] += h[c];
          nl += h[c];
        }
        const int64_t nr = n - nl;
        if (nl < o.min_samples_leaf_) continue;
        if (nr < o.min_samples_leaf_) break;
        double sl = 0, sr = 0;
        for (int64_t c = 0; c < C; ++c) {
          sl += double(left[c]) * double(left[c]);
          const double r = double(counts[c] - left[c]);
          sr += r * r;
        }
        const double g = double(nl) - sl / double(nl) + double(nr) - sr / double(nr);
        if (g < best) {
          best = g;
          best_f = f;
          best_j = j;
        }
      }
    }
    if (best_f < 0) return id;
    std::vector<int32_t> l, r;
    for (int32_t i : idx) (bins[int64_t(i) * F + best_f] <= best_j ? l : r).push_back(i);
    std::vector<int32_t>().swap(idx);  // the parent's indices are no longer needed
    nodes[id].feature = best_f;
    nodes[id].threshold = thresholds[best_f][best_j];
    const int64_t li = grow(l, depth + 1);
    nodes[id].left = li;
    const int64_t ri = grow(r, depth + 1);
    nodes[id].right = ri;
    return id;
  }
};

}  // namespace

SurrogateTree SurrogateTree::fit(const torch::Tensor& x, const torch::Tensor& labels, int64_t classes,
                                 const SurrogateTreeOptions& o) {
  o.validate();
  AEGIS_CHECK(x.dim() >= 2 && labels.dim() == 1 && x.size(0) == labels.size(0) && x.size(0) > 0, InvalidArgument,
              "the tree needs samples [N, ...] and labels [N], N > 0");
  AEGIS_CHECK(x.size(0) < (int64_t(1) << 31), InvalidArgument, "too many samples for the tree (at most 2^31 - 1)");
  AEGIS_CHECK(classes >= 2, InvalidArgument, "the tree needs at least 2 classes");
  torch::Tensor X = x.flatten(1).to(torch::kFloat).contiguous();
  torch::Tensor Y = labels.to(torch::kLong).contiguous();
  AEGIS_CHECK(torch::isfinite(X).all().item<bool>(), InvalidArgument, "samples contain NaN or Inf");
  AEGIS_CHECK(Y.min().item<int64_t>() >= 0 && Y.max().item<int64_t>() < classes, InvalidArgument,
              "labels must be in [0, " << classes << ")");
  const int64_t N = X.size(0), F = X.size(1);

  // Per feature: candidate thresholds from the sorted column, then each
  // value's bin (bucketize: bin j holds t[j-1] < v <= t[j]).
  torch::Tensor columns = X.t().contiguous();  // [F, N]
  torch::Tensor sorted = std::get<0>(columns.sort(1));
  std::vector<std::vector<float>> thresholds(F);
  torch::Tensor binned = torch::empty({F, N}, torch::kUInt8);
  for (int64_t f = 0; f < F; ++f) {
    thresholds[f] = thresholds_of(sorted[f].data_ptr<float>(), N, o.bins_);
    if (thresholds[f].empty()) {
      binned[f].zero_();
      continue;
    }
    torch::Tensor t = torch::tensor(thresholds[f]);
    binned[f].copy_(torch::bucketize(columns[f], t, /*out_int32=*/true, /*right=*/false));
  }
  binned = binned.t().contiguous();  // [N, F]: one sample's bins together

  SurrogateTree tree;
  Builder b{binned.data_ptr<uint8_t>(), Y.data_ptr<int64_t>(), F, classes, o.bins_, thresholds, o, tree.nodes_, {}};
  b.hist.assign(size_t(F * o.bins_ * classes), 0);
  std::vector<int32_t> all(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) all[size_t(i)] = int32_t(i);
  b.grow(all, 0);
  return tree;
}

torch::Tensor SurrogateTree::predict(const torch::Tensor& x, int64_t depth) const {
  AEGIS_CHECK(!nodes_.empty(), InvalidArgument, "the tree is not fitted");
  torch::Tensor X = x.flatten(1).to(torch::kFloat).contiguous();
  const int64_t N = X.size(0), F = X.size(1);
  const float* p = X.data_ptr<float>();
  torch::Tensor out = torch::empty({N}, torch::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) {
    int64_t k = 0;
    while (nodes_[size_t(k)].feature >= 0 && (depth < 0 || nodes_[size_t(k)].depth < depth)) {
      const TreeNode& n = nodes_[size_t(k)];
      AEGIS_CHECK(n.feature < F, ShapeMismatch, "the tree was fitted on more features than the samples have");
      k = p[i * F + n.feature] <= n.threshold ? n.left : n.right;
    }
    o[i] = nodes_[size_t(k)].label;
  }
  return out;
}

int64_t SurrogateTree::depth() const {
  int64_t d = 0;
  for (const auto& n : nodes_) d = std::max(d, n.depth);
  return d;
}

int64_t SurrogateTree::leaves() const {
  return std::count_if(nodes_.begin(), nodes_.end(), [](const TreeNode& n) { return n.feature < 0; });
}

std::string SurrogateTree::rules(const std::vector<int64_t>& shape, const std::vector<std::string>& class_names,
                                 int64_t max_depth) const {
  auto feature = [&](int64_t f) {
    if (shape.size() == 3) {
      const int64_t hw = shape[1] * shape[2], c = f / hw, r = (f % hw) / shape[2], col = f % shape[2];
      return shape[0] == 1 ? fmt::format("pixel ({}, {})", r, col)
                           : fmt::format("channel {} pixel ({}, {})", c, r, col);
    }
    if (shape.size() == 2) return fmt::format("pixel ({}, {})", f / shape[1], f % shape[1]);
    return fmt::format("x[{}]", f);
  };
  auto cls = [&](int64_t c) {
    return c < int64_t(class_names.size()) ? fmt::format("{} ({})", class_names[size_t(c)], c) : std::to_string(c);
  };
  std::ostringstream s;
  std::function<void(int64_t, int)> walk = [&](int64_t k, int indent) {
    const TreeNode& n = nodes_[size_t(k)];
    const std::string pad(size_t(indent) * 2, ' ');
    if (n.feature < 0 || (max_depth >= 0 && n.depth >= max_depth)) {
      s << pad
        << fmt::format("-> class {}  ({} samples, {:.0f} in 100 agree)\n", cls(n.label), n.samples, 100 * n.purity);
      return;
    }
    s << pad << fmt::format("if {} <= {:.4g}:\n", feature(n.feature), n.threshold);
    walk(n.left, indent + 1);
    s << pad << "else:\n";
    walk(n.right, indent + 1);
  };
  if (!nodes_.empty()) walk(0, 0);
  return s.str();
}

nlohmann::json SurrogateTree::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& n : nodes_)
    a.push_back({{"feature", n.feature},
                 {"threshold", n.threshold},
                 {"left", n.left},
                 {"right", n.right},
                 {"label", n.label},
                 {"samples", n.samples},
                 {"purity", n.purity},
                 {"depth", n.depth}});
  return {{"nodes", a}, {"depth", depth()}, {"leaves", leaves()}};
}

nlohmann::json SurrogateTreeResult::to_json() const {
  return {{"fidelity_by_depth", fidelity_by_depth},
          {"train_fidelity_by_depth", train_fidelity_by_depth},
          {"accuracy_by_depth", accuracy_by_depth},
          {"model_accuracy", model_accuracy},
          {"fit_samples", fit_samples},
          {"held_out_samples", held_out_samples},
          {"depth", tree.depth()},
          {"leaves", tree.leaves()},
          {"seconds", seconds}};
}

namespace {

torch::Tensor predictions(Classifier& model, const torch::Tensor& x, int64_t batch) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += batch)
    out.push_back(model.predict(x.narrow(0, i, std::min(batch, x.size(0) - i))));
  return torch::cat(out);
}

}  // namespace

SurrogateTreeResult fit_surrogate_tree(Classifier& model, const Dataset& fit, const Dataset& held_out,
                                       const SurrogateTreeOptions& o) {
  o.validate();
  AEGIS_CHECK(fit.size() > 0 && held_out.size() > 0, InvalidArgument,
              "the surrogate tree needs fitting and held-out samples");
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor fit_pred = predictions(model, fit.x, o.batch_size_);
  torch::Tensor held_pred = predictions(model, held_out.x, o.batch_size_);
  SurrogateTreeResult r;
  r.tree = SurrogateTree::fit(fit.x, fit_pred, model.meta().num_classes, o);
  r.fit_samples = fit.size();
  r.held_out_samples = held_out.size();
  r.model_accuracy = held_pred.eq(held_out.y).to(torch::kDouble).mean().item<double>();
  for (int64_t d = 0; d <= r.tree.depth(); ++d) {
    torch::Tensor h = r.tree.predict(held_out.x, d);
    r.fidelity_by_depth.push_back(h.eq(held_pred).to(torch::kDouble).mean().item<double>());
    r.accuracy_by_depth.push_back(h.eq(held_out.y).to(torch::kDouble).mean().item<double>());
    r.train_fidelity_by_depth.push_back(r.tree.predict(fit.x, d).eq(fit_pred).to(torch::kDouble).mean().item<double>());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
