#pragma once
/// What the training-data defences report: the samples they suspect, each
/// with a reason and a score, in a form `filter_dataset` and an audit check
/// both read. Also scores a detector against the truth when it is known (a
/// poison record), for evaluations.
///
///   SuspectReport r = spectral_signatures(*model, data);
///   DetectionScore s = score_detection(r, record_indices);  // precision,
///   recall

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aegis {

struct Suspect {
  int64_t index = 0;   ///< position in the dataset
  int64_t label = 0;   ///< its label
  double score = 0;    ///< higher = more suspicious (method-specific scale)
  std::string reason;  ///< e.g. "spectral-signature outlier in class 0"
};

struct SuspectReport {
  std::string method;                                 ///< "spectral-signatures", "activation-clustering", "validation"
  int64_t samples = 0;                                ///< samples examined
  std::vector<Suspect> suspects;                      ///< ascending by index
  nlohmann::json details = nlohmann::json::object();  ///< per-class statistics, options
  std::vector<int64_t> indices() const;
  /// {"method", "samples", "suspect_count", "details", "suspects": [{index,
  /// label, score, reason}]}
  nlohmann::json to_json() const;
  /// Reads the "suspects" of any aegis data report (scan, check). Throws
  /// CorruptData.
  static std::vector<Suspect> suspects_from_json(const nlohmann::json& j);
};

struct DetectionScore {
  int64_t flagged = 0, truth = 0, true_positives = 0;
  double precision = 0,
         recall = 0;  ///< 0 when undefined (nothing flagged / no truth)
  nlohmann::json to_json() const;
};
/// Precision and recall of `flagged` against the truly poisoned indices.
DetectionScore score_detection(const std::vector<int64_t>& flagged, const std::vector<int64_t>& truth);

}  // namespace aegis
