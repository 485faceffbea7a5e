#pragma once
/// The explanation endpoint's stages (`POST /v2/models/{m}/explain`) and the
/// evidence review items carry.
///
/// ExplainPlanFilter runs after validation: it builds the method from the
/// request's `parameters` ({"method": "ig", "steps": 32, "target": [3], ...},
/// the names make_explainer takes), refuses methods the model does not offer,
/// and plans the model evaluations the explanation will cost (a dry run,
/// Explainer::planned_queries). That number is the request's cost against
/// the key's sample rate and daily quota (the rate-limit filter runs next)
/// and is refused over the model's `explain.max_queries`. ExplainFilter runs
/// last and answers with OIP-style outputs: `attributions` (FP32, shaped like
/// the input), `target` (INT64) and, where the method defines one,
/// `completeness_gap` (FP64); never the model's scores.
///
///   chain = {audit, auth(explain, admin), validation, ExplainPlanFilter,
///            rate limit, detection, monitor, ExplainFilter};

#include <nlohmann/json.hpp>

#include "aegis/serve/filter.h"

namespace aegis::serve {

class ExplainPlanFilter : public Filter {
 public:
  const char* name() const override { return "explain_plan"; }
  FilterStatus on_request(RequestContext& ctx) override;
};

class ExplainFilter : public Filter {
 public:
  const char* name() const override { return "explain"; }
  FilterStatus on_request(RequestContext& ctx) override;
};

/// What a review item shows a person about a flagged request: for up to
/// `explain.review_samples` samples of the batch (those the detector flagged
/// first), the input, the predicted class and the attribution map of
/// `explain.review_method` for it, as {"index", "shape", "input",
/// "attribution", "predicted", "class_name"} with row-major float arrays,
/// plus the model's input range. Failures are reported in the result
/// ({"error": ...}), never thrown: a flagged request is answered either way.
nlohmann::json review_evidence(const RequestContext& ctx);

}  // namespace aegis::serve
