#include "aegis/core/json_schema.h"

#include <regex>
#include <set>

#include "aegis/core/error.h"

namespace aegis {

namespace {

using nlohmann::json;

bool has_type(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer")
    return v.is_number_integer() || (v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>())));
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  AEGIS_FAIL(InvalidArgument, "JSON schema: unknown type '" << t << "'");
}

std::string escape_pointer(const std::string& key) {
  std::string o;
  for (char c : key) o += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return o;
}

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  void validate(const json& v, const json& s, const std::string& at) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) error(at, "no value is allowed here");
      return;
    }
    AEGIS_CHECK(s.is_object(), InvalidArgument, "JSON schema at " << at << ": a schema must be an object or boolean");
    static const std::set<std::string> known = {
        "$schema",  "$id",       "$defs",      "title",    "description",
        "$comment", "type",      "properties", "required", "additionalProperties",
        "items",    "enum",      "const",      "minimum",  "maximum",
        "minItems", "minLength", "pattern",    "$ref"};
    for (const auto& [k, _] : s.items())
      AEGIS_CHECK(known.count(k), InvalidArgument,
                  "JSON schema: keyword '" << k << "' is outside the supported subset");
    if (s.contains("$ref")) {
      std::string ref = s["$ref"].get<std::string>();
      const std::string prefix = "#/$defs/";
      AEGIS_CHECK(
          ref.rfind(prefix, 0) == 0 && root_.contains("$defs") && root_["$defs"].contains(ref.substr(prefix.size())),
          InvalidArgument, "JSON schema: unresolved $ref '" << ref << "'");
      validate(v, root_["$defs"][ref.substr(prefix.size())], at);
    }
    if (s.contains("type")) {
      const json& t = s["type"];
      bool ok = false;
      if (t.is_string())
        ok = has_type(v, t.get<std::string>());
      else
        for (const auto& x : t) ok = ok || has_type(v, x.get<std::string>());
      if (!ok) {
        error(at, "expected type " + t.dump() + ", got " + std::string(v.type_name()));
        return;
      }
    }
    if (s.contains("enum")) {
      bool ok = false;
      for (const auto& x : s["enum"]) ok = ok || x == v;
      if (!ok) error(at, "value " + v.dump() + " is not one of " + s["enum"].dump());
    }
    if (s.contains("const") && s["const"] != v) error(at, "value " + v.dump() + " is not " + s["const"].dump());
    if (v.is_number()) {
      if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>())
        error(at, "value " + v.dump() + " is below the minimum " + s["minimum"].dump());
      if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>())
        error(at, "value " + v.dump() + " is above the maximum " + s["maximum"].dump());
    }
    if (v.is_string()) {
      const std::string str = v.get<std::string>();
      if (s.contains("minLength") && int64_t(str.size()) < s["minLength"].get<int64_t>())
        error(at, "string shorter than " + s["minLength"].dump());
      if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>())))
        error(at, "string " + v.dump() + " does not match " + s["pattern"].dump());
    }
    if (v.is_array()) {
      if (s.contains("minItems") && int64_t(v.size()) < s["minItems"].get<int64_t>())
        error(at, "fewer than " + s["minItems"].dump() + " items");
      if (s.contains("items"))
        for (size_t i = 0; i < v.size(); ++i) validate(v[i], s["items"], at + "/" + std::to_string(i));
    }
    if (v.is_object()) {
      if (s.contains("required"))
        for (const auto& k : s["required"])
          if (!v.contains(k.get<std::string>())) error(at, "missing required property '" + k.get<std::string>() + "'");
      const json props = s.value("properties", json::object());
      for (const auto& [k, x] : v.items()) {
        std::string child = at + "/" + escape_pointer(k);
        if (props.contains(k)) {
          validate(x, props[k], child);
        } else if (s.contains("additionalProperties")) {
          validate(x, s["additionalProperties"], child);
        }
      }
    }
  }

  std::vector<std::string> errors;

 private:
  void error(const std::string& at, const std::string& what) {
    errors.push_back((at.empty() ? "/" : at) + ": " + what);
  }
  const json& root_;
};

}  // namespace

std::vector<std::string> validate_json_schema(const json& instance, const json& schema) {
  Validator v(schema);
  v.validate(instance, schema, "");
  return v.errors;
}

}  // namespace aegis
