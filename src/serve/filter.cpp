#include "aegis/serve/filter.h"

namespace aegis::serve {

std::string HttpRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

FilterStatus RequestContext::reject(int status, const std::string& code, const std::string& message) {
  response.status = status;
  response.content_type = "application/json";
  response.body = nlohmann::json{{"error", message}, {"reason", code}}.dump();
  decision = "reject";
  reason = code;
  return FilterStatus::Stop;
}

}  // namespace aegis::serve
