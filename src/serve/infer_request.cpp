#include "aegis/serve/infer_request.h"

#include <algorithm>

#include <cmath>
#include <limits>

#include "aegis/core/error.h"

namespace aegis::serve {

namespace {

const std::vector<std::string>& datatypes() {
  static const std::vector<std::string> v = {"FP32", "FP64", "FP16", "UINT8", "INT8", "INT16", "INT32", "INT64"};
  return v;
}

bool is_integer_type(const std::string& t) { return t.rfind("INT", 0) == 0 || t == "UINT8"; }

// Range of each integer datatype, so "UINT8" with 300 is refused.
std::pair<double, double> integer_range(const std::string& t) {
  if (t == "UINT8") return {0, 255};
  if (t == "INT8") return {-128, 127};
  if (t == "INT16") return {-32768, 32767};
  if (t == "INT32") return {-2147483648.0, 2147483647.0};
  return {-9.2e18, 9.2e18};
}

// Appends the numbers of `v` (a number or nested arrays of numbers) to `out`.
void flatten(const nlohmann::json& v, DecodedTensor& t, int64_t depth, const ParseLimits& limits, int64_t cap) {
  AEGIS_CHECK(depth <= limits.max_depth_, InvalidArgument,
              "input '" << t.name << "': data nested deeper than " << limits.max_depth_);
  if (v.is_array()) {
    for (const auto& e : v) flatten(e, t, depth + 1, limits, cap);
    return;
  }
  AEGIS_CHECK(v.is_number(), InvalidArgument,
              "input '" << t.name << "': data holds a " << v.type_name() << ", expected numbers");
  AEGIS_CHECK(static_cast<int64_t>(t.data.size()) < cap, InvalidArgument,
              "input '" << t.name << "': data has more elements than its shape says");
  const double d = v.get<double>();
  if (is_integer_type(t.datatype)) {
    AEGIS_CHECK(v.is_number_integer(), InvalidArgument,
                "input '" << t.name << "': " << t.datatype << " data holds a non-integer " << d);
    auto [lo, hi] = integer_range(t.datatype);
    AEGIS_CHECK(d >= lo && d <= hi, InvalidArgument,
                "input '" << t.name << "': " << d << " is out of range for " << t.datatype);
  }
  // A double beyond float's range (e.g. 1e39) is not representable: mark it
  // instead of converting (the conversion would be undefined behaviour).
  if (!std::isfinite(d) || std::abs(d) > std::numeric_limits<float>::max()) {
    t.non_finite = true;
    t.data.push_back(std::numeric_limits<float>::infinity());
  } else {
    t.data.push_back(static_cast<float>(d));
  }
}

DecodedTensor decode_tensor(const nlohmann::json& j, const ParseLimits& limits, int64_t& budget) {
  DecodedTensor t;
  AEGIS_CHECK(j.is_object(), InvalidArgument, "each input must be an object");
  AEGIS_CHECK(j.contains("name") && j["name"].is_string(), InvalidArgument, "an input has no string \"name\"");
  t.name = j["name"].get<std::string>();
  AEGIS_CHECK(t.name.size() <= 256, InvalidArgument, "input name longer than 256 characters");
  AEGIS_CHECK(j.contains("datatype") && j["datatype"].is_string(), InvalidArgument,
              "input '" << t.name << "' has no string \"datatype\"");
  t.datatype = j["datatype"].get<std::string>();
  AEGIS_CHECK(is_supported_datatype(t.datatype), InvalidArgument,
              "input '" << t.name << "': unsupported datatype '" << t.datatype.substr(0, 32) << "'");
  AEGIS_CHECK(j.contains("shape") && j["shape"].is_array(), InvalidArgument,
              "input '" << t.name << "' has no \"shape\" array");
  const auto& shape = j["shape"];
  AEGIS_CHECK(!shape.empty() && static_cast<int64_t>(shape.size()) <= limits.max_rank_, InvalidArgument,
              "input '" << t.name << "': shape must have 1 to " << limits.max_rank_ << " dimensions");
  int64_t numel = 1;
  for (const auto& d : shape) {
    AEGIS_CHECK(d.is_number_integer(), InvalidArgument, "input '" << t.name << "': shape holds a non-integer");
    const int64_t v = d.get<int64_t>();
    AEGIS_CHECK(v >= 0, InvalidArgument, "input '" << t.name << "': negative dimension " << v);
    AEGIS_CHECK(v == 0 || numel <= budget / v, InvalidArgument,
                "input '" << t.name << "': more elements than the limit of " << limits.max_elements_);
    numel *= v;
    t.shape.push_back(v);
  }
  AEGIS_CHECK(j.contains("data"), InvalidArgument, "input '" << t.name << "' has no \"data\"");
  AEGIS_CHECK(!j.contains("parameters") || !j["parameters"].contains("binary_data_size"), InvalidArgument,
              "input '" << t.name << "': the binary tensor extension is not supported; send JSON data");
  t.data.reserve(static_cast<size_t>(numel));
  flatten(j["data"], t, 0, limits, numel);
  AEGIS_CHECK(static_cast<int64_t>(t.data.size()) == numel, InvalidArgument,
              "input '" << t.name << "': data has " << t.data.size() << " elements, shape says " << numel);
  budget -= numel;
  return t;
}

}  // namespace

bool is_supported_datatype(const std::string& datatype) {
  for (const auto& d : datatypes())
    if (d == datatype) return true;
  return false;
}

InferRequest parse_infer_request(std::string_view body, const ParseLimits& limits) {
  nlohmann::json j;
  // The callback refuses deep nesting while parsing, before any recursion of
  // ours.
  int64_t depth = 0;
  bool too_deep = false;
  auto cb = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json&) {
    if (ev == nlohmann::json::parse_event_t::object_start || ev == nlohmann::json::parse_event_t::array_start) {
      if (++depth > limits.max_depth_ + 2) too_deep = true;
    } else if (ev == nlohmann::json::parse_event_t::object_end || ev == nlohmann::json::parse_event_t::array_end) {
      --depth;
    }
    return !too_deep;
  };
  try {
    j = nlohmann::json::parse(body.begin(), body.end(), cb);
  } catch (const nlohmann::json::parse_error& e) {
    AEGIS_CHECK(!too_deep, InvalidArgument, "request JSON nested deeper than " << limits.max_depth_ + 2);
    AEGIS_FAIL(InvalidArgument, "request body is not valid JSON (at byte " << e.byte << ")");
  } catch (const nlohmann::json::exception&) {
    AEGIS_FAIL(InvalidArgument, "request body is not valid JSON");
  }
  AEGIS_CHECK(!too_deep, InvalidArgument, "request JSON nested deeper than " << limits.max_depth_ + 2);
  AEGIS_CHECK(j.is_object(), InvalidArgument, "request body must be a JSON object");
  InferRequest r;
  if (j.contains("id")) {
    AEGIS_CHECK(j["id"].is_string(), InvalidArgument, "\"id\" must be a string");
    r.id = j["id"].get<std::string>();
    AEGIS_CHECK(r.id.size() <= 256, InvalidArgument, "\"id\" longer than 256 characters");
  }
  if (j.contains("parameters")) {
    AEGIS_CHECK(j["parameters"].is_object(), InvalidArgument, "\"parameters\" must be an object");
    r.parameters = j["parameters"];
  }
  AEGIS_CHECK(j.contains("inputs") && j["inputs"].is_array(), InvalidArgument, "request has no \"inputs\" array");
  const auto& inputs = j["inputs"];
  AEGIS_CHECK(!inputs.empty(), InvalidArgument, "\"inputs\" is empty");
  AEGIS_CHECK(static_cast<int64_t>(inputs.size()) <= limits.max_inputs_, InvalidArgument,
              "more than " << limits.max_inputs_ << " inputs");
  int64_t budget = limits.max_elements_;
  for (const auto& in : inputs) r.inputs.push_back(decode_tensor(in, limits, budget));
  if (j.contains("outputs")) {
    AEGIS_CHECK(j["outputs"].is_array(), InvalidArgument, "\"outputs\" must be an array");
    for (const auto& o : j["outputs"]) {
      AEGIS_CHECK(o.is_object() && o.contains("name") && o["name"].is_string(), InvalidArgument,
                  "each requested output needs a string \"name\"");
      r.outputs.push_back(o["name"].get<std::string>());
    }
  }
  return r;
}

nlohmann::json InferRequest::select_outputs(const nlohmann::json& all) const {
  if (outputs.empty()) return all;
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& o : all)
    if (std::find(outputs.begin(), outputs.end(), o["name"]) != outputs.end()) kept.push_back(o);
  return kept;
}

}  // namespace aegis::serve
