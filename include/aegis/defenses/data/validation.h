#pragma once
/// Data validation at ingestion: the checks a training set should pass before
/// a model learns from it. Schema and shape, value range, NaN/Inf, exact and
/// near duplicates (a duplicate group whose labels disagree is flagged: one of
/// them is wrong, or planted), class-balance drift against a trusted reference
/// set, and label-noise suspects: samples that a cross-validated model, which
/// never saw them, confidently puts in another class.
///
///   ValidationReport r = validate_data(data,
///   ValidationOptions().label_noise(true), &reference); if (!r.ok()) for
///   (auto& issue : r.issues) std::cerr << issue.message << "\n";
///
/// Near duplicates are samples equal after rounding every value to one of
/// `near_duplicate_levels` levels over the valid range (a quantised hash:
/// linear time, finds copies with small noise or re-encoding, not every pair
/// within a distance). Label noise trains `folds` small MLPs on the flattened
/// samples (cheap, and independent of the model under test).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/defenses/data/suspects.h"

namespace aegis {

struct ValidationOptions {
  std::vector<int64_t> expected_shape_;       ///< sample shape the data must have; empty = any
  std::optional<int64_t> expected_classes_;   ///< labels must be < this; empty = any
  double min_value_ = 0.0, max_value_ = 1.0;  ///< valid value range
  int64_t near_duplicate_levels_ = 16;        ///< >= 2; 0 disables near-duplicate search
  double balance_tolerance_ = 0.02;           ///< per-class share may differ from the reference by this much
  bool label_noise_ = false;                  ///< run the cross-validated label-noise search
  int64_t folds_ = 3;                         ///< >= 2
  int64_t epochs_ = 3;                        ///< per fold
  double confidence_ = 0.9;                   ///< a suspect's other class must have at least this probability
  uint64_t seed_ = 0;
  int64_t max_listed_ = 50;  ///< groups listed per kind in the JSON (counts are complete)

  ValidationOptions& expected_shape(std::vector<int64_t> v) { expected_shape_ = std::move(v); return *this; }
  ValidationOptions& expected_classes(int64_t v) { expected_classes_ = v; return *this; }
  ValidationOptions& range(double lo, double hi) { min_value_ = lo; max_value_ = hi; return *this; }
  ValidationOptions& near_duplicate_levels(int64_t v) { near_duplicate_levels_ = v; return *this; }
  ValidationOptions& balance_tolerance(double v) { balance_tolerance_ = v; return *this; }
  ValidationOptions& label_noise(bool v) { label_noise_ = v; return *this; }
  ValidationOptions& folds(int64_t v) { folds_ = v; return *this; }
  ValidationOptions& epochs(int64_t v) { epochs_ = v; return *this; }
  ValidationOptions& confidence(double v) { confidence_ = v; return *this; }
  ValidationOptions& seed(uint64_t v) { seed_ = v; return *this; }
  ValidationOptions& max_listed(int64_t v) { max_listed_ = v; return *this; }
  nlohmann::json to_json() const;
};

struct ValidationIssue {
  std::string check;     ///< "shape", "labels", "nan", "range", "duplicates",
                         ///< "balance", "label-noise"
  std::string severity;  ///< "error" (unusable or certainly wrong) or "warning"
                         ///< (worth a look)
  std::string message;
  int64_t count = 0;  ///< samples (or classes, for balance) concerned
};

struct ValidationReport {
  int64_t samples = 0;
  std::vector<int64_t> sample_shape;
  std::vector<int64_t> class_counts;
  int64_t nan_samples = 0, inf_samples = 0, out_of_range_samples = 0;
  double min_value = 0, max_value = 0;
  std::vector<std::vector<int64_t>> exact_duplicate_groups;  ///< each ascending, size >= 2
  std::vector<std::vector<int64_t>> near_duplicate_groups;   ///< near but not exact duplicates
  std::vector<std::vector<int64_t>> conflicting_groups;      ///< exact or near groups with disagreeing labels
  std::vector<double> reference_shares,
      class_shares;             ///< balance; empty without a reference
  double balance_distance = 0;  ///< total variation distance to the reference (0 without one)
  bool label_noise_checked = false;
  double cross_validated_accuracy = 0;
  std::vector<ValidationIssue> issues;
  /// Samples worth removing, with reasons: non-finite or out-of-range samples,
  /// members of conflicting duplicate groups, later copies of exact
  /// duplicates, label-noise suspects (score = the other class's probability).
  SuspectReport suspects;

  bool ok() const;  ///< no issue of severity "error"
  nlohmann::json to_json(int64_t max_listed = 50) const;
};

/// `reference` (optional) is a trusted sample of the same population.
/// Malformed data (labels not 1-D, lengths disagree) throws CorruptData;
/// everything else, including NaN, is reported rather than thrown.
ValidationReport validate_data(const Dataset& data, const ValidationOptions& options = {},
                               const Dataset* reference = nullptr);

}  // namespace aegis
