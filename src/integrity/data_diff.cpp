// Dataset diff over the per-sample Merkle leaves (see data_diff.h).

#include "aegis/integrity/data_diff.h"

#include <torch/torch.h>

#include <unordered_set>

namespace aegis {

nlohmann::json DatasetDiff::to_json(size_t max_indices) const {
  auto cut = [&](const std::vector<int64_t>& v) {
    return std::vector<int64_t>(v.begin(), v.begin() + std::ptrdiff_t(std::min(v.size(), max_indices)));
  };
  return {{"identical", identical()},
          {"fingerprint_a", fingerprint_a},
          {"fingerprint_b", fingerprint_b},
          {"size_a", size_a},
          {"size_b", size_b},
          {"changed_count", changed.size()},
          {"changed", cut(changed)},
          {"label_changed", cut(label_changed)},
          {"moved_count", moved.size()},
          {"moved", cut(moved)},
          {"added", added},
          {"removed", removed}};
}

DatasetDiff diff_datasets(const Dataset& a, const Dataset& b) {
  DatasetDiff d;
  d.fingerprint_a = a.fingerprint();
  d.fingerprint_b = b.fingerprint();
  d.size_a = a.size();
  d.size_b = b.size();
  std::vector<std::string> la = a.leaf_hashes(), lb = b.leaf_hashes();
  std::unordered_set<std::string> in_a(la.begin(), la.end());
  int64_t common = std::min(d.size_a, d.size_b);
  bool same_shape = a.size() > 0 && b.size() > 0 && a.sample_shape() == b.sample_shape();
  for (int64_t i = 0; i < common; ++i) {
    if (la[size_t(i)] == lb[size_t(i)]) continue;
    if (in_a.count(lb[size_t(i)])) {
      d.moved.push_back(i);
      continue;
    }
    d.changed.push_back(i);
    if (same_shape && torch::equal(a.x[i], b.x[i]) && a.y[i].item<int64_t>() != b.y[i].item<int64_t>())
      d.label_changed.push_back(i);
  }
  d.added = std::max<int64_t>(0, d.size_b - d.size_a);
  d.removed = std::max<int64_t>(0, d.size_a - d.size_b);
  return d;
}

}  // namespace aegis
