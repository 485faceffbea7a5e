#pragma once
/// Input validation: parses the infer request (infer_request.h) and checks
/// it against the model: one input, a supported datatype, shape
/// [batch, input_shape...] (or [batch, prod(input_shape)]), 1 <= batch <=
/// max_batch, finite values inside the model's valid range, known output
/// names. Every failure is a 400 (413 for too many samples) with a reason.
///
///   ValidationFilter v(services.server->parse_limits);

#include <string>
#include <vector>

#include "aegis/serve/filter.h"

namespace aegis::serve {

class ValidationFilter : public Filter {
 public:
  /// `outputs`: the output names a request may ask for (the infer endpoint's
  /// by default).
  explicit ValidationFilter(ParseLimits limits,
                            std::vector<std::string> outputs = {"label", "scores", "topk_scores", "topk_classes"})
      : limits_(limits), outputs_(std::move(outputs)) {}
  const char* name() const override { return "validation"; }
  FilterStatus on_request(RequestContext& ctx) override;

 private:
  const ParseLimits limits_;
  const std::vector<std::string> outputs_;
};

}  // namespace aegis::serve
