#pragma once
/// Authentication and authorisation: the API key from `Authorization: Bearer`
/// or `X-API-Key`, checked against the KeyStore (hash, constant time), then
/// the key's role and model access list, then quarantine. 401 for no, unknown
/// or revoked keys; 403 for a role or model the key may not use and for a
/// quarantined key. The raw key never leaves this filter: later stages and
/// the audit log see only its public id.
///
///   AuthFilter auth(services, {Role::Predict, Role::Admin},
///   /*check_model=*/true);

#include <set>

#include "aegis/serve/filter.h"

namespace aegis::serve {

class AuthFilter : public Filter {
 public:
  AuthFilter(GatewayServices services, std::set<Role> roles, bool check_model)
      : services_(services), roles_(std::move(roles)), check_model_(check_model) {}
  const char* name() const override { return "auth"; }
  FilterStatus on_request(RequestContext& ctx) override;

 private:
  const GatewayServices services_;
  const std::set<Role> roles_;
  const bool check_model_;
};

}  // namespace aegis::serve
