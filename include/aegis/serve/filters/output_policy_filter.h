#pragma once
/// Runtime verification of each answer (output_policy.h): after inference and
/// before the answer is hardened, the model's output policies check it.
/// Abstained samples are answered "uncertain" (label -1, no scores; their
/// indices in the answer's parameters.abstained); a flag marks the request
/// (`X-Aegis-Flagged`) and queues it for review; a reject answers 422
/// "output_policy". Every trip is counted as an alert in /metrics and written
/// to the audit log with the policy's figures.
///
///   OutputPolicyFilter policy(services);

#include "aegis/serve/filter.h"

namespace aegis::serve {

class OutputPolicyFilter : public Filter {
 public:
  explicit OutputPolicyFilter(GatewayServices services) : services_(services) {}
  const char* name() const override { return "output-policy"; }
  FilterStatus on_request(RequestContext& ctx) override;

 private:
  const GatewayServices services_;
};

}  // namespace aegis::serve
