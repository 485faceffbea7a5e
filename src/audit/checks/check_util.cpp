#include "audit/checks/check_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"

namespace aegis::audit_internal {

torch::Tensor BlackBoxView::compute_logits(const torch::Tensor& x, bool grad) {
  AEGIS_CHECK(!grad, Unsupported, "black-box view: gradients are not available");
  return inner_.logits(x);
}

SampleAttack attack_all(Classifier& model, const Dataset& data, Attack& attack, int64_t batch_size, Progress* bar) {
  SampleAttack out;
  std::vector<torch::Tensor> success, x_adv, adv_pred, l2, linf;
  for (const Batch& b : data.batches(batch_size)) {
    AttackResult r = attack.run(model, b.x, b.y);
    success.push_back(r.success);
    x_adv.push_back(r.x_adv);
    adv_pred.push_back(r.adv_pred);
    l2.push_back(r.l2);
    linf.push_back(r.linf);
    out.queries += r.queries;
    if (bar) bar->advance(1);
  }
  if (success.empty()) {
    out.success = torch::zeros({0}, torch::kBool);
    out.x_adv = data.x;
    out.adv_pred = torch::zeros({0}, torch::kLong);
    out.l2 = out.linf = torch::zeros({0});
    return out;
  }
  out.success = torch::cat(success);
  out.x_adv = torch::cat(x_adv);
  out.adv_pred = torch::cat(adv_pred);
  out.l2 = torch::cat(l2);
  out.linf = torch::cat(linf);
  return out;
}

torch::Tensor predict_all(Classifier& model, const torch::Tensor& x, int64_t batch_size) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size)
    parts.push_back(model.predict(x.slice(0, i, std::min(i + batch_size, x.size(0)))));
  return parts.empty() ? torch::zeros({0}, torch::kLong) : torch::cat(parts);
}

torch::Tensor probabilities_all(Classifier& model, const torch::Tensor& x, int64_t batch_size) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size)
    parts.push_back(model.probabilities(x.slice(0, i, std::min(i + batch_size, x.size(0)))));
  return parts.empty() ? torch::zeros({0, model.meta().num_classes}) : torch::cat(parts);
}

std::string pick_attack(const std::string& threat, const std::string& requested) {
  AEGIS_CHECK(threat == "white-box" || threat == "black-box", InvalidArgument,
              "threat must be 'white-box' or 'black-box', got '" << threat << "'");
  const auto& catalog = attack_catalog();
  if (!requested.empty()) {
    auto it = std::find_if(catalog.begin(), catalog.end(), [&](const AttackInfo& a) { return a.name == requested; });
    std::string names;
    for (const auto& a : catalog) names += (names.empty() ? "" : ", ") + a.name;
    AEGIS_CHECK(it != catalog.end(), InvalidArgument,
                "unknown attack '" << requested << "' (available: " << names << ")");
    AEGIS_CHECK(threat == "white-box" || !it->white_box, InvalidArgument,
                "attack '" << requested
                           << "' needs gradients: it cannot run under the "
                              "black-box threat model");
    return requested;
  }
  if (threat == "white-box") return "pgd";
  for (const auto& a : catalog)
    if (!a.white_box) return a.name;
  return "";
}

nlohmann::json attack_params(const nlohmann::json& extra, Norm norm, double eps, uint64_t seed,
                             const std::string& context) {
  AEGIS_CHECK(extra.is_object(), InvalidArgument, context << ": 'attack_params' must be a table");
  for (const char* k : {"eps", "norm", "seed"})
    AEGIS_CHECK(!extra.contains(k), InvalidArgument,
                context << ": 'attack_params' may not set '" << k << "' (the check sets it)");
  nlohmann::json p = extra;
  p["eps"] = eps;
  p["norm"] = norm_name(norm);
  p["seed"] = seed;
  return p;
}

bool is_image_data(const Dataset& data) {
  auto s = data.sample_shape();
  return (s.size() == 2 && s[0] >= 4 && s[1] >= 4) ||
         (s.size() == 3 && (s[0] == 1 || s[0] == 3) && s[1] >= 4 && s[2] >= 4);
}

nlohmann::json adversarial_examples(const Classifier& model, const Dataset& data, const torch::Tensor& indices,
                                    const torch::Tensor& clean_correct, const SampleAttack& a, int64_t k) {
  nlohmann::json out = nlohmann::json::array();
  if (!is_image_data(data) || !a.success.defined()) return out;
  const auto& meta = model.meta();
  torch::Tensor chosen = (a.success & clean_correct).nonzero().flatten();
  int scale = data.sample_shape().back() < 64 ? 3 : 1;
  for (int64_t i = 0; i < std::min<int64_t>(k, chosen.size(0)); ++i) {
    int64_t j = chosen[i].item<int64_t>();
    int64_t label = data.y[j].item<int64_t>(), pred = a.adv_pred[j].item<int64_t>();
    out.push_back({{"index", indices[j].item<int64_t>()},
                   {"label", label},
                   {"label_name", meta.class_name(label)},
                   {"adv_pred", pred},
                   {"adv_pred_name", meta.class_name(pred)},
                   {"l2", round6(a.l2[j].item<double>())},
                   {"linf", round6(a.linf[j].item<double>())},
                   {"clean_png", base64_encode(encode_png(data.x[j], meta.clip_min, meta.clip_max, scale))},
                   {"adv_png", base64_encode(encode_png(a.x_adv[j], meta.clip_min, meta.clip_max, scale))}});
  }
  return out;
}

std::vector<int64_t> first_ids(const torch::Tensor& mask, const torch::Tensor& indices, int64_t k) {
  std::vector<int64_t> ids;
  torch::Tensor where = mask.nonzero().flatten();
  for (int64_t i = 0; i < std::min<int64_t>(k, where.size(0)); ++i)
    ids.push_back(indices[where[i].item<int64_t>()].item<int64_t>());
  return ids;
}

double median_of(const torch::Tensor& v) {
  if (!v.defined() || v.numel() == 0) return 0;
  torch::Tensor s = std::get<0>(v.to(torch::kDouble).flatten().sort());
  int64_t n = s.size(0);
  double a = s[(n - 1) / 2].item<double>(), b = s[n / 2].item<double>();
  if (std::isinf(a) || std::isinf(b)) return std::isinf(a) ? a : b;
  return 0.5 * (a + b);
}

double mean_of(const torch::Tensor& v) {
  if (!v.defined() || v.numel() == 0) return 0;
  return v.to(torch::kDouble).mean().item<double>();
}

double round6(double v) {
  if (!std::isfinite(v)) return v;
  return std::round(v * 1e6) / 1e6;
}

std::vector<double> default_eps(Norm norm) {
  switch (norm) {
    case Norm::Linf:
      return {0.01, 0.03, 0.05, 0.1, 0.2};
    case Norm::L2:
      return {0.25, 0.5, 1.0, 1.5, 2.0, 3.0};
    case Norm::L1:
      return {2.0, 5.0, 10.0, 15.0};
  }
  return {};
}

std::string eps_str(double eps) { return fmt::format("{:g}", eps); }

nlohmann::json roc_points(const MembershipMetrics& m) {
  nlohmann::json points = nlohmann::json::array();
  for (size_t i = 0; i < m.roc_fpr.size(); ++i) points.push_back({round6(m.roc_fpr[i]), round6(m.roc_tpr[i])});
  return points;
}

}  // namespace aegis::audit_internal
