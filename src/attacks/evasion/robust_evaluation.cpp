#include "aegis/attacks/evasion/robust_evaluation.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"

namespace aegis {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool quick(const RobustEvaluationOptions& o) { return o.budget_ == "quick"; }

/// Builds a stage's attack: eps, norm and seed filled in unless given; for
/// attacks without a budget (minimal-perturbation ones) eps and norm are left
/// out and success is counted only within eps.
std::unique_ptr<Attack> build_stage(const std::string& name, const nlohmann::json& params,
                                    const RobustEvaluationOptions& o, uint64_t seed) {
  nlohmann::json p = params.is_null() ? nlohmann::json::object() : params;
  AEGIS_CHECK(p.is_object(), InvalidArgument, "parameters of attack '" << name << "' must be a table");
  nlohmann::json bounded = p;
  if (!bounded.contains("eps")) bounded["eps"] = o.eps_;
  if (!bounded.contains("norm")) bounded["norm"] = norm_name(o.norm_);
  if (!bounded.contains("seed")) bounded["seed"] = seed;
  if (o.eot_samples_ > 1 && (name == "apgd" || name == "apgd-t") && !bounded.contains("eot_samples"))
    bounded["eot_samples"] = o.eot_samples_;
  try {
    auto a = make_attack(name, bounded);
    auto b = a->budget();
    AEGIS_CHECK(!b || (b->first == o.norm_ && b->second <= o.eps_ * (1 + 1e-9)), InvalidArgument,
                "attack '" << name << "' has budget " << norm_name(b->first) << " " << b->second
                           << ", outside the evaluation's " << norm_name(o.norm_) << " " << o.eps_);
    return a;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::InvalidArgument ||
        std::string(e.what()).find("unknown parameter 'eps'") == std::string::npos)
      throw;
  }
  nlohmann::json q = p;
  if (!q.contains("seed")) q["seed"] = seed;
  return make_attack(name, q);
}

/// Norm of each perturbation in the evaluation's norm.
torch::Tensor norms_in(const AttackResult& r, const torch::Tensor& x, Norm n) {
  if (n == Norm::Linf) return r.linf;
  if (n == Norm::L2) return r.l2;
  return (r.x_adv - x).flatten(1).abs().sum(1);
}

struct Outcome {
  torch::Tensor success;  ///< [n] within eps and misclassified
  torch::Tensor x_adv;
  int64_t queries = 0;
};

/// Runs `attack` over x (in batches), success only within eps.
Outcome run_batched(Attack& attack, Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                    const RobustEvaluationOptions& o, Progress* bar) {
  Outcome out{torch::zeros({x.size(0)}, torch::kBool), x.clone(), 0};
  for (int64_t s = 0; s < x.size(0); s += o.batch_size_) {
    const int64_t len = std::min(o.batch_size_, x.size(0) - s);
    torch::Tensor xb = x.narrow(0, s, len), yb = y.narrow(0, s, len);
    AttackResult r = attack.run(model, xb, yb);
    torch::Tensor ok = r.success & (norms_in(r, xb, o.norm_) <= o.eps_ * (1 + 1e-5) + 1e-6);
    out.success.narrow(0, s, len).copy_(ok);
    out.x_adv.narrow(0, s, len).copy_(r.x_adv);
    out.queries += r.queries;
    if (bar) bar->advance(len);
  }
  return out;
}

double eps_unbounded(const ModelMeta& m, Norm n) {
  const double range = m.clip_max - m.clip_min;
  if (n == Norm::Linf) return range;
  const double d = double(m.input_numel());
  return n == Norm::L2 ? range * std::sqrt(d) : range * d;
}

}  // namespace

std::vector<std::pair<std::string, nlohmann::json>> default_ensemble(const ModelMeta& meta, bool has_gradients,
                                                                     const RobustEvaluationOptions& o,
                                                                     std::vector<std::string>* notes) {
  const bool q = quick(o);
  const int64_t steps = q ? 20 : 100;
  std::vector<std::pair<std::string, nlohmann::json>> v;
  auto note = [&](const std::string& s) {
    if (notes) notes->push_back(s);
  };
  if (has_gradients) {
    v.push_back({"apgd", {{"loss", "ce"}, {"steps", steps}}});
    if (meta.num_classes >= 4) {
      int64_t k = std::min<int64_t>(q ? 3 : 9, meta.num_classes - 1);
      v.push_back({"apgd-t", {{"loss", "dlr"}, {"steps", steps}, {"target_classes", k}}});
    } else if (meta.num_classes == 3) {
      v.push_back({"apgd", {{"loss", "dlr"}, {"steps", steps}}});
      note("APGD-T needs at least 4 classes: untargeted APGD-DLR runs in its place");
    } else {
      note("APGD-T and APGD-DLR need at least 3 classes: skipped on this 2-class model");
    }
  } else {
    note(
        "the model gives no gradients: APGD-CE and APGD-T skipped, only the black-box Square attack runs, "
        "so the robust accuracy is an upper bound from a weaker attack");
  }
  const auto& s = meta.input_shape;
  const bool square_ok = (s.size() == 3 && (o.norm_ == Norm::Linf || (s[1] >= 5 && s[2] >= 5))) ||
                         (s.size() == 1 && o.norm_ == Norm::Linf);
  if (o.norm_ == Norm::L1) {
    note("Square has no l1 version: skipped");
  } else if (square_ok) {
    v.push_back({"square", {{"queries", q ? 300 : 5000}, {"p_init", 0.8}}});
  } else {
    note("Square needs image inputs for l2: skipped");
  }
  return v;
}

nlohmann::json RobustEvaluation::to_json(bool per_sample) const {
  nlohmann::json j = {{"protocol", protocol},
                      {"norm", norm_name(norm)},
                      {"eps", eps},
                      {"samples", samples},
                      {"clean_accuracy", clean_accuracy},
                      {"robust_accuracy", robust_accuracy},
                      {"seconds", seconds},
                      {"notes", notes},
                      {"warnings", warnings}};
  j["stages"] = nlohmann::json::array();
  for (const auto& s : stages)
    j["stages"].push_back({{"attack", s.attack},
                           {"options", s.options},
                           {"white_box", s.white_box},
                           {"attacked", s.attacked},
                           {"broken", s.broken},
                           {"robust_accuracy_after", s.robust_accuracy_after},
                           {"queries", s.queries},
                           {"seconds", s.seconds}});
  j["preflight"] = preflight.to_json();
  j["sanity_checks"] = nlohmann::json::array();
  for (const auto& c : sanity)
    j["sanity_checks"].push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
  j["sanity_passed"] = warnings.empty();
  if (per_sample) {
    j["per_sample"] = {{"broken_by", broken_by}};
    std::vector<bool> rb;
    for (int64_t i = 0; i < samples; ++i) rb.push_back(robust[i].item<bool>());
    j["per_sample"]["robust"] = rb;
  }
  return j;
}

RobustEvaluation evaluate_robustness(Classifier& model, const Dataset& data, const RobustEvaluationOptions& o) {
  AEGIS_CHECK(o.eps_ > 0 && std::isfinite(o.eps_), InvalidArgument, "evaluation: eps must be > 0, got " << o.eps_);
  AEGIS_CHECK(o.batch_size_ >= 1, InvalidArgument, "evaluation: batch size must be >= 1");
  AEGIS_CHECK(o.budget_ == "quick" || o.budget_ == "standard", InvalidArgument,
              "evaluation: budget must be 'quick' or 'standard', got '" << o.budget_ << "'");
  AEGIS_CHECK(o.eot_samples_ >= 1, InvalidArgument, "evaluation: eot_samples must be >= 1");
  AEGIS_CHECK(o.sanity_samples_ >= 1, InvalidArgument, "evaluation: sanity_samples must be >= 1");
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "evaluation: no samples");
  check_compatible(model.meta(), data);
  const auto start = Clock::now();

  RobustEvaluation r;
  r.norm = o.norm_;
  r.eps = o.eps_;
  r.samples = data.size();
  auto attacks = o.attacks_;
  if (attacks.empty()) {
    attacks = default_ensemble(model.meta(), model.has_gradients(), o, &r.notes);
    r.protocol = "autoattack-" + o.budget_;
  } else {
    r.protocol = "custom";
  }
  AEGIS_CHECK(!attacks.empty(), Unsupported, "evaluation: no attack applies to this model and threat model");

  torch::Tensor x = data.x.to(torch::kFloat), y = data.y;
  // Before any attack: the mistakes that make a model look robust when it is
  // not (probabilities for logits, no gradients, a random or batch-dependent
  // forward, data off the model's scale, an eps that makes no sense).
  std::vector<std::unique_ptr<Attack>> stages;  // built once: preflight asks them, the loop below runs them
  for (size_t i = 0; i < attacks.size(); ++i)
    stages.push_back(build_stage(attacks[i].first, attacks[i].second, o, o.seed_ + i));
  {
    bool gradient_only = true;
    for (const auto& a : stages) gradient_only &= a->needs_gradients();
    r.preflight = run_preflight(
        model, x, y, PreflightOptions(o.norm_, o.eps_).gradient_only(gradient_only).eot_samples(o.eot_samples_));
    if (!o.force_) r.preflight.enforce();
    for (const auto& w : r.preflight.warnings())
      r.warnings.push_back("preflight " + w + "; the robust accuracy is suspect");
  }

  const int64_t n = x.size(0);
  torch::Tensor pred = torch::empty({n}, torch::kLong);
  for (int64_t s = 0; s < n; s += 512) {
    const int64_t len = std::min<int64_t>(512, n - s);
    pred.narrow(0, s, len).copy_(model.predict(x.narrow(0, s, len)));
  }
  r.clean_correct = pred == y;
  r.robust = r.clean_correct.clone();
  r.x_adv = x.clone();
  r.broken_by.assign(size_t(n), "");
  for (int64_t i = 0; i < n; ++i)
    if (!r.clean_correct[i].item<bool>()) r.broken_by[size_t(i)] = "clean";
  r.clean_accuracy = r.clean_correct.to(torch::kDouble).mean().item<double>();

  for (size_t k = 0; k < stages.size(); ++k) {
    const std::string& name = attacks[k].first;
    Attack* attack = stages[k].get();
    AEGIS_CHECK(!attack->needs_gradients() || model.has_gradients(), Unsupported,
                "evaluation: " << name << " needs gradients and this model has none");
    EvaluationStage st;
    st.attack =
        attack->name() == "apgd" ? "apgd-" + attack->options_json().value("loss", std::string("ce")) : attack->name();
    st.options = attack->options_json();
    st.white_box = attack->needs_gradients();
    torch::Tensor idx = r.robust.nonzero().flatten();
    st.attacked = idx.numel();
    const auto t0 = Clock::now();
    if (st.attacked > 0) {
      Progress bar("evaluate " + st.attack, st.attacked);
      Outcome out = run_batched(*attack, model, x.index_select(0, idx), y.index_select(0, idx), o, &bar);
      torch::Tensor b = out.success.nonzero().flatten();
      st.broken = b.numel();
      st.queries = out.queries;
      if (st.broken > 0) {
        torch::Tensor gi = idx.index_select(0, b);
        r.robust.index_fill_(0, gi, false);
        r.x_adv.index_copy_(0, gi, out.x_adv.index_select(0, b));
        auto acc = gi.accessor<int64_t, 1>();
        for (int64_t i = 0; i < gi.size(0); ++i) r.broken_by[size_t(acc[i])] = st.attack;
      }
      bar.finish(fmt::format("broke {} of {}", st.broken, st.attacked));
    }
    st.seconds = since(t0);
    st.robust_accuracy_after = r.robust.to(torch::kDouble).mean().item<double>();
    r.stages.push_back(st);
  }
  r.robust_accuracy = r.robust.to(torch::kDouble).mean().item<double>();

  if (o.sanity_checks_) {
    const auto t0 = Clock::now();
    torch::Tensor correct = r.clean_correct.nonzero().flatten();
    torch::Tensor sub = correct.narrow(0, 0, std::min<int64_t>(o.sanity_samples_, correct.numel()));
    const int64_t m = sub.numel();
    torch::Tensor xs = x.index_select(0, sub), ys = y.index_select(0, sub);
    const int64_t tol = std::max<int64_t>(1, m / 100);
    // The reference attack of the checks: APGD-CE (white box) or Square.
    const bool wb = model.has_gradients();
    const bool q = quick(o);
    auto reference = [&](double eps, int64_t steps, int64_t restarts) {
      RobustEvaluationOptions ro = o;
      ro.eps_ = eps;
      nlohmann::json p = wb ? nlohmann::json{{"loss", "ce"}, {"steps", steps}, {"restarts", restarts}}
                            : nlohmann::json{{"queries", steps * 10}, {"restarts", restarts}};
      auto a = build_stage(wb ? "apgd" : "square", p, ro, o.seed_ + 1000);
      return run_batched(*a, model, xs, ys, ro, nullptr);
    };
    // The re-runs at eps are attacks too: a sample one of them breaks is not
    // robust, whatever the ensemble found (per-sample worst case).
    EvaluationStage rerun;
    rerun.attack = std::string(wb ? "apgd-ce" : "square") + " (sanity re-runs)";
    rerun.white_box = wb;
    auto fold = [&](const Outcome& out) {
      torch::Tensor gi = sub.index_select(0, out.success.nonzero().flatten());
      torch::Tensor still = r.robust.index_select(0, gi);
      torch::Tensor newly = gi.index_select(0, still.nonzero().flatten());
      rerun.queries += out.queries;
      if (newly.numel() == 0) return;
      torch::Tensor local = (out.success & r.robust.index_select(0, sub)).nonzero().flatten();
      r.x_adv.index_copy_(0, newly, out.x_adv.index_select(0, local));
      r.robust.index_fill_(0, newly, false);
      auto acc = newly.accessor<int64_t, 1>();
      for (int64_t i = 0; i < newly.size(0); ++i) r.broken_by[size_t(acc[i])] = rerun.attack;
      rerun.broken += newly.numel();
    };
    const int64_t steps = q ? 20 : 100;
    const std::string ref_name = wb ? "APGD-CE" : "Square";
    if (m > 0 && !(o.norm_ == Norm::L1 && !wb)) {
      torch::Tensor robust_sub = r.robust.index_select(0, sub);
      const int64_t at_eps = robust_sub.sum().item<int64_t>();
      rerun.attacked = at_eps;
      auto t_run = Clock::now();
      Outcome base_out = reference(o.eps_, steps, 1);
      rerun.seconds += since(t_run);
      torch::Tensor base = base_out.success;
      const int64_t ref_at_eps = m - base.sum().item<int64_t>();
      const int64_t at_half = m - reference(o.eps_ / 2, steps, 1).success.sum().item<int64_t>();
      const int64_t at_double = m - reference(o.eps_ * 2, steps, 1).success.sum().item<int64_t>();
      const bool mono = at_half + tol >= at_eps && at_half + tol >= ref_at_eps && ref_at_eps + tol >= at_double &&
                        at_eps + tol >= at_double;
      r.sanity.push_back({"monotone-in-eps", mono,
                          fmt::format("robust on {} samples: {} at eps/2 ({}), {} at eps (ensemble), {} at eps ({}), "
                                      "{} at 2 eps ({})",
                                      m, at_half, ref_name, at_eps, ref_at_eps, ref_name, at_double, ref_name)});
      const double big = eps_unbounded(model.meta(), o.norm_);
      const double unb = reference(big, steps, 1).success.to(torch::kDouble).mean().item<double>();
      r.sanity.push_back({"unbounded-attack-succeeds", unb >= 0.99,
                          fmt::format("{} with eps {:.4g} (the whole input range) broke {:.1f}% of {} samples "
                                      "(expected ~100%)",
                                      ref_name, big, 100 * unb, m)});
      t_run = Clock::now();
      Outcome strong_out = reference(o.eps_, 2 * steps, 2);
      rerun.seconds += since(t_run);
      torch::Tensor strong = strong_out.success;
      const int64_t s1 = base.sum().item<int64_t>(), s2 = strong.sum().item<int64_t>();
      r.sanity.push_back({"more-effort-no-weaker", s2 + tol >= s1,
                          fmt::format("{} broke {} of {} with {} steps, {} with {} steps and 2 restarts", ref_name, s1,
                                      m, steps, s2, 2 * steps)});
      fold(base_out);
      fold(strong_out);
      if (rerun.broken > 0) {
        r.robust_accuracy = r.robust.to(torch::kDouble).mean().item<double>();
        rerun.robust_accuracy_after = r.robust_accuracy;
        r.stages.push_back(rerun);
        r.notes.push_back(
            fmt::format("the sanity checks' re-runs at eps broke {} sample(s) the ensemble left; "
                        "they count (per-sample worst case over every attack run)",
                        rerun.broken));
      }
    }
    int64_t white = 0, black = 0, black_attacked = 0;
    for (const auto& st : r.stages) {
      if (st.white_box) {
        white += st.broken;
      } else {
        black += st.broken;
        black_attacked = std::max(black_attacked, st.attacked);
      }
    }
    bool any_white = false, any_black = false;
    for (const auto& st : r.stages) (st.white_box ? any_white : any_black) = true;
    if (any_white && any_black) {
      const double frac = black_attacked ? double(black) / double(black_attacked) : 0.0;
      const bool ok = !(black >= 3 && frac > 0.1);
      r.sanity.push_back({"black-box-not-stronger", ok,
                          fmt::format("black-box attacks broke {} of the {} samples the white-box attacks left "
                                      "({:.1f}%; white-box broke {}); above 10% suggests masked gradients",
                                      black, black_attacked, 100 * frac, white)});
    }
    r.notes.push_back(fmt::format("sanity checks took {:.1f}s", since(t0)));
  }
  for (const auto& c : r.sanity) {
    if (c.passed) continue;
    std::string why;
    if (c.name == "monotone-in-eps")
      why = "robust accuracy rose with eps: the attacks are not converging or gradients are masked";
    else if (c.name == "unbounded-attack-succeeds")
      why = "an attack with an unbounded budget failed: gradients are masked, obfuscated, or the attack is broken";
    else if (c.name == "more-effort-no-weaker")
      why = "more steps and restarts broke fewer samples: the model or its gradients are noisy (try EOT)";
    else if (c.name == "black-box-not-stronger")
      why = "a black-box attack broke many samples the white-box attacks could not: gradients are masked";
    else
      why = "sanity check failed";
    r.warnings.push_back(c.name + ": " + why + " (" + c.detail + "); the robust accuracy is suspect");
  }
  r.seconds = since(start);
  return r;
}

}  // namespace aegis
