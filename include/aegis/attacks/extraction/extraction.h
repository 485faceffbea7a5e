#pragma once
/// Model extraction: shared vocabulary. A thief queries the victim within a
/// budget, trains a substitute on the answers, and is measured by
///  - fidelity: agreement of substitute and victim on test data;
///  - the substitute's own test accuracy;
///  - transfer: adversarial examples crafted white-box on the substitute
///    (PGD) that also fool the victim, against random noise of the same norm
///    (the baseline: a transfer rate near the noise rate means the stolen
///    copy gave the attacker nothing);
/// and curves of these against the query budget. Maps to MITRE ATLAS
/// AML.T0024.002 (Extract ML Model) and OWASP ML05 (Model Theft).
///
///   ExtractionResult r = knockoff_extraction(*victim, pool,
///   KnockoffOptions().budget(10000)); ExtractionEvaluation e =
///   evaluate_extraction(*victim, *r.substitute, test, TransferOptions());
///
/// Techniques: knockoff.h (KnockoffNets / Copycat), jacobian_augmentation.h
/// (Papernot et al.).

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/attacks/attack.h"
#include "aegis/attacks/output_access.h"
#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"

namespace aegis {

struct ExtractionResult {
  std::string method;  ///< "knockoff", "jacobian"
  std::shared_ptr<ScriptClassifier> substitute;
  OutputAccess access;
  int64_t budget = 0;
  int64_t queries = 0;  ///< queries charged to the victim (<= budget)
  double seconds = 0;
  nlohmann::json details = nlohmann::json::object();
  nlohmann::json to_json() const;
};

struct TransferOptions {
  double eps_ = 0.1;        ///< PGD budget on the substitute, > 0
  Norm norm_ = Norm::Linf;  ///< Linf or L2
  int64_t steps_ = 20;      ///< PGD steps, >= 1
  int64_t samples_ = 500;   ///< test samples attacked (those the victim gets right), >= 1
  uint64_t seed_ = 0;
  TransferOptions& eps(double v) { eps_ = v; return *this; }
  TransferOptions& norm(Norm v) { norm_ = v; return *this; }
  TransferOptions& steps(int64_t v) { steps_ = v; return *this; }
  TransferOptions& samples(int64_t v) { samples_ = v; return *this; }
  TransferOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
};

struct ExtractionEvaluation {
  int64_t test_samples = 0;
  double fidelity = 0;             ///< share of test samples where substitute and victim agree
  double substitute_accuracy = 0;  ///< substitute's test accuracy
  double victim_accuracy = 0;
  int64_t transfer_samples = 0;          ///< samples attacked: correctly classified by the victim
  double transfer_rate = 0;              ///< share of substitute-crafted PGD examples the victim misclassifies
  double noise_rate = 0;                 ///< same for random noise of the same per-sample norm
  double substitute_white_box_rate = 0;  ///< PGD success on the substitute itself
  double mean_l2_adversarial = 0, mean_l2_noise = 0;
  TransferOptions transfer;
  nlohmann::json to_json() const;
};

/// Measures a substitute against its victim on labelled test data. Victim
/// queries made here are the auditor's measurement, not the thief's.
ExtractionEvaluation evaluate_extraction(Classifier& victim, Classifier& substitute, const Dataset& test,
                                         const TransferOptions& transfer = {});

struct ExtractionCurvePoint {
  int64_t budget = 0;
  ExtractionResult extraction;
  ExtractionEvaluation evaluation;
};
/// Runs `extract(budget)` for each budget and evaluates each substitute.
std::vector<ExtractionCurvePoint> extraction_curve(Classifier& victim, const Dataset& test,
                                                   const std::vector<int64_t>& budgets,
                                                   const std::function<ExtractionResult(int64_t)>& extract,
                                                   const TransferOptions& transfer = {});
nlohmann::json curve_to_json(const std::vector<ExtractionCurvePoint>& curve);

/// A query set of uniform noise in the model's valid range: the thief who has
/// no data at all.
Dataset noise_queries(const ModelMeta& meta, int64_t n, uint64_t seed);

}  // namespace aegis
