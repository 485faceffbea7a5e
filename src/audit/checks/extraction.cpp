// Check "model-extraction": how much of the model a thief copies with a small
// query budget. KnockoffNets: the first half of the audit sample (labels
// unused) or uniform noise is sent as queries, a substitute of the victim's
// architecture is trained on the answers as the thief sees them (`access`:
// full, topk, rounded, label), and the second half measures fidelity
// (agreement with the victim) and how often adversarial examples crafted on
// the copy fool the victim, against same-norm noise.

#include "aegis/attacks/extraction/extraction.h"

#include <fmt/format.h>

#include "aegis/attacks/extraction/knockoff.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class ExtractionCheck : public Check {
 public:
  explicit ExtractionCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("budget", budget_);
    r.get("query_data", query_data_);
    r.get("access", access_);
    r.get("substitute_epochs", substitute_epochs_);
    r.get("transfer_eps", transfer_eps_);
    r.get("transfer_samples", transfer_samples_);
    r.finish();
    AEGIS_CHECK(budget_ >= 1, InvalidArgument, context() << ": 'budget' must be >= 1, got " << budget_);
    AEGIS_CHECK(query_data_ == "sample" || query_data_ == "noise", InvalidArgument,
                context() << ": 'query_data' must be sample or noise, got '" << query_data_ << "'");
    AEGIS_CHECK(substitute_epochs_ >= 1, InvalidArgument, context() << ": 'substitute_epochs' must be >= 1");
    OutputAccess().mode(parse_answer_mode(access_)).validate();
    TransferOptions().eps(transfer_eps_).samples(transfer_samples_).validate();
  }

  std::string name() const override { return "model-extraction"; }

  std::vector<FindingRule> rules() const override {
    return {{"extraction-fidelity", "A copy of the model can be stolen through its answers",
             fmt::format("agreement with the victim of a substitute trained on {} answers ({})", budget_, access_),
             Thresholds().higher_is_worse(true).high(0.9).medium(0.75).low(0.5), "AML.T0024.002", "ML05",
             "aegis serve with rate limits and the query monitor (docs/serve.md); --output label costs the thief "
             "little"}};
  }

  nlohmann::json options_json() const override {
    return {{"budget", budget_},
            {"query_data", query_data_},
            {"access", access_},
            {"substitute_epochs", substitute_epochs_},
            {"transfer_eps", transfer_eps_},
            {"transfer_samples", transfer_samples_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const Dataset& data = ctx.data;
    if (data.size() < 4) {
      res.status = "skipped";
      res.note = "model extraction needs at least 4 audit samples (half queries, half evaluation)";
      return res;
    }
    const int64_t half = data.size() / 2;
    Dataset test = data.subset(torch::arange(half, data.size(), torch::kLong));
    Dataset pool = query_data_ == "noise" ? noise_queries(ctx.model.meta(), budget_, ctx.seed) : data.head(half);
    const int64_t budget = std::min(budget_, pool.size());
    const OutputAccess access = OutputAccess().mode(parse_answer_mode(access_));
    ExtractionResult ex = knockoff_extraction(
        ctx.model, pool,
        KnockoffOptions()
            .budget(budget)
            .access(access)
            .substitute(
                SurrogateModelOptions().train(TrainOptions().epochs(substitute_epochs_).lr(2e-3).seed(ctx.seed)))
            .seed(ctx.seed));
    ExtractionEvaluation ev =
        evaluate_extraction(ctx.model, *ex.substitute, test,
                            TransferOptions().eps(transfer_eps_).samples(transfer_samples_).steps(10).seed(ctx.seed));
    res.metrics = ex.to_json();
    res.metrics["evaluation"] = ev.to_json();
    res.headline.push_back({"extraction_fidelity", round6(ev.fidelity), false});
    res.headline.push_back({"extraction_transfer_rate", round6(ev.transfer_rate), false});
    res.observations.push_back(
        {"extraction-fidelity",
         round6(ev.fidelity),
         fmt::format("with {} queries ({} answers, {} queries) a substitute agrees with the model on {:.1f}% of {} "
                     "held-out samples (its accuracy {:.3f}, the model's {:.3f}); adversarial examples crafted on it "
                     "(linf {}) fool the model {:.1f}% of the time, same-norm noise {:.1f}%",
                     budget, access_, query_data_ == "noise" ? "noise" : "in-distribution", 100 * ev.fidelity,
                     ev.test_samples, ev.substitute_accuracy, ev.victim_accuracy, eps_str(transfer_eps_),
                     100 * ev.transfer_rate, 100 * ev.noise_rate),
         {{"fidelity", round6(ev.fidelity)},
          {"substitute_accuracy", round6(ev.substitute_accuracy)},
          {"victim_accuracy", round6(ev.victim_accuracy)},
          {"transfer_rate", round6(ev.transfer_rate)},
          {"noise_rate", round6(ev.noise_rate)},
          {"queries", ex.queries}}});
    return res;
  }

 private:
  std::string context() const { return "check model-extraction"; }

  int64_t budget_ = 500;
  std::string query_data_ = "sample";
  std::string access_ = "full";
  int64_t substitute_epochs_ = 5;
  double transfer_eps_ = 0.1;
  int64_t transfer_samples_ = 100;
};

}  // namespace

std::unique_ptr<Check> make_extraction_check(const nlohmann::json& params) {
  return std::make_unique<ExtractionCheck>(params);
}

}  // namespace aegis
