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
          {"max_valley", max_valley_},
          {"max_poison_fraction", max_poison_fraction_},
          {"min_class_size", min_class_size_},
          {"max_rounds", max_rounds_}};
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

// Centred rows projected on their top singular vector (the spectral signature).
torch::Tensor top_projection(const torch::Tensor& f) {
  torch::Tensor g = f - f.mean(0, true);
  auto [values, vectors] = torch::linalg::eigh(g.t().matmul(g), "L");  // ascending
  return g.matmul(vectors.select(1, vectors.size(1) - 1));
}

}  // namespace

SuspectReport spectral_signatures(ScriptClassifier& model, const Dataset& data, const SpectralOptions& o) {
  AEGIS_CHECK(o.expected_fraction_ >= 0 && o.expected_fraction_ < 1, InvalidArgument,
              "expected fraction must be in [0, 1), got " << o.expected_fraction_);
  AEGIS_CHECK(o.max_valley_ > 0 && o.max_valley_ < 1, InvalidArgument,
              "max valley must be in (0, 1), got " << o.max_valley_);
  AEGIS_CHECK(o.max_poison_fraction_ > 0 && o.max_poison_fraction_ < 1, InvalidArgument,
              "max poison fraction must be in (0, 1), got " << o.max_poison_fraction_);
  AEGIS_CHECK(o.max_rounds_ >= 1, InvalidArgument, "max rounds must be >= 1, got " << o.max_rounds_);
  AEGIS_CHECK(o.min_class_size_ >= 4, InvalidArgument, "min class size must be >= 4, got " << o.min_class_size_);
  torch::Tensor feats = internal::dataset_features(model, data, o.batch_size_).to(torch::kDouble);
  SuspectReport r;
  r.method = "spectral-signatures";
  r.samples = data.size();
  r.details["options"] = o.to_json();
  r.details["rule"] = o.expected_fraction_ > 0 ? "fixed-fraction" : "gap";
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
    torch::Tensor fc = feats.index_select(0, idx);
    std::vector<std::pair<int64_t, double>> flagged;  // (position in the class, score)
    if (o.expected_fraction_ > 0) {
      torch::Tensor score = top_projection(fc).pow(2);
      int64_t m = std::min<int64_t>(n, std::llround(1.5 * o.expected_fraction_ * double(n)));
      torch::Tensor top_idx = score.argsort(0, /*descending=*/true).narrow(0, 0, m);
      for (int64_t i = 0; i < m; ++i) {
        int64_t l = top_idx[i].item<int64_t>();
        flagged.push_back({l, score[l].item<double>()});
      }
    } else {
      // Repeated on what remains: poison from several source classes can form
      // more than one group, each split off in its own round.
      torch::Tensor rem = torch::arange(n, torch::kLong);
      nlohmann::json rounds = nlohmann::json::array();
      for (int64_t round = 0; round < o.max_rounds_ && rem.size(0) >= o.min_class_size_; ++round) {
        torch::Tensor proj = top_projection(fc.index_select(0, rem));
        auto [sorted, order] = proj.sort();
        auto [cut, separation] = split_1d(sorted);
        const int64_t m = rem.size(0), small = std::min(cut, m - cut);
        torch::Tensor part = (cut <= m - cut ? order.narrow(0, 0, cut) : order.narrow(0, cut, m - cut));
        torch::Tensor in_small = torch::zeros({m}, torch::kBool).index_fill_(0, part, true);
        const double valley = internal::valley_ratio(proj, in_small);
        rounds.push_back(
            {{"valley", valley}, {"separation", separation}, {"smaller_group_fraction", double(small) / double(m)}});
        if (valley > o.max_valley_ || small == 0 ||
            double(int64_t(flagged.size()) + small) > o.max_poison_fraction_ * double(n))
          break;
        torch::Tensor picked = rem.index_select(0, part);
        torch::Tensor score = proj.index_select(0, part).pow(2);
        for (int64_t i = 0; i < picked.size(0); ++i)
          flagged.push_back({picked[i].item<int64_t>(), score[i].item<double>()});
        rem = rem.index({in_small.logical_not()});
      }
      cj["rounds"] = rounds;
    }
    auto ia = idx.accessor<int64_t, 1>();
    for (auto [l, score] : flagged)
      r.suspects.push_back({ia[l], c, score, fmt::format("spectral-signature outlier in class {}", c)});
    cj["flagged"] = int64_t(flagged.size());
    classes.push_back(cj);
  }
  std::sort(r.suspects.begin(), r.suspects.end(), [](const Suspect& a, const Suspect& b) { return a.index < b.index; });
  r.details["classes"] = classes;
  return r;
}

}  // namespace aegis
