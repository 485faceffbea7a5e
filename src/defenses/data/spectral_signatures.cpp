#include "aegis/defenses/data/spectral_signatures.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "aegis/core/error.h"
#include "defenses/data/internal/features.h"

namespace aegis {

nlohmann::json SpectralOptions::to_json() const {
  return {{"expected_fraction", expected_fraction_},
          {"min_separation", min_separation_},
          {"max_poison_fraction", max_poison_fraction_},
          {"min_class_size", min_class_size_}};
}

namespace {

// Best split of sorted 1-D values into two groups (exact two-means in 1-D):
// returns the split position and the between-group share of the variance.
std::pair<int64_t, double> split_1d(const torch::Tensor& sorted) {
  const int64_t n = sorted.size(0);
  torch::Tensor v = sorted.to(torch::kDouble);
  torch::Tensor cs = v.cumsum(0), cs2 = v.pow(2).cumsum(0);
  double total = cs[n - 1].item<double>(), total2 = cs2[n - 1].item<double>();
  double sst = total2 - total * total / double(n);
  if (sst <= 0) return {0, 0.0};
  torch::Tensor left_n = torch::arange(1, n, torch::kDouble);  // sizes of the left group 1..n-1
  torch::Tensor ls = cs.narrow(0, 0, n - 1), rs = total - ls;
  torch::Tensor between = ls.pow(2) / left_n + rs.pow(2) / (double(n) - left_n) - total * total / double(n);
  int64_t best = between.argmax().item<int64_t>();
  return {best + 1, between[best].item<double>() / sst};
}

}  // namespace

SuspectReport spectral_signatures(ScriptClassifier& model, const Dataset& data, const SpectralOptions& o) {
  AEGIS_CHECK(o.expected_fraction_ >= 0 && o.expected_fraction_ < 1, InvalidArgument,
              "expected fraction must be in [0, 1), got " << o.expected_fraction_);
  AEGIS_CHECK(o.min_separation_ > 0 && o.min_separation_ < 1, InvalidArgument,
              "min separation must be in (0, 1), got " << o.min_separation_);
  AEGIS_CHECK(o.max_poison_fraction_ > 0 && o.max_poison_fraction_ < 1, InvalidArgument,
              "max poison fraction must be in (0, 1), got " << o.max_poison_fraction_);
  torch::Tensor feats = internal::dataset_features(model, data, o.batch_size_).to(torch::kDouble);
  SuspectReport r;
  r.method = "spectral-signatures";
  r.samples = data.size();
  r.details["options"] = o.to_json();
  nlohmann::json classes = nlohmann::json::array();
  const int64_t k = data.size() ? data.y.max().item<int64_t>() + 1 : 0;
  for (int64_t c = 0; c < k; ++c) {
    torch::Tensor idx = (data.y == c).nonzero().view(-1);
    const int64_t n = idx.size(0);
    nlohmann::json cj = {{"class", c}, {"samples", n}, {"flagged", 0}};
    if (n < o.min_class_size_) {
      cj["skipped"] = "fewer samples than min_class_size";
      classes.push_back(cj);
      continue;
    }
    torch::Tensor f = feats.index_select(0, idx);
    f = f - f.mean(0, true);
    auto [values, vectors] = torch::linalg::eigh(f.t().matmul(f), "L");
    torch::Tensor top = vectors.select(1, vectors.size(1) - 1);
    torch::Tensor proj = f.matmul(top);
    torch::Tensor score = proj.pow(2);
    auto [sorted, order] = proj.sort();
    auto [cut, separation] = split_1d(sorted);
    cj["separation"] = separation;
    std::vector<int64_t> flagged_local;
    if (o.expected_fraction_ > 0) {
      int64_t m = std::min<int64_t>(n, std::llround(1.5 * o.expected_fraction_ * double(n)));
      torch::Tensor top_idx = score.argsort(0, /*descending=*/true).narrow(0, 0, m);
      flagged_local.assign(top_idx.data_ptr<int64_t>(), top_idx.data_ptr<int64_t>() + m);
    } else {
      // Repeated on what remains: poison from several source classes can form
      // more than one group, each split off in its own round.
      torch::Tensor fc = feats.index_select(0, idx), rem = torch::arange(n, torch::kLong);
      nlohmann::json rounds = nlohmann::json::array();
      for (int64_t round = 0; round < o.max_rounds_ && rem.size(0) >= o.min_class_size_; ++round) {
        torch::Tensor g = fc.index_select(0, rem);
        g = g - g.mean(0, true);
        auto [gv, gvec] = torch::linalg::eigh(g.t().matmul(g), "L");
        auto [gs, gorder] = g.matmul(gvec.select(1, gvec.size(1) - 1)).sort();
        auto [gcut, gsep] = split_1d(gs);
        const int64_t m = rem.size(0), small = std::min(gcut, m - gcut);
        rounds.push_back({{"separation", gsep}, {"smaller_group_fraction", double(small) / double(m)}});
        if (gsep < o.min_separation_ || small == 0 ||
            double(int64_t(flagged_local.size()) + small) > o.max_poison_fraction_ * double(n))
          break;
        torch::Tensor part = (gcut <= m - gcut ? gorder.narrow(0, 0, gcut) : gorder.narrow(0, gcut, m - gcut));
        torch::Tensor picked = rem.index_select(0, part).contiguous();
        flagged_local.insert(flagged_local.end(), picked.data_ptr<int64_t>(), picked.data_ptr<int64_t>() + picked.size(0));
        torch::Tensor keep = torch::ones({m}, torch::kBool).index_fill_(0, part, false);
        rem = rem.index({keep});
      }
      cj["rounds"] = rounds;
    }
    auto ia = idx.accessor<int64_t, 1>();
    for (int64_t l : flagged_local)
      r.suspects.push_back(
          {ia[l], c, score[l].item<double>(), fmt::format("spectral-signature outlier in class {}", c)});
    cj["flagged"] = int64_t(flagged_local.size());
    classes.push_back(cj);
  }
  std::sort(r.suspects.begin(), r.suspects.end(), [](const Suspect& a, const Suspect& b) { return a.index < b.index; });
  r.details["classes"] = classes;
  return r;
}

}  // namespace aegis
