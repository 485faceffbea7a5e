#pragma once
/// Inference: hands the validated batch to the current model version's
/// DynamicBatcher (batched with concurrent requests when configured) and
/// keeps that version for the response. Then OutputFilter hardens the
/// probabilities (output_hardening.h) into the Open Inference Protocol
/// response.
///
///   InferenceFilter inf; OutputFilter out;

#include "aegis/serve/filter.h"

namespace aegis::serve {

class InferenceFilter : public Filter {
 public:
  const char* name() const override { return "inference"; }
  FilterStatus on_request(RequestContext& ctx) override;
};

class OutputFilter : public Filter {
 public:
  const char* name() const override { return "output"; }
  FilterStatus on_request(RequestContext& ctx) override;
};

/// Writes one audit entry per request on the way back (first in the chain, so
/// it sees every outcome, including rejections by later filters).
class AuditFilter : public Filter {
 public:
  explicit AuditFilter(GatewayServices services) : services_(services) {}
  const char* name() const override { return "audit"; }
  FilterStatus on_request(RequestContext&) override { return FilterStatus::Continue; }
  void on_response(RequestContext& ctx) override;

 private:
  const GatewayServices services_;
};

}  // namespace aegis::serve
