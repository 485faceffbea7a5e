#include "aegis/serve/filters/explain_filter.h"

#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"
#include "aegis/explain/registry.h"

namespace aegis::serve {

namespace {

std::vector<float> flat_floats(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

nlohmann::json output(const std::string& name, const char* datatype, const torch::Tensor& t) {
  nlohmann::json data;
  if (t.scalar_type() == torch::kLong) {
    torch::Tensor c = t.contiguous();
    data = std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  } else if (t.scalar_type() == torch::kDouble) {
    torch::Tensor c = t.contiguous();
    data = std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  } else {
    data = flat_floats(t);
  }
  return {{"name", name}, {"datatype", datatype}, {"shape", t.sizes().vec()}, {"data", data}};
}

/// `target` of the parameters: one class for every sample or one per sample.
torch::Tensor parse_target(const nlohmann::json& j, int64_t batch, int64_t classes) {
  std::vector<int64_t> t;
  auto one = [&](const nlohmann::json& v) {
    AEGIS_CHECK(v.is_number_integer(), InvalidArgument, "parameters.target must hold integer class indices");
    const int64_t c = v.get<int64_t>();
    AEGIS_CHECK(c >= 0 && c < classes, InvalidArgument,
                "parameters.target: class " << c << " is out of range [0, " << classes << ")");
    t.push_back(c);
  };
  if (j.is_array()) {
    AEGIS_CHECK(static_cast<int64_t>(j.size()) == batch, InvalidArgument,
                "parameters.target needs one class per sample (" << batch << "), got " << j.size());
    for (const auto& v : j) one(v);
  } else {
    one(j);
    t.assign(batch, t[0]);
  }
  return torch::tensor(t, torch::kLong);
}

}  // namespace

FilterStatus ExplainPlanFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  const ExplainConfig& ec = cfg.explain;
  if (!ec.enabled) return ctx.reject(403, "explain_disabled", "explanations are switched off for model '" + cfg.name + "'");
  nlohmann::json params = ctx.request.parameters;
  if (!params.contains("method") || !params["method"].is_string())
    return ctx.reject(400, "bad_request",
                      "parameters.method is required (one of: " + nlohmann::json(ec.methods).dump() + ")");
  const std::string method = params["method"];
  if (std::find(ec.methods.begin(), ec.methods.end(), method) == ec.methods.end())
    return ctx.reject(400, "method_not_offered",
                      "model '" + cfg.name + "' does not offer '" + method.substr(0, 64) +
                          "' (offered: " + nlohmann::json(ec.methods).dump() + ")");
  params.erase("method");
  const ModelMeta& meta = ctx.runtime->slot->current()->classifier->meta();
  if (params.contains("target")) {
    ctx.target = parse_target(params["target"], ctx.x.size(0), meta.num_classes);
    params.erase("target");
  }
  ctx.explainer = make_explainer(method, params);  // unknown or misplaced parameters: InvalidArgument
  const int64_t planned = ctx.explainer->planned_queries(meta, ctx.x, ctx.target);
  ctx.details["explain"] = {{"method", method}, {"options", ctx.explainer->options_json()}, {"queries", planned}};
  if (planned > ec.max_queries)
    return ctx.reject(413, "explanation_too_costly",
                      "the explanation would cost " + std::to_string(planned) + " model evaluations, over the limit of " +
                          std::to_string(ec.max_queries) + " per request (fewer samples, steps or coalitions)");
  ctx.cost = planned;
  return FilterStatus::Continue;
}

FilterStatus ExplainFilter::on_request(RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  ctx.model = ctx.runtime->slot->current();
  ctx.details["model_version"] = ctx.model->version;
  Attribution a = ctx.explainer->explain(*ctx.model->classifier, ctx.x, ctx.target);
  nlohmann::json outputs = {output("attributions", "FP32", a.values), output("target", "INT64", a.target)};
  if (a.gap.defined()) outputs.push_back(output("completeness_gap", "FP64", a.gap.to(torch::kDouble)));
  if (a.fidelity.defined()) outputs.push_back(output("local_fidelity", "FP64", a.fidelity.to(torch::kDouble)));
  outputs = ctx.request.select_outputs(outputs);
  nlohmann::json params = {{"method", a.method}, {"options", a.options}, {"queries", a.queries}};
  if (ctx.flagged) params["flagged"] = true;
  nlohmann::json body = {
      {"model_name", cfg.name}, {"model_version", ctx.model->version}, {"outputs", outputs}, {"parameters", params}};
  if (!ctx.request.id.empty()) body["id"] = ctx.request.id;
  ctx.decision = ctx.flagged ? "flag" : "explain";
  ctx.response.status = 200;
  ctx.response.body = body.dump();
  if (ctx.flagged) ctx.response.headers["X-Aegis-Flagged"] = ctx.reason;
  return FilterStatus::Continue;
}

nlohmann::json review_evidence(const RequestContext& ctx) {
  const ModelConfig& cfg = ctx.runtime->config();
  const ExplainConfig& ec = cfg.explain;
  nlohmann::json out = {{"samples", nlohmann::json::array()}};
  if (ec.review_samples == 0 || !ctx.x.defined()) return out;
  try {
    auto model = ctx.runtime->slot->current();
    ScriptClassifier& clf = *model->classifier;
    const ModelMeta& meta = clf.meta();
    out["clip"] = {meta.clip_min, meta.clip_max};
    // The samples the detector flagged come first, then the rest in order.
    const int64_t batch = ctx.x.size(0);
    std::vector<int64_t> order;
    if (ctx.detector_alert && ctx.details.contains("detector")) {
      const auto& d = ctx.details["detector"];
      const auto scores = d["scores"].get<std::vector<float>>();
      const double thr = d["threshold"].get<double>();
      for (int64_t i = 0; i < batch; ++i)
        if (i < static_cast<int64_t>(scores.size()) && scores[i] > thr) order.push_back(i);
    }
    for (int64_t i = 0; i < batch; ++i)
      if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
    order.resize(std::min<size_t>(order.size(), static_cast<size_t>(ec.review_samples)));
    torch::Tensor idx = torch::tensor(order, torch::kLong);
    torch::Tensor xs = ctx.x.index_select(0, idx);
    torch::Tensor predicted = clf.predict(xs).to(torch::kLong);
    torch::Tensor maps;
    if (!ec.review_method.empty()) {
      Attribution a = make_explainer(ec.review_method)->explain(clf, xs, predicted);
      maps = a.values;
      out["method"] = a.method;
    }
    for (size_t k = 0; k < order.size(); ++k) {
      const int64_t c = predicted[k].item<int64_t>();
      nlohmann::json s = {{"index", order[k]},
                          {"shape", meta.input_shape},
                          {"input", flat_floats(xs[k])},
                          {"predicted", c}};
      if (c < static_cast<int64_t>(meta.class_names.size())) s["class_name"] = meta.class_names[c];
      if (maps.defined()) s["attribution"] = flat_floats(maps[k]);
      out["samples"].push_back(std::move(s));
    }
  } catch (const std::exception& e) {
    out["error"] = one_line_message(e);
  }
  return out;
}

}  // namespace aegis::serve
