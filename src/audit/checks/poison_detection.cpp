// Check "poison-detection": spectral signatures and/or activation clustering
// on the model's training set (given to the audit with --training-data), with
// the audited model's penultimate features: the share of training samples
// suspected of being poisoned. Skipped without training data or when the
// model has no features().

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/data/activation_clustering.h"
#include "aegis/defenses/data/spectral_signatures.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class PoisonDetectionCheck : public Check {
 public:
  explicit PoisonDetectionCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("method", method_);
    r.get("max_samples", max_samples_);
    r.finish();
    AEGIS_CHECK(method_ == "spectral" || method_ == "activation-clustering" || method_ == "both", InvalidArgument,
                context() << ": 'method' must be spectral, activation-clustering or both, got '" << method_ << "'");
    AEGIS_CHECK(max_samples_ >= 0, InvalidArgument, context() << ": 'max_samples' must be >= 0 (0 = all)");
  }

  std::string name() const override { return "poison-detection"; }

  std::vector<FindingRule> rules() const override {
    return {{"suspected-poison", "Training samples look poisoned (a separated group inside a class)",
             fmt::format("share of the training samples flagged by {} on the model's penultimate features", method_),
             Thresholds().higher_is_worse(true).critical(0.05).high(0.01).medium(0.002).low(1e-9), "AML.T0020", "ML02",
             "aegis data scan DATA --model MODEL --out scan.json, aegis data filter DATA --from scan.json, "
             "then retrain"}};
  }

  nlohmann::json options_json() const override { return {{"method", method_}, {"max_samples", max_samples_}}; }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    if (!ctx.training) {
      res.status = "skipped";
      res.note = "no training data given (aegis audit --training-data)";
      return res;
    }
    auto* model = dynamic_cast<ScriptClassifier*>(&ctx.model);
    if (!model || !model->has_features()) {
      res.status = "skipped";
      res.note = "the model defines no features(x) method (penultimate features are needed)";
      return res;
    }
    const Dataset& full = *ctx.training;
    torch::Tensor pick = torch::arange(full.size(), torch::kLong);
    if (max_samples_ > 0 && full.size() > max_samples_) {
      auto gen = make_generator(ctx.seed, "audit/poison-detection");
      pick = std::get<0>(torch::randperm(full.size(), gen, torch::kLong).narrow(0, 0, max_samples_).sort());
    }
    Dataset train = full.subset(pick);
    std::vector<SuspectReport> reports;
    if (method_ != "activation-clustering") reports.push_back(spectral_signatures(*model, train, SpectralOptions()));
    if (method_ != "spectral")
      reports.push_back(activation_clustering(*model, train, ActivationClusteringOptions().seed(ctx.seed)));
    std::set<int64_t> flagged;
    std::map<int64_t, int64_t> per_class;
    nlohmann::json details = nlohmann::json::object();
    for (const auto& r : reports) {
      for (const auto& s : r.suspects)
        if (flagged.insert(s.index).second) per_class[s.label]++;
      details[r.method] = r.details;
    }
    const double share = round6(double(flagged.size()) / double(std::max<int64_t>(train.size(), 1)));
    auto pa = pick.accessor<int64_t, 1>();
    std::vector<int64_t> ids;
    for (int64_t i : flagged) {
      if (ids.size() == 20) break;
      ids.push_back(pa[i]);
    }
    nlohmann::json classes = nlohmann::json::object();
    for (auto [c, k] : per_class) classes[ctx.model.meta().class_name(c)] = k;
    res.metrics = {{"method", method_},         {"samples_scanned", train.size()}, {"training_samples", full.size()},
                   {"flagged", flagged.size()}, {"flagged_per_class", classes},    {"details", details}};
    res.headline.push_back({"suspected_poison_share", share, false});
    res.observations.push_back(
        {"suspected-poison",
         share,
         fmt::format("{} of {} training samples scanned are flagged by {}{}", flagged.size(), train.size(), method_,
                     per_class.empty()
                         ? std::string()
                         : fmt::format(" (most in class '{}')",
                                       ctx.model.meta().class_name(
                                           std::max_element(per_class.begin(), per_class.end(),
                                                            [](auto& a, auto& b) { return a.second < b.second; })
                                               ->first))),
         {{"training_sample_ids", ids}, {"flagged_per_class", classes}}});
    return res;
  }

 private:
  std::string context() const { return "check poison-detection"; }

  std::string method_ = "spectral";
  int64_t max_samples_ = 20000;
};

}  // namespace

std::unique_ptr<Check> make_poison_detection_check(const nlohmann::json& params) {
  return std::make_unique<PoisonDetectionCheck>(params);
}

}  // namespace aegis
