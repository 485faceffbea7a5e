// Check "dp-audit": is the model's differential-privacy claim true, as far
// as an experiment can tell? It reruns the model's own DP-SGD recipe (its
// provenance: architecture, options, sigma, C, batch size, epochs) on the
// training data plus canaries drawn from the audit sample, each included with
// probability 1/2, and turns the canaries' scores into a 95% lower bound on
// epsilon (one-run audit, privacy/dp_audit.h). A bound above the epsilon the
// accountant claims for that very run means the implementation does not give
// the guarantee (critical). Beside it, a non-private twin (the same model,
// data and canaries, trained without clipping or noise) shows what the
// privacy buys: its bound and the canaries' membership-inference AUC next
// to the private run's. The experiment retrains the model twice, on as many
// training samples as the provenance says it was trained on (the first ones
// of --training-data): it costs what training did, so suites for large
// models set `train_limit` or `epochs`.
//
// The bound is one-sided: a correct implementation can still leak less than
// it claims, so passing says "no violation found", never "the claim is
// tight". Without a privacy record or training data the check is skipped.

#include "aegis/privacy/dp_audit.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "aegis/attacks/registry.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "aegis/privacy/dp_sgd.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

/// The recipe a model was trained with, as its provenance records it.
TrainOptions recipe_options(const nlohmann::json& o) {
  TrainOptions t;
  t.epochs_ = o.value("epochs", t.epochs_);
  t.batch_size_ = o.value("batch_size", t.batch_size_);
  t.lr_ = o.value("lr", t.lr_);
  t.weight_decay_ = o.value("weight_decay", t.weight_decay_);
  t.momentum_ = o.value("momentum", t.momentum_);
  t.label_smoothing_ = o.value("label_smoothing", t.label_smoothing_);
  t.optimizer_ = o.value("optimizer", t.optimizer_);
  t.schedule_ = o.value("schedule", t.schedule_);
  t.seed_ = o.value("seed", t.seed_);
  return t;
}

class DpAuditCheck : public Check {
 public:
  explicit DpAuditCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("canaries", canaries_);
    r.get("confidence", confidence_);
    r.get("train_limit", train_limit_);
    r.get("epochs", epochs_);
    r.get("twin", twin_);
    r.get("twin_lr", twin_lr_);
    r.get("twin_epochs", twin_epochs_);
    r.finish();
    DpAuditOptions().canaries(canaries_).confidence(confidence_).validate();
    AEGIS_CHECK(train_limit_ >= 0, InvalidArgument,
                context() << ": 'train_limit' must be >= 0 (0 = as many as the model was trained on)");
    AEGIS_CHECK(epochs_ >= 0, InvalidArgument, context() << ": 'epochs' must be >= 0 (0 = the recipe's)");
    AEGIS_CHECK(twin_lr_ > 0, InvalidArgument, context() << ": 'twin_lr' must be > 0");
    AEGIS_CHECK(twin_epochs_ >= 0, InvalidArgument, context() << ": 'twin_epochs' must be >= 0 (0 = the recipe's)");
  }

  std::string name() const override { return "dp-audit"; }

  std::vector<FindingRule> rules() const override {
    return {{"dp-guarantee-violated",
             "The differential-privacy guarantee does not hold: training leaks more than the claimed epsilon",
             fmt::format("empirical {:.0f}% lower bound on epsilon divided by the claimed epsilon (1 = the claim is "
                         "broken)",
                         100 * confidence_),
             Thresholds().higher_is_worse(true).critical(1.0), "AML.T0024.000", "ML04",
             "aegis train --defense dp-sgd --epsilon E, after fixing the pipeline's noise, clipping, sampling or "
             "accounting"}};
  }

  nlohmann::json options_json() const override {
    return {{"canaries", canaries_}, {"confidence", confidence_}, {"train_limit", train_limit_}, {"epochs", epochs_},
            {"twin", twin_},         {"twin_lr", twin_lr_},       {"twin_epochs", twin_epochs_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const ModelMeta& meta = ctx.model.meta();
    const nlohmann::json& prov = meta.provenance;
    auto skip = [&](std::string why) {
      res.status = "skipped";
      res.note = std::move(why);
      return res;
    };
    if (!prov.contains("privacy") || !prov["privacy"].is_object() || !prov.contains("training"))
      return skip("the model carries no DP-SGD privacy record (train it with aegis train --defense dp-sgd)");
    if (!ctx.training) return skip("no training data given (aegis audit --training-data): the audit retrains on it");
    const int64_t m = std::min(canaries_, ctx.data.size());
    if (m < 20) return skip(fmt::format("the audit sample has {} samples; the canaries need at least 20", m));

    const nlohmann::json& privacy = prov["privacy"];
    const nlohmann::json& training = prov["training"];
    TrainOptions recipe = recipe_options(training.value("options", nlohmann::json::object()));
    recipe.seed_ = derive_seed(ctx.seed, "dp-audit training");
    if (epochs_ > 0) recipe.epochs_ = epochs_;
    const nlohmann::json dpo = training.value("objective_options", nlohmann::json::object());
    DpSgdOptions dp(privacy.value("max_grad_norm", 1.0));
    dp.noise_multiplier(privacy.value("noise_multiplier", 0.0))
        .delta(privacy.value("delta", 1e-5))
        .clipping(privacy.value("clipping", std::string("flat")))
        .accountant(privacy.value("accountant", std::string("prv")))
        .physical_batch_size(dpo.value("physical_batch_size", int64_t(64)))
        .ema_decay(dpo.value("ema_decay", 0.0))
        .seeded(true);  // reproducible audits; the noise is still Gaussian of the recorded sigma
    try {
      dp.validate();
    } catch (const Error& e) {
      return skip(fmt::format("the privacy record cannot be replayed: {}", one_line_message(e)));
    }

    // As many training samples as the recipe trained on (its provenance), unless told.
    int64_t limit = train_limit_;
    if (limit == 0 && training.contains("data") && training["data"].value("samples", int64_t(0)) > 0)
      limit = training["data"]["samples"].get<int64_t>();
    Dataset train = limit > 0 ? ctx.training->head(limit) : *ctx.training;
    // Canaries come from the audit sample: samples the model never saw.
    Dataset pool = ctx.data;
    DpAuditOptions audit =
        DpAuditOptions().canaries(m).confidence(confidence_).seed(derive_seed(ctx.seed, "dp-audit canaries"));
    audit.batch_size(ctx.batch_size);

    std::string init_note;
    auto fresh = [&]() -> std::shared_ptr<ScriptClassifier> {
      const auto& arch = prov.value("architecture", nlohmann::json::object());
      const std::string name = arch.value("name", std::string());
      const auto names = architecture_names();
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        seed_everything(derive_seed(ctx.seed, "dp-audit init"));
        ArchitectureOptions o(name, meta.input_shape, meta.num_classes);
        o.dropout(arch.value("dropout", 0.0)).clip(meta.clip_min, meta.clip_max);
        if (arch.contains("hidden")) o.hidden(arch["hidden"].get<std::vector<int64_t>>());
        if (arch.contains("normalization"))
          o.normalization(arch["normalization"]["mean"].get<std::vector<double>>(),
                          arch["normalization"]["std"].get<std::vector<double>>());
        init_note = fmt::format("a fresh built-in {} (the model's architecture)", name);
        return build_architecture(o);
      }
      // A user model: start from its weights. They were trained on the same
      // data, but not on the canaries, whose inclusion is drawn afterwards;
      // the guarantee holds for any start independent of them.
      auto* script = dynamic_cast<ScriptClassifier*>(&ctx.model);
      if (!script) return nullptr;
      init_note = "the audited model's own weights (a user architecture cannot be re-initialised)";
      return script->clone();
    };

    Progress bar(ctx.label, twin_ ? 2 : 1);
    auto model = fresh();
    if (!model) return skip("the model is not a TorchScript model aegis can retrain");
    AuditTrainer private_trainer = [&](ScriptClassifier& mdl, const Dataset& d) {
      return train_dp_sgd(mdl, d, nullptr, recipe, dp).epsilon;
    };
    DpAuditResult priv = one_run_audit(*model, train, pool, private_trainer, dp.delta_, audit);
    bar.advance(1);

    std::optional<DpAuditResult> twin;
    if (twin_) {
      auto twin_model = fresh();
      AuditTrainer plain = [&](ScriptClassifier& mdl, const Dataset& d) {
        TrainOptions o = recipe;
        o.optimizer("adam").lr(twin_lr_).schedule("cosine");
        if (twin_epochs_ > 0) o.epochs(twin_epochs_);
        aegis::train(mdl, d, nullptr, o);
        return std::numeric_limits<double>::infinity();
      };
      twin = one_run_audit(*twin_model, train, pool, plain, dp.delta_, audit);
      bar.advance(1);
    }
    const double lb = priv.bound.epsilon_lower_bound, claimed = priv.claimed_epsilon;
    bar.finish(fmt::format("epsilon lower bound {:.3f} against the claimed {:.3f}{}", lb, claimed,
                           twin ? fmt::format(" (non-private twin: {:.3f})", twin->bound.epsilon_lower_bound) : ""));

    res.metrics = {{"private", priv.to_json()},
                   {"claimed_epsilon_of_the_model", privacy.value("epsilon", 0.0)},
                   {"recipe", {{"training", recipe.to_json()}, {"dp", dp.to_json()}}},
                   {"initialisation", init_note},
                   {"training_samples", train.size()},
                   {"canary_source", pool.source + " (relabelled to a random other class)"}};
    res.metrics["private"]["membership"].erase("roc");
    if (twin) {
      res.metrics["non_private_twin"] = twin->to_json();
      res.metrics["non_private_twin"]["membership"].erase("roc");
      res.metrics["non_private_twin"]["recipe"] =
          fmt::format("the same data, canaries and batch size, without clipping or noise (adam, lr {}, {} epochs)",
                      twin_lr_, twin_epochs_ > 0 ? twin_epochs_ : recipe.epochs_);
    }
    res.headline.push_back({"dp_epsilon_lower_bound", round6(lb), false});
    res.headline.push_back({"dp_canary_membership_auc", round6(priv.membership.auc), false});
    nlohmann::json evidence = {
        {"epsilon_lower_bound", round6(lb)}, {"claimed_epsilon", round6(claimed)}, {"delta", dp.delta_},
        {"canaries", priv.bound.canaries},   {"guesses", priv.bound.guesses},      {"correct", priv.bound.correct},
        {"confidence", confidence_}};
    res.observations.push_back(
        {"dp-guarantee-violated", round6(lb / claimed),
         fmt::format("retraining with the model's recipe (sigma {:.4f}, C {}, {} steps) claims epsilon {:.3f} at "
                     "delta {}; {} canaries give a {:.0f}% lower bound of {:.3f} ({} of {} guesses right){}",
                     dp.noise_multiplier_, dp.max_grad_norm_, privacy.value("steps", int64_t(0)), claimed, dp.delta_, m,
                     100 * confidence_, lb, priv.bound.correct, priv.bound.guesses,
                     lb > claimed ? ": the guarantee is broken"
                                  : ": no violation found (a lower bound: it cannot show the claim is tight)"),
         evidence});

    nlohmann::json cats = {"epsilon lower bound", "canary membership AUC"};
    nlohmann::json series = nlohmann::json::array({{{"name", fmt::format("DP-SGD (claims epsilon {:.2f})", claimed)},
                                                    {"values", {round6(lb), round6(priv.membership.auc)}}}});
    nlohmann::json roc = nlohmann::json::array({{{"name", "DP-SGD"}, {"points", roc_points(priv.membership)}}});
    if (twin) {
      series.push_back({{"name", "non-private twin"},
                        {"values", {round6(twin->bound.epsilon_lower_bound), round6(twin->membership.auc)}}});
      roc.push_back({{"name", "non-private twin"}, {"points", roc_points(twin->membership)}});
    }
    res.artefacts["bars"] = nlohmann::json::array(
        {{{"title", "What the privacy buys: empirical epsilon and membership inference, private vs not"},
          {"categories", cats},
          {"series", series}}});
    res.artefacts["curves"] = nlohmann::json::array({{{"title", "Canary membership inference ROC (diagonal = chance)"},
                                                      {"x_label", "false-positive rate"},
                                                      {"y_label", "true-positive rate"},
                                                      {"diagonal", true},
                                                      {"series", roc}}});
    return res;
  }

 private:
  std::string context() const { return "check dp-audit"; }

  int64_t canaries_ = 500;
  double confidence_ = 0.95;
  int64_t train_limit_ = 0;
  int64_t epochs_ = 0;
  bool twin_ = true;
  double twin_lr_ = 1e-3;
  int64_t twin_epochs_ = 0;
};

}  // namespace

std::unique_ptr<Check> make_dp_audit_check(const nlohmann::json& params) {
  return std::make_unique<DpAuditCheck>(params);
}

}  // namespace aegis
