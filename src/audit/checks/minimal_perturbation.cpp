// Check "minimal-perturbation": how far (in L2 or Linf) the correctly
// classified samples are from the nearest adversarial example the attacks
// can find. Uses DeepFool or C&W (minimal-perturbation attacks) when the
// registry has them; otherwise an upper bound from PGD run on a geometric
// grid of eps, each sample taking the norm of its first success.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

bool registered(const std::string& name) {
  for (const auto& a : attack_catalog())
    if (a.name == name) return true;
  return false;
}

class MinimalPerturbationCheck : public Check {
 public:
  explicit MinimalPerturbationCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    std::string norm = "l2";
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    AEGIS_CHECK(norm_ != Norm::L1, InvalidArgument, context() << ": 'norm' must be l2 or linf");
    r.get("method", method_);
    max_eps_ = norm_ == Norm::L2 ? 4.0 : 0.3;
    r.get("max_eps", max_eps_);
    r.get("grid_points", grid_points_);
    r.get("steps", steps_);
    r.get("attack_params", attack_params_);
    r.finish();
    AEGIS_CHECK(method_ == "auto" || method_ == "deepfool" || method_ == "cw" || method_ == "pgd-grid", InvalidArgument,
                context() << ": 'method' must be auto, deepfool, cw or pgd-grid, got '" << method_ << "'");
    AEGIS_CHECK(max_eps_ > 0, InvalidArgument, context() << ": 'max_eps' must be > 0");
    AEGIS_CHECK(grid_points_ >= 2 && grid_points_ <= 64, InvalidArgument,
                context() << ": 'grid_points' must be in [2, 64]");
    AEGIS_CHECK(steps_ >= 1, InvalidArgument, context() << ": 'steps' must be >= 1");
    resolved_ = method_;
    if (method_ == "auto") {
      resolved_ = "pgd-grid";
      if (norm_ == Norm::L2 && registered("deepfool"))
        resolved_ = "deepfool";
      else if (norm_ == Norm::L2 && registered("cw"))
        resolved_ = "cw";
    }
    if (resolved_ != "pgd-grid") {
      AEGIS_CHECK(registered(resolved_), InvalidArgument,
                  context() << ": attack '" << resolved_ << "' is not registered in this build");
      AEGIS_CHECK(norm_ == Norm::L2, InvalidArgument, context() << ": " << resolved_ << " measures L2 only");
      make_attack(resolved_, attack_params_);
    } else {
      AEGIS_CHECK(attack_params_.is_object(), InvalidArgument, context() << ": 'attack_params' must be a table");
      nlohmann::json p = attack_params_;
      p["steps"] = steps_;
      make_attack("pgd", attack_params(p, norm_, max_eps_, 0, context()));
    }
  }

  std::string name() const override { return "minimal-perturbation"; }

  std::vector<FindingRule> rules() const override {
    Thresholds t = norm_ == Norm::L2
                       ? Thresholds().higher_is_worse(false).critical(0.3).high(0.6).medium(1.0).low(2.0)
                       : Thresholds().higher_is_worse(false).critical(0.01).high(0.03).medium(0.06).low(0.1);
    return {{"small-minimal-perturbation", "Adversarial examples lie very close to correctly classified inputs",
             fmt::format("median {} norm of the smallest adversarial perturbation "
                         "found, over correctly classified "
                         "samples",
                         norm_name(norm_)),
             t, "AML.T0043", "ML01",
             fmt::format("aegis train --defense pgd-at --norm {} --eps {}", norm_name(norm_),
                         norm_ == Norm::L2 ? "1.0" : "0.1")}};
  }

  nlohmann::json options_json() const override {
    return {{"norm", norm_name(norm_)},    {"method", method_}, {"max_eps", max_eps_},
            {"grid_points", grid_points_}, {"steps", steps_},   {"attack_params", attack_params_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const Dataset& data = ctx.data;
    const int64_t n = data.size();
    torch::Tensor clean_correct = predict_all(ctx.model, data.x, ctx.batch_size).eq(data.y);
    const double inf = std::numeric_limits<double>::infinity();
    torch::Tensor dist = torch::full({n}, inf, torch::kDouble);
    int64_t batches = (n + ctx.batch_size - 1) / ctx.batch_size;
    nlohmann::json grid = nlohmann::json::array();
    if (resolved_ == "pgd-grid") {
      Progress bar(ctx.label, grid_points_);
      for (int64_t i = 0; i < grid_points_; ++i) {
        double eps = max_eps_ * std::pow(1.0 / 64.0, double(grid_points_ - 1 - i) / double(grid_points_ - 1));
        grid.push_back(round6(eps));
        torch::Tensor todo = (clean_correct & torch::isinf(dist)).nonzero().flatten();
        if (todo.size(0) > 0) {
          nlohmann::json p = attack_params_;
          p["steps"] = steps_;
          auto attack = make_attack("pgd", attack_params(p, norm_, eps, ctx.seed, context()));
          SampleAttack a = attack_all(ctx.model, data.subset(todo), *attack, ctx.batch_size, nullptr);
          torch::Tensor norms = (norm_ == Norm::L2 ? a.l2 : a.linf).to(torch::kDouble);
          torch::Tensor hit = a.success;
          dist.index_put_({todo.index({hit})}, norms.index({hit}));
        }
        bar.advance(1);
      }
      bar.finish();
    } else {
      Progress bar(ctx.label, batches);
      auto attack = make_attack(resolved_, attack_params_);
      SampleAttack a = attack_all(ctx.model, data, *attack, ctx.batch_size, &bar);
      torch::Tensor hit = a.success & clean_correct;
      dist.index_put_({hit}, a.l2.to(torch::kDouble).index({hit}));
      bar.finish();
    }
    torch::Tensor d = dist.index({clean_correct});
    int64_t m = d.size(0);
    if (m == 0) {
      res.status = "skipped";
      res.note = "the model classifies no audit sample correctly";
      return res;
    }
    torch::Tensor sorted = std::get<0>(d.sort());
    auto quantile = [&](double q) {
      return sorted[std::min<int64_t>(m - 1, int64_t(q * double(m - 1) + 0.5))].item<double>();
    };
    double med = median_of(d);
    int64_t found = torch::isfinite(d).sum().item<int64_t>();
    auto finite_or_null = [](double v) {
      return std::isfinite(v) ? nlohmann::json(round6(v)) : nlohmann::json(nullptr);
    };
    bool upper = resolved_ == "pgd-grid";
    res.metrics = {{"norm", norm_name(norm_)},
                   {"method", resolved_},
                   {"upper_bound", upper},
                   {"samples", n},
                   {"correct_samples", m},
                   {"found", found},
                   {"median", finite_or_null(med)},
                   {"p25", finite_or_null(quantile(0.25))},
                   {"p75", finite_or_null(quantile(0.75))},
                   {"mean_of_found", found ? round6(d.index({torch::isfinite(d)}).mean().item<double>()) : 0.0}};
    if (upper) res.metrics["grid"] = grid;
    // Graded value: the median, or max_eps-beyond when the attack failed on
    // most samples.
    double graded = std::isfinite(med) ? med : (upper ? max_eps_ : sorted[found > 0 ? found - 1 : 0].item<double>());
    if (!std::isfinite(graded)) graded = max_eps_;
    res.headline.push_back({"median_minimal_" + norm_name(norm_), round6(graded), true});
    res.observations.push_back({"small-minimal-perturbation",
                                round6(graded),
                                fmt::format("median {} distance to the nearest adversarial example {} "
                                            "{:.4f} ({} on {} correctly "
                                            "classified samples; found for {})",
                                            norm_name(norm_), upper ? "is at most" : "is", graded, resolved_, m, found),
                                {{"median", finite_or_null(med)},
                                 {"p25", finite_or_null(quantile(0.25))},
                                 {"method", resolved_},
                                 {"upper_bound", upper},
                                 {"closest_sample_ids", closest_ids(dist, clean_correct, ctx.indices, 10)}}});
    // Curve: fraction of correctly classified samples still robust at radius r.
    nlohmann::json points = nlohmann::json::array();
    double top = upper ? max_eps_ : (found ? sorted[found - 1].item<double>() : max_eps_);
    for (int i = 0; i <= 24; ++i) {
      double r = top * i / 24.0;
      points.push_back({round6(r), round6(d.gt(r).to(torch::kDouble).mean().item<double>())});
    }
    res.artefacts["curves"] =
        nlohmann::json::array({{{"title", fmt::format("Share of correct samples without an "
                                                      "adversarial example within {} radius ({})",
                                                      norm_name(norm_), resolved_)},
                                {"x_label", norm_name(norm_) + " radius"},
                                {"y_label", "share still robust"},
                                {"series", nlohmann::json::array({{{"name", resolved_}, {"points", points}}})}}});
    return res;
  }

 private:
  std::string context() const { return "check minimal-perturbation"; }

  static std::vector<int64_t> closest_ids(const torch::Tensor& dist, const torch::Tensor& correct,
                                          const torch::Tensor& indices, int64_t k) {
    torch::Tensor d = dist.clone();
    d.index_put_({correct.logical_not()}, std::numeric_limits<double>::infinity());
    torch::Tensor order = std::get<1>(d.sort(/*stable=*/true, 0, false));
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < std::min<int64_t>(k, order.size(0)); ++i) {
      int64_t j = order[i].item<int64_t>();
      if (!std::isfinite(d[j].item<double>())) break;
      ids.push_back(indices[j].item<int64_t>());
    }
    return ids;
  }

  Norm norm_ = Norm::L2;
  std::string method_ = "auto", resolved_;
  double max_eps_ = 4.0;
  int64_t grid_points_ = 10;
  int64_t steps_ = 20;
  nlohmann::json attack_params_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<Check> make_minimal_perturbation_check(const nlohmann::json& params) {
  return std::make_unique<MinimalPerturbationCheck>(params);
}

}  // namespace aegis
