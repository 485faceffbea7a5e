// Check "data-validation": the ingestion checks of the model's training set
// (given to the audit with --training-data): invalid samples (NaN, Inf, out of
// range), duplicate groups whose labels disagree, and the class-balance drift
// of the training set against the audit data (a trusted sample of the same
// population). Skipped when the audit has no training data.

#include <fmt/format.h>

#include <algorithm>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/defenses/data/validation.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class DataValidationCheck : public Check {
 public:
  explicit DataValidationCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("near_duplicate_levels", levels_);
    r.get("label_noise", label_noise_);
    r.finish();
    AEGIS_CHECK(levels_ == 0 || levels_ >= 2, InvalidArgument,
                context() << ": 'near_duplicate_levels' must be 0 (off) or >= 2, got " << levels_);
  }

  std::string name() const override { return "data-validation"; }

  std::vector<FindingRule> rules() const override {
    const char* fix = "aegis data check DATA, then aegis data filter DATA --from check.json";
    return {{"invalid-training-samples", "Training samples are malformed (NaN, Inf or out of the valid range)",
             "share of training samples that are non-finite or out of range",
             Thresholds().higher_is_worse(true).high(0.01).medium(0.001).low(1e-9), "AML.T0020", "ML02", fix},
            {"conflicting-duplicates", "Duplicate training samples carry different labels (noise or planted flips)",
             "share of training samples in exact or near duplicate groups whose labels disagree",
             Thresholds().higher_is_worse(true).high(0.01).medium(0.001).low(1e-9), "AML.T0020", "ML02", fix},
            {"class-balance-drift", "The training set's class balance differs from the audit data's",
             "total variation distance between the class shares of the training set and the audit data",
             Thresholds().higher_is_worse(true).high(0.2).medium(0.1).low(0.05), "AML.T0020", "ML02", fix}};
  }

  nlohmann::json options_json() const override {
    return {{"near_duplicate_levels", levels_}, {"label_noise", label_noise_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    if (!ctx.training) {
      res.status = "skipped";
      res.note = "no training data given (aegis audit --training-data)";
      return res;
    }
    const Dataset& train = *ctx.training;
    const auto& meta = ctx.model.meta();
    ValidationOptions o;
    o.expected_shape(meta.input_shape)
        .expected_classes(meta.num_classes)
        .range(meta.clip_min, meta.clip_max)
        .near_duplicate_levels(levels_)
        .label_noise(label_noise_)
        .seed(ctx.seed);
    ValidationReport v = validate_data(train, o, &ctx.data);
    const double n = double(std::max<int64_t>(v.samples, 1));
    const int64_t invalid = v.nan_samples + v.inf_samples + v.out_of_range_samples;
    int64_t conflicting = 0;
    for (const auto& g : v.conflicting_groups) conflicting += int64_t(g.size());
    const double invalid_share = round6(double(invalid) / n), conflict_share = round6(double(conflicting) / n);
    const double drift = round6(v.balance_distance);
    res.metrics = v.to_json(20);
    res.headline.push_back({"invalid_training_share", invalid_share, false});
    res.headline.push_back({"conflicting_duplicate_share", conflict_share, false});
    res.headline.push_back({"class_balance_drift", drift, false});
    std::vector<int64_t> invalid_ids;
    for (const auto& s : v.suspects.suspects)
      if (invalid_ids.size() < 20 && (s.reason.find("non-finite") != std::string::npos ||
                                      s.reason.find("outside the valid range") != std::string::npos))
        invalid_ids.push_back(s.index);
    res.observations.push_back(
        {"invalid-training-samples",
         invalid_share,
         fmt::format("{} of {} training samples are NaN/Inf ({}) or outside [{}, {}] ({})", invalid, v.samples,
                     v.nan_samples + v.inf_samples, meta.clip_min, meta.clip_max, v.out_of_range_samples),
         {{"training_sample_ids", invalid_ids}}});
    nlohmann::json groups = nlohmann::json::array();
    for (size_t i = 0; i < v.conflicting_groups.size() && i < 20; ++i) groups.push_back(v.conflicting_groups[i]);
    res.observations.push_back({"conflicting-duplicates",
                                conflict_share,
                                fmt::format("{} training samples in {} duplicate groups with disagreeing labels",
                                            conflicting, v.conflicting_groups.size()),
                                {{"training_groups", groups}}});
    res.observations.push_back(
        {"class-balance-drift",
         drift,
         fmt::format("class shares of the {} training samples differ from the {} audit samples by {:.3f} "
                     "(total variation)",
                     v.samples, ctx.data.size(), drift),
         {{"training_shares", v.class_shares}, {"audit_shares", v.reference_shares}}});
    return res;
  }

 private:
  std::string context() const { return "check data-validation"; }

  int64_t levels_ = 16;
  bool label_noise_ = false;
};

}  // namespace

std::unique_ptr<Check> make_data_validation_check(const nlohmann::json& params) {
  return std::make_unique<DataValidationCheck>(params);
}

}  // namespace aegis
