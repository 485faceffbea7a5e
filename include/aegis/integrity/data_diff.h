#pragma once
/// Dataset diff: which samples changed between two versions of a dataset,
/// from the per-sample Merkle leaves (Dataset::leaf_hashes, whose root is
/// Dataset::fingerprint). A sample counts as changed when its features or its
/// label differ; a sample found elsewhere in the other version counts as moved.
///
///   DatasetDiff d = diff_datasets(load_dataset(DataSpec("v1/")), load_dataset(DataSpec("v2/")));
///   for (int64_t i : d.changed) std::cout << i << (label changed? ...);

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aegis/core/dataset.h"

namespace aegis {

struct DatasetDiff {
  std::string fingerprint_a, fingerprint_b;
  int64_t size_a = 0, size_b = 0;
  std::vector<int64_t> changed;        ///< same position, new content (not found anywhere in a)
  std::vector<int64_t> label_changed;  ///< subset of changed: same features, different label
  std::vector<int64_t> moved;          ///< position in b whose sample sits elsewhere in a
  int64_t added = 0;                   ///< samples of b past the end of a
  int64_t removed = 0;                 ///< samples of a past the end of b
  bool identical() const { return fingerprint_a == fingerprint_b; }
  /// JSON with at most `max_indices` indices per list.
  nlohmann::json to_json(size_t max_indices = 1000) const;
};

DatasetDiff diff_datasets(const Dataset& a, const Dataset& b);

}  // namespace aegis
