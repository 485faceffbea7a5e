// aegis explain --adversarial / --robustness: explanations of attacks and
// the steerability of explanations (see explain_adversarial.h).

#include "explain_adversarial.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/explain/explanation_attack.h"
#include "cli_common.h"

namespace aegis::cli {

namespace {

/// |map| summed over channels, scaled so its 99th percentile is 1, as RGB [N, 3, H, W].
torch::Tensor heat_rgb(const torch::Tensor& values) {
  torch::Tensor h = values.abs().sum(1, true);
  torch::Tensor flat = h.flatten(1);
  torch::Tensor top = std::get<0>(flat.sort(1)).select(1, int64_t(0.99 * double(flat.size(1) - 1)));
  return (h / top.clamp_min(1e-12).view({-1, 1, 1, 1})).clamp(0, 1).expand({-1, 3, -1, -1});
}

/// Inputs in [0, 1] as RGB [N, 3, H, W] (gray images repeated).
torch::Tensor input_rgb(const torch::Tensor& x, const ModelMeta& meta) {
  torch::Tensor x01 = ((x - meta.clip_min) / (meta.clip_max - meta.clip_min)).clamp(0, 1);
  return x01.size(1) == 3 ? x01 : x01.mean(1, true).expand({-1, 3, -1, -1});
}

std::vector<double> doubles(const torch::Tensor& t) {
  torch::Tensor d = t.to(torch::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

/// The attack's registry parameters: --eps, and --attack-steps when given.
nlohmann::json attack_params(const ExplainAdversarialFlags& f) {
  nlohmann::json params = {{"eps", f.eps}};
  if (f.steps_opt && f.steps_opt->count()) params["steps"] = f.attack_steps;
  return params;
}

}  // namespace

void add_explain_adversarial_flags(CLI::App* sub, ExplainAdversarialFlags& f) {
  sub->add_option("--adversarial", f.attack,
                  "Also explain adversarial versions of the samples made by this attack (pgd, fgsm, apgd-ce, "
                  "square, ...: `aegis attack --help`), side by side with the clean ones in adversarial.png, "
                  "with how far each map moved (top-k overlap, L2 distance of the normalised maps)");
  sub->add_option("--eps", f.eps, "--adversarial and --robustness: the L-inf budget")->capture_default_str();
  f.steps_opt = sub->add_option("--attack-steps", f.attack_steps,
                                "--adversarial: the attack's iterations (its default when not given); "
                                "--robustness: the explanation attack's PGD steps (30)");
  sub->add_flag("--robustness", f.robustness,
                "Explanation robustness (Ghorbani et al. 2019): a perturbation within --eps that keeps the class "
                "but moves the map; reports the top-k overlap left, against random noise of the same eps "
                "(robustness.png, robustness in the JSON)");
  sub->add_option("--robustness-map", f.robustness_map,
                  "--robustness: the map attacked, saliency or gradient-x-input (the --method's own maps of the "
                  "attacked inputs are measured too)")
      ->capture_default_str();
  sub->add_option("--top-k", f.top_k, "--adversarial, --robustness: features compared (0: 5% of them)")
      ->capture_default_str();
}

void check_explain_adversarial_flags(const ExplainAdversarialFlags& f) {
  AEGIS_CHECK(std::isfinite(f.eps) && f.eps > 0, InvalidArgument, "--eps must be > 0, got " << f.eps);
  AEGIS_CHECK(f.top_k >= 0, InvalidArgument, "--top-k must be >= 0 (0: 5% of the features), got " << f.top_k);
  AEGIS_CHECK(!f.steps_opt || !f.steps_opt->count() || f.attack_steps >= 1, InvalidArgument,
              "--attack-steps must be >= 1, got " << f.attack_steps);
  if (!f.attack.empty()) make_attack(f.attack, attack_params(f));
  if (f.robustness) parse_explanation_map_kind(f.robustness_map);
}

void run_explain_adversarial(const ExplainAdversarialFlags& f, Classifier& model, Explainer& explainer,
                             const Dataset& data, const Attribution& clean, bool target_predicted, uint64_t seed,
                             int64_t batch_size, const std::string& dir, nlohmann::json& j,
                             std::vector<std::string>& lines) {
  check_explain_adversarial_flags(f);
  const ModelMeta& meta = model.meta();
  const int64_t features = explain::feature_relevance(clean.values).size(1);
  AEGIS_CHECK(f.top_k <= features, InvalidArgument,
              "--top-k " << f.top_k << " exceeds the " << features << " features of a sample");
  const int64_t k = f.top_k > 0 ? f.top_k : explain::default_top_k(features);
  const bool image = data.x.dim() == 4;
  const int64_t scale = image && data.x.size(2) <= 32 ? 3 : 1;
  auto name = [&](int64_t c) { return class_label(meta, data, c); };

  if (!f.attack.empty()) {
    auto attack = make_attack(f.attack, attack_params(f));
    AEGIS_CHECK(!attack->needs_gradients() || model.has_gradients(), Unsupported,
                "--adversarial " << f.attack << " needs gradients and this model gives none (try square)");
    AttackResult adv = attack->run_batched(model, data.x, data.y, batch_size);
    // The adversarial maps explain what the model now predicts (with --target predicted), else the same target.
    const torch::Tensor adv_target = target_predicted ? adv.adv_pred : clean.target;
    Attribution a = explainer.explain_batched(model, adv.x_adv, adv_target, batch_size);
    const torch::Tensor overlap = explain::top_k_overlap(clean.values, a.values, k);
    const torch::Tensor distance = explain::normalised_map_distance(clean.values, a.values);
    save_npy(adv.x_adv, dir + "/adversarial_inputs.npy");
    save_npy(a.values, dir + "/adversarial_attributions.npy");
    nlohmann::json samples = nlohmann::json::array();
    for (int64_t i = 0; i < data.size(); ++i)
      samples.push_back({{"adv_pred", adv.adv_pred[i].item<int64_t>()},
                         {"attack_success", adv.success[i].item<bool>()},
                         {"linf", adv.linf[i].item<double>()},
                         {"target", a.target[i].item<int64_t>()},
                         {"topk_overlap", overlap[i].item<double>()},
                         {"map_distance", distance[i].item<double>()}});
    nlohmann::json out = {{"attack", f.attack},
                          {"params", attack->options_json()},
                          {"success_rate", adv.success_rate()},
                          {"top_k", k},
                          {"mean_topk_overlap", overlap.mean().item<double>()},
                          {"mean_map_distance", distance.mean().item<double>()},
                          {"queries", a.queries + adv.queries},
                          {"samples", samples}};
    if (image) {
      std::vector<std::vector<std::string>> captions;
      for (int64_t i = 0; i < data.size(); ++i)
        captions.push_back(
            {"true  " + name(data.y[i].item<int64_t>()), "clean " + name(clean.target[i].item<int64_t>()),
             "adv   " + name(adv.adv_pred[i].item<int64_t>()), fmt::format("top-k {:.2f}", overlap[i].item<double>())});
      const std::string grid = dir + "/adversarial.png";
      write_image_grid(
          grid, {input_rgb(data.x, meta), heat_rgb(clean.values), input_rgb(adv.x_adv, meta), heat_rgb(a.values)}, 0.0,
          1.0, scale, captions);
      out["grid"] = grid;
    }
    j["adversarial"] = out;
    lines.push_back(fmt::format(
        "adversarial ({} at eps {}): fooled the model on {} of {} samples; the {} maps keep {:.2f} of their top {} "
        "features on average (L2 distance of the normalised maps {:.3f}); wrote adversarial_inputs.npy, "
        "adversarial_attributions.npy{}",
        f.attack, f.eps, adv.success.sum().item<int64_t>(), data.size(), explainer.name(),
        overlap.mean().item<double>(), k, distance.mean().item<double>(),
        image ? ", adversarial.png (clean input, clean map, adversarial input, adversarial map)" : ""));
  }

  if (f.robustness) {
    AEGIS_CHECK(model.has_gradients(), Unsupported,
                "--robustness attacks the model's gradient maps: it needs a model file, not a served model");
    ExplanationAttackOptions o(f.eps);
    o.steps(f.steps_opt && f.steps_opt->count() ? f.attack_steps : 30)
        .top_k(k)
        .map(parse_explanation_map_kind(f.robustness_map))
        .seed(seed);
    ExplanationAttackResult r = attack_explanation(model, data.x, o);
    // The --method's own maps of the attacked inputs, for the same class.
    Attribution moved = explainer.explain_batched(model, r.x_adv, clean.target, batch_size);
    const torch::Tensor method_overlap = explain::top_k_overlap(clean.values, moved.values, k);
    nlohmann::json out = r.to_json(true);
    out["options"] = o.to_json();
    out["method"] = explainer.name();
    out["method_topk_overlap"] = doubles(method_overlap);
    out["method_mean_topk_overlap"] = method_overlap.mean().item<double>();
    save_npy(r.x_adv, dir + "/robustness_inputs.npy");
    if (image) {
      std::vector<std::vector<std::string>> captions;
      for (int64_t i = 0; i < data.size(); ++i)
        captions.push_back(
            {"class " + name(r.label[i].item<int64_t>()) + (r.label_kept[i].item<bool>() ? "" : " (lost)"),
             fmt::format("top-k {:.2f}", r.topk_overlap[i].item<double>()),
             fmt::format("noise {:.2f}", r.random_topk_overlap[i].item<double>()),
             fmt::format("linf  {:.3f}", r.linf[i].item<double>())});
      const std::string grid = dir + "/robustness.png";
      write_image_grid(
          grid, {input_rgb(data.x, meta), heat_rgb(r.original_map), input_rgb(r.x_adv, meta), heat_rgb(r.attacked_map)},
          0.0, 1.0, scale, captions);
      out["grid"] = grid;
    }
    j["robustness"] = out;
    lines.push_back(fmt::format(
        "explanation robustness (Ghorbani et al.; {} maps, eps {}, {} steps): the top {} features keep {:.2f} of "
        "their place after the attack (drop {:.2f}) against {:.2f} under random noise of the same eps; class kept "
        "on {} of {}; the {} maps of the attacked inputs keep {:.2f}; wrote robustness_inputs.npy{}",
        f.robustness_map, f.eps, o.steps_, k, r.topk_overlap.mean().item<double>(), r.mean_overlap_drop(),
        r.random_topk_overlap.mean().item<double>(), r.label_kept.sum().item<int64_t>(), data.size(), explainer.name(),
        method_overlap.mean().item<double>(), image ? ", robustness.png (input, map, attacked input, its map)" : ""));
  }
}

}  // namespace aegis::cli
