#include "aegis/defenses/data/validation.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/core/sha256.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

nlohmann::json ValidationOptions::to_json() const {
  nlohmann::json j = {{"min_value", min_value_},
                      {"max_value", max_value_},
                      {"near_duplicate_levels", near_duplicate_levels_},
                      {"balance_tolerance", balance_tolerance_},
                      {"label_noise", label_noise_},
                      {"folds", folds_},
                      {"epochs", epochs_},
                      {"confidence", confidence_},
                      {"seed", seed_}};
  if (!expected_shape_.empty()) j["expected_shape"] = expected_shape_;
  if (expected_classes_) j["expected_classes"] = *expected_classes_;
  return j;
}

bool ValidationReport::ok() const {
  return std::none_of(issues.begin(), issues.end(), [](const ValidationIssue& i) { return i.severity == "error"; });
}

nlohmann::json ValidationReport::to_json(int64_t max_listed) const {
  auto groups = [&](const std::vector<std::vector<int64_t>>& g) {
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < g.size() && int64_t(i) < max_listed; ++i) a.push_back(g[i]);
    return nlohmann::json{{"count", int64_t(g.size())}, {"groups", a}};
  };
  nlohmann::json is = nlohmann::json::array();
  for (const auto& i : issues)
    is.push_back({{"check", i.check}, {"severity", i.severity}, {"message", i.message}, {"count", i.count}});
  nlohmann::json j = suspects.to_json();
  j["method"] = "validation";
  j["ok"] = ok();
  j["sample_shape"] = sample_shape;
  j["class_counts"] = class_counts;
  j["values"] = {{"min", min_value},
                 {"max", max_value},
                 {"nan_samples", nan_samples},
                 {"inf_samples", inf_samples},
                 {"out_of_range_samples", out_of_range_samples}};
  j["exact_duplicates"] = groups(exact_duplicate_groups);
  j["near_duplicates"] = groups(near_duplicate_groups);
  j["conflicting_labels"] = groups(conflicting_groups);
  if (!reference_shares.empty())
    j["balance"] = {
        {"class_shares", class_shares}, {"reference_shares", reference_shares}, {"total_variation", balance_distance}};
  if (label_noise_checked) j["label_noise"] = {{"cross_validated_accuracy", cross_validated_accuracy}};
  j["issues"] = is;
  return j;
}

namespace {

// Groups of samples whose (transformed) bytes hash equally; groups of size >=
// 2, ascending.
std::vector<std::vector<int64_t>> hash_groups(const torch::Tensor& rows) {
  const int64_t n = rows.size(0), bytes = rows.numel() * rows.element_size() / std::max<int64_t>(n, 1);
  const char* p = static_cast<const char*>(rows.data_ptr());
  std::unordered_map<std::string, std::vector<int64_t>> by_hash;
  for (int64_t i = 0; i < n; ++i) by_hash[sha256_hex(std::string_view(p + i * bytes, size_t(bytes)))].push_back(i);
  std::vector<std::vector<int64_t>> out;
  for (auto& [h, v] : by_hash)
    if (v.size() > 1) out.push_back(std::move(v));
  std::sort(out.begin(), out.end());
  return out;
}

void label_noise(const Dataset& data, const ValidationOptions& o, ValidationReport& r) {
  const int64_t n = data.size(), k = data.num_classes();
  if (n < o.folds_ * 2 || k < 2) return;
  Dataset flat;
  flat.x = torch::nan_to_num(data.x.flatten(1), 0.0, o.max_value_, o.min_value_).contiguous();
  flat.y = data.y;
  auto gen = make_generator(o.seed_, "label-noise-folds");
  torch::Tensor perm = torch::randperm(n, gen, torch::kLong);
  torch::Tensor probs = torch::zeros({n, k});
  double m = flat.x.mean().item<double>(), s = std::max(flat.x.std().item<double>(), 1e-6);
  for (int64_t f = 0; f < o.folds_; ++f) {
    int64_t lo = n * f / o.folds_, hi = n * (f + 1) / o.folds_;
    torch::Tensor held = perm.narrow(0, lo, hi - lo);
    torch::Tensor rest = torch::cat({perm.narrow(0, 0, lo), perm.narrow(0, hi, n - hi)});
    seed_everything(derive_seed(o.seed_, "label-noise-fold-" + std::to_string(f)));
    auto model =
        build_architecture(ArchitectureOptions("mlp", {flat.x.size(1)}, k).hidden({128}).normalization({m}, {s}));
    train(*model, flat.subset(rest), nullptr,
          TrainOptions().epochs(o.epochs_).batch_size(128).lr(2e-3).seed(derive_seed(o.seed_, "label-noise")));
    Dataset h = flat.subset(held);
    std::vector<torch::Tensor> parts;
    for (const Batch& b : h.batches(1024)) parts.push_back(model->probabilities(b.x));
    probs.index_copy_(0, held, torch::cat(parts));
  }
  r.label_noise_checked = true;
  r.cross_validated_accuracy = (probs.argmax(1) == data.y).to(torch::kDouble).mean().item<double>();
  torch::Tensor other = probs.clone();
  other.scatter_(1, data.y.view({-1, 1}), 0.0);
  auto [best, cls] = other.max(1);
  torch::Tensor sus = (best >= o.confidence_).nonzero().view(-1);
  auto sa = sus.accessor<int64_t, 1>();
  for (int64_t i = 0; i < sus.size(0); ++i) {
    int64_t idx = sa[i];
    r.suspects.suspects.push_back({idx, data.y[idx].item<int64_t>(), best[idx].item<double>(),
                                   fmt::format("label-noise: cross-validated model says class {} with p={:.3f}",
                                               cls[idx].item<int64_t>(), best[idx].item<double>())});
  }
  if (sus.size(0) > 0)
    r.issues.push_back({"label-noise", "warning",
                        fmt::format("{} samples that a cross-validated model (accuracy "
                                    "{:.3f}) puts in another class "
                                    "with probability >= {}",
                                    sus.size(0), r.cross_validated_accuracy, o.confidence_),
                        sus.size(0)});
}

}  // namespace

ValidationReport validate_data(const Dataset& data, const ValidationOptions& o, const Dataset* reference) {
  AEGIS_CHECK(o.max_value_ > o.min_value_, InvalidArgument, "value range must have max > min");
  AEGIS_CHECK(o.near_duplicate_levels_ == 0 || o.near_duplicate_levels_ >= 2, InvalidArgument,
              "near-duplicate levels must be 0 (off) or >= 2, got " << o.near_duplicate_levels_);
  AEGIS_CHECK(o.folds_ >= 2, InvalidArgument, "folds must be >= 2, got " << o.folds_);
  AEGIS_CHECK(o.epochs_ >= 1, InvalidArgument, "epochs must be >= 1, got " << o.epochs_);
  AEGIS_CHECK(o.confidence_ > 0 && o.confidence_ <= 1, InvalidArgument, "confidence must be in (0, 1]");
  AEGIS_CHECK(o.balance_tolerance_ >= 0, InvalidArgument, "balance tolerance must be >= 0");
  AEGIS_CHECK(data.x.defined() && data.y.defined(), CorruptData, "dataset has no samples or no labels");
  AEGIS_CHECK(data.y.dim() == 1 && data.x.dim() >= 2 && data.x.size(0) == data.y.size(0), CorruptData,
              "samples and labels disagree: " << data.x.sizes() << " vs " << data.y.sizes());
  ValidationReport r;
  r.suspects.method = "validation";
  r.samples = r.suspects.samples = data.size();
  r.sample_shape = data.sample_shape();
  r.suspects.details["options"] = o.to_json();
  const int64_t n = data.size();
  if (n == 0) {
    r.issues.push_back({"shape", "error", "the dataset is empty", 0});
    return r;
  }
  torch::Tensor x = data.x.to(torch::kFloat).contiguous();
  torch::Tensor y = data.y.to(torch::kLong);
  auto flag = [&](const torch::Tensor& mask, const std::string& reason, double score) {
    torch::Tensor idx = mask.nonzero().view(-1);
    auto a = idx.accessor<int64_t, 1>();
    for (int64_t i = 0; i < idx.size(0); ++i)
      r.suspects.suspects.push_back({a[i], y[a[i]].item<int64_t>(), score, reason});
  };

  // Schema: shape and labels.
  if (!o.expected_shape_.empty() && r.sample_shape != o.expected_shape_)
    r.issues.push_back({"shape", "error",
                        fmt::format("samples are [{}], expected [{}]", fmt::join(r.sample_shape, ", "),
                                    fmt::join(o.expected_shape_, ", ")),
                        n});
  int64_t min_label = y.min().item<int64_t>(), max_label = y.max().item<int64_t>();
  if (min_label < 0)
    r.issues.push_back(
        {"labels", "error", fmt::format("negative labels (min {})", min_label), (y < 0).sum().item<int64_t>()});
  if (o.expected_classes_ && max_label >= *o.expected_classes_)
    r.issues.push_back(
        {"labels", "error",
         fmt::format("labels reach {} but only {} classes are expected", max_label, *o.expected_classes_),
         (y >= *o.expected_classes_).sum().item<int64_t>()});
  int64_t k = std::max<int64_t>(max_label + 1, o.expected_classes_.value_or(0));
  if (reference && reference->size() > 0) k = std::max<int64_t>(k, reference->y.max().item<int64_t>() + 1);
  torch::Tensor counts = torch::bincount(y.clamp_min(0), {}, k);
  r.class_counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + k);
  for (int64_t c = 0; c < k; ++c)
    if (r.class_counts[c] == 0 && (o.expected_classes_ || reference))
      r.issues.push_back({"labels", "warning", fmt::format("class {} has no samples", c), 1});

  // Values: NaN, Inf, range.
  torch::Tensor flat = x.flatten(1);
  torch::Tensor nan = torch::isnan(flat).any(1), inf = torch::isinf(flat).any(1);
  torch::Tensor finite = torch::nan_to_num(flat, 0.0, 0.0, 0.0);
  torch::Tensor out = ((finite < o.min_value_) | (finite > o.max_value_)).any(1) & ~nan & ~inf;
  r.nan_samples = nan.sum().item<int64_t>();
  r.inf_samples = inf.sum().item<int64_t>();
  r.out_of_range_samples = out.sum().item<int64_t>();
  torch::Tensor fin_mask = torch::isfinite(flat);
  r.min_value = fin_mask.any().item<bool>() ? flat.index({fin_mask}).min().item<double>() : 0.0;
  r.max_value = fin_mask.any().item<bool>() ? flat.index({fin_mask}).max().item<double>() : 0.0;
  if (r.nan_samples)
    r.issues.push_back({"nan", "error", fmt::format("{} samples contain NaN", r.nan_samples), r.nan_samples});
  if (r.inf_samples)
    r.issues.push_back({"nan", "error", fmt::format("{} samples contain Inf", r.inf_samples), r.inf_samples});
  if (r.out_of_range_samples)
    r.issues.push_back({"range", "error",
                        fmt::format("{} samples have values outside [{}, {}] (seen [{}, {}])", r.out_of_range_samples,
                                    o.min_value_, o.max_value_, r.min_value, r.max_value),
                        r.out_of_range_samples});
  flag(nan | inf, "non-finite values", 1.0);
  flag(out, "values outside the valid range", 1.0);

  // Duplicates: exact (same bytes), then near (same after quantisation).
  r.exact_duplicate_groups = hash_groups(flat);
  std::set<int64_t> in_exact;
  for (const auto& g : r.exact_duplicate_groups) in_exact.insert(g.begin(), g.end());
  std::vector<std::vector<int64_t>> near;
  if (o.near_duplicate_levels_ >= 2) {
    double levels = double(o.near_duplicate_levels_ - 1);
    torch::Tensor q =
        ((finite.clamp(o.min_value_, o.max_value_) - o.min_value_) / (o.max_value_ - o.min_value_) * levels)
            .round()
            .to(torch::kInt16)
            .contiguous();
    // Near groups that are nothing but one exact group add nothing.
    std::set<std::vector<int64_t>> exact_set(r.exact_duplicate_groups.begin(), r.exact_duplicate_groups.end());
    for (auto& g : hash_groups(q)) {
      if (!exact_set.count(g)) near.push_back(std::move(g));
    }
  }
  r.near_duplicate_groups = near;
  auto ya = y.accessor<int64_t, 1>();
  std::set<int64_t> conflicted;
  for (const auto* groups : {&r.exact_duplicate_groups, &r.near_duplicate_groups}) {
    for (const auto& g : *groups) {
      std::set<int64_t> labels;
      for (int64_t i : g) labels.insert(ya[i]);
      if (labels.size() > 1 && !std::all_of(g.begin(), g.end(), [&](int64_t i) { return conflicted.count(i); })) {
        r.conflicting_groups.push_back(g);
        for (int64_t i : g) {
          if (conflicted.insert(i).second)
            r.suspects.suspects.push_back({i, ya[i], 1.0,
                                           fmt::format("duplicate group with conflicting labels (first "
                                                       "member {})",
                                                       g.front())});
        }
      }
    }
  }
  int64_t extra_copies = 0;
  for (const auto& g : r.exact_duplicate_groups)
    for (size_t j = 1; j < g.size(); ++j)
      if (!conflicted.count(g[j])) {
        ++extra_copies;
        r.suspects.suspects.push_back({g[j], ya[g[j]], 0.5, fmt::format("exact duplicate of sample {}", g.front())});
      }
  if (!r.exact_duplicate_groups.empty())
    r.issues.push_back(
        {"duplicates", "warning",
         fmt::format("{} groups of exact duplicates ({} extra copies)", r.exact_duplicate_groups.size(), extra_copies),
         extra_copies});
  if (!r.near_duplicate_groups.empty())
    r.issues.push_back({"duplicates", "warning",
                        fmt::format("{} groups of near duplicates (equal at {} levels)", r.near_duplicate_groups.size(),
                                    o.near_duplicate_levels_),
                        int64_t(r.near_duplicate_groups.size())});
  if (!r.conflicting_groups.empty())
    r.issues.push_back({"duplicates", "error",
                        fmt::format("{} duplicate groups carry conflicting labels ({} samples)",
                                    r.conflicting_groups.size(), conflicted.size()),
                        int64_t(conflicted.size())});

  // Class balance against the reference.
  if (reference && reference->size() > 0) {
    torch::Tensor rc = torch::bincount(reference->y.to(torch::kLong).clamp_min(0), {}, k).to(torch::kDouble);
    torch::Tensor rs = rc / rc.sum(), ds = counts.to(torch::kDouble) / double(n);
    r.reference_shares.assign(rs.data_ptr<double>(), rs.data_ptr<double>() + k);
    r.class_shares.assign(ds.data_ptr<double>(), ds.data_ptr<double>() + k);
    r.balance_distance = 0.5 * (rs - ds).abs().sum().item<double>();
    for (int64_t c = 0; c < k; ++c) {
      double d = r.class_shares[c] - r.reference_shares[c];
      if (std::abs(d) > o.balance_tolerance_)
        r.issues.push_back({"balance", "warning",
                            fmt::format("class {} is {:.2f}% of the data but {:.2f}% of the "
                                        "reference ({:+.2f} points)",
                                        c, 100 * r.class_shares[c], 100 * r.reference_shares[c], 100 * d),
                            1});
    }
  }

  if (o.label_noise_) label_noise(data, o, r);

  // One entry per sample: keep the first reason, the highest score.
  std::map<int64_t, Suspect> merged;
  for (auto& s : r.suspects.suspects) {
    auto [it, fresh] = merged.emplace(s.index, s);
    if (!fresh) {
      it->second.score = std::max(it->second.score, s.score);
      it->second.reason += "; " + s.reason;
    }
  }
  r.suspects.suspects.clear();
  for (auto& [i, s] : merged) r.suspects.suspects.push_back(s);
  return r;
}

}  // namespace aegis
