#pragma once
/// Attribute inference on tabular data (Fredrikson et al. 2014; Yeom et al.
/// 2018): the attacker knows a record's other features and its label, and
/// recovers a sensitive feature by trying every candidate value, querying the
/// model, and keeping the value that makes the known label most likely,
/// weighted by the value's marginal prior (the MAP estimator). The baseline
/// is guessing the marginal's most common value without the model: the
/// attack only shows leakage where it beats that. Run it on training records
/// and on unseen ones; a gap between the two is membership leaking too.
/// Maps to MITRE ATLAS AML.T0024.001 (Invert ML Model), OWASP ML03.
///
///   auto r = attribute_inference(*model, train_records, public_data,
///                                AttributeInferenceOptions(3));   // feature 3
///   r.accuracy; r.baseline_accuracy;

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "aegis/attacks/output_access.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct AttributeInferenceOptions {
  explicit AttributeInferenceOptions(int64_t feature) : feature_(feature) {}
  int64_t feature_;  ///< index of the sensitive feature in [0, features)
  /// Candidate values; empty = the distinct values of the feature in the
  /// prior data (at most 64, else give them).
  std::vector<double> candidates_;
  OutputAccess access_;  ///< label-only works too (then: labels that match the known one)
  int64_t batch_size_ = 1024;
  AttributeInferenceOptions& feature(int64_t v) { feature_ = v; return *this; }
  AttributeInferenceOptions& candidates(std::vector<double> v) { candidates_ = std::move(v); return *this; }
  AttributeInferenceOptions& access(OutputAccess v) { access_ = v; return *this; }
  AttributeInferenceOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
};

struct AttributeInferenceResult {
  int64_t feature = 0;
  std::vector<double> candidates,
      prior;  ///< values and their marginal probabilities
  int64_t targets = 0;
  double accuracy = 0;           ///< share of targets whose value the attack recovered
  double baseline_accuracy = 0;  ///< guessing the marginal's most common value
  double advantage() const { return accuracy - baseline_accuracy; }
  torch::Tensor guesses;  ///< [targets] index into candidates
  torch::Tensor truth;    ///< [targets] index of the candidate nearest the true value
  int64_t queries = 0;
  double seconds = 0;
  OutputAccess access;
  nlohmann::json to_json() const;
};

/// `targets`: records whose feature the attacker wants (features + label
/// known to it). `prior_data`: data the attacker has from the population, for
/// the marginal (may be the same data when the marginal is public).
AttributeInferenceResult attribute_inference(Classifier& model, const Dataset& targets, const Dataset& prior_data,
                                             const AttributeInferenceOptions& options);

}  // namespace aegis
