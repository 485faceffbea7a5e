// Check "membership-inference": does the model give away which records it
// was trained on? The loss-threshold attack (Yeom et al. 2018) scores known
// training records (members) against the audit sample (non-members: the
// audit data must be held out, e.g. the test split) with one query each;
// graded on ROC AUC and on the true-positive rate at 1% false positives
// (Carlini et al. 2022). The members come from `members` (a data path, or
// "auto": the training data named in the model's provenance); without them
// the check is skipped, never passed.

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "aegis/attacks/inference/membership_threshold.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class MembershipCheck : public Check {
 public:
  explicit MembershipCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("members", members_);
    r.get("members_split", members_split_);
    r.get("candidates", candidates_);
    r.get("signal", signal_);
    r.finish();
    AEGIS_CHECK(candidates_ >= 0, InvalidArgument, context() << ": 'candidates' must be >= 0 (0 = the audit sample)");
    ThresholdMembershipOptions().signal(signal_).validate();
  }

  std::string name() const override { return "membership-inference"; }

  std::vector<FindingRule> rules() const override {
    const std::string fix = "aegis train --dropout 0.25 --weight-decay 5e-4 (more data, fewer epochs)";
    return {{"membership-auc", "Answers reveal whether a record was in the training set",
             fmt::format("ROC AUC of the {}-threshold membership attack (0.5 = chance)", signal_),
             Thresholds().higher_is_worse(true).high(0.75).medium(0.65).low(0.56), "AML.T0024.000", "ML04", fix},
            {"membership-low-fpr", "Some training records are identified with few false accusations",
             "true-positive rate of the membership attack at 1% false-positive rate",
             Thresholds().higher_is_worse(true).high(0.2).medium(0.05).low(0.02), "AML.T0024.000", "ML04", fix}};
  }

  nlohmann::json options_json() const override {
    return {{"members", members_}, {"members_split", members_split_}, {"candidates", candidates_}, {"signal", signal_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    std::string why;
    std::optional<DataSpec> spec = members_spec(ctx.model.meta(), why);
    if (!spec) {
      res.status = "skipped";
      res.note = why;
      return res;
    }
    const int64_t want = candidates_ > 0 ? std::min(candidates_, ctx.data.size()) : ctx.data.size();
    Dataset members;
    try {
      members = load_dataset(spec->limit(want));
    } catch (const Error& e) {
      res.status = "skipped";
      res.note = fmt::format("the members data could not be loaded: {}", one_line_message(e));
      return res;
    }
    const int64_t n = std::min(want, members.size());
    Dataset nonmembers = ctx.data.head(n);
    members = members.head(n);
    Progress bar(ctx.label, 1);
    MembershipResult r = threshold_membership(ctx.model, members, nonmembers,
                                              ThresholdMembershipOptions().signal(signal_).batch_size(ctx.batch_size));
    bar.advance(1);
    const auto& m = r.metrics;
    bar.finish(fmt::format("AUC {:.3f}, TPR@1%FPR {:.3f}", m.auc, m.tpr_at_1pct_fpr));
    res.metrics = r.to_json();
    res.metrics["members_source"] = members.source;
    res.metrics["nonmembers_source"] = "the audit sample (assumed held out from training)";
    res.headline.push_back({"membership_auc", round6(m.auc), false});
    res.headline.push_back({"membership_tpr_at_1pct_fpr", round6(m.tpr_at_1pct_fpr), false});
    nlohmann::json evidence = {{"auc", round6(m.auc)},
                               {"tpr_at_1pct_fpr", round6(m.tpr_at_1pct_fpr)},
                               {"tpr_at_0.1pct_fpr", round6(m.tpr_at_0_1pct_fpr)},
                               {"fpr_resolution", round6(m.fpr_resolution)},
                               {"best_balanced_accuracy", round6(m.best_balanced_accuracy)},
                               {"members", n},
                               {"members_source", members.source},
                               {"queries", r.queries}};
    const std::string caveat =
        " (members are the first records of the training data: any the training held out for validation are not "
        "members, which understates the leak; a stronger attack such as LiRA, `aegis attack --attack membership "
        "--method lira`, finds more)";
    res.observations.push_back({"membership-auc", round6(m.auc),
                                fmt::format("the {} attack separates {} training records from {} held-out ones "
                                            "with ROC AUC {:.3f}{}",
                                            r.attack, n, n, m.auc, caveat),
                                evidence});
    res.observations.push_back(
        {"membership-low-fpr", round6(m.tpr_at_1pct_fpr),
         fmt::format("at 1% false positives it identifies {:.1f}% of the training records (smallest measurable "
                     "FPR {:.4f})",
                     100 * m.tpr_at_1pct_fpr, m.fpr_resolution),
         evidence});
    res.artefacts["curves"] =
        nlohmann::json::array({{{"title", "Membership inference ROC (diagonal = chance)"},
                                {"x_label", "false-positive rate"},
                                {"y_label", "true-positive rate"},
                                {"diagonal", true},
                                {"series", nlohmann::json::array({{{"name", r.attack}, {"points", roc_points(m)}}})}}});
    return res;
  }

 private:
  std::string context() const { return "check membership-inference"; }

  /// The members' data: the `members` parameter, or the training data the
  /// model's provenance names ("fashion-mnist:train", or a file that exists).
  std::optional<DataSpec> members_spec(const ModelMeta& meta, std::string& why) const {
    std::string source = members_;
    if (source == "auto") {
      const auto& prov = meta.provenance;
      if (prov.contains("training") && prov["training"].is_object() && prov["training"].contains("data") &&
          prov["training"]["data"].contains("source") && prov["training"]["data"]["source"].is_string())
        source = prov["training"]["data"]["source"].get<std::string>();
      else {
        why =
            "no members: the model's provenance names no training data; give the check's 'members' parameter "
            "(the training data)";
        return std::nullopt;
      }
    }
    std::string split = members_split_;
    const std::string fm = "fashion-mnist:";
    if (source.rfind(fm, 0) == 0) {
      split = source.substr(fm.size());
      source = "fashion-mnist";
    }
    if (source != "fashion-mnist" && !std::filesystem::exists(source)) {
      why = fmt::format(
          "no members: the training data '{}' is not available here; give the check's 'members' "
          "parameter",
          source);
      return std::nullopt;
    }
    return DataSpec(source).split(split);
  }

  std::string members_ = "auto";
  std::string members_split_ = "train";
  int64_t candidates_ = 0;
  std::string signal_ = "loss";
};

}  // namespace

std::unique_ptr<Check> make_membership_check(const nlohmann::json& params) {
  return std::make_unique<MembershipCheck>(params);
}

}  // namespace aegis
