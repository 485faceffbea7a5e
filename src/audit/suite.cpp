#include "aegis/audit/suite.h"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "aegis/audit/catalog.h"
#include "aegis/audit/check.h"
#include "aegis/core/error.h"

namespace aegis {

namespace {

nlohmann::json to_json(const toml::node& n) {
  if (auto t = n.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = to_json(v);
    return j;
  }
  if (auto a = n.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : *a) j.push_back(to_json(v));
    return j;
  }
  if (auto v = n.as_string()) return v->get();
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  AEGIS_FAIL(InvalidArgument, "dates and times are not suite values (line " << n.source().begin.line << ")");
}

std::string at_line(const toml::node& n) {
  return n.source().begin ? " (line " + std::to_string(n.source().begin.line) + ")" : std::string();
}

void reject_unknown(const toml::table& t, std::initializer_list<const char*> known, const std::string& context) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (const char* name : known) ok = ok || k.str() == name;
    std::string valid;
    for (const char* name : known) valid += (valid.empty() ? "" : ", ") + std::string(name);
    AEGIS_CHECK(ok, InvalidArgument,
                context << ": unknown key '" << k.str() << "'" << at_line(v) << " (valid: " << valid << ")");
  }
}

}  // namespace

nlohmann::json CheckSpec::to_json() const {
  return {{"id", id}, {"check", check}, {"params", params}, {"thresholds", thresholds}};
}

nlohmann::json Suite::to_json() const {
  nlohmann::json c = nlohmann::json::array();
  for (const auto& s : checks) c.push_back(s.to_json());
  return {{"name", name}, {"samples", samples}, {"batch_size", batch_size}, {"checks", c}};
}

Thresholds effective_thresholds(const CheckSpec& spec, const FindingRule& rule) {
  if (!spec.thresholds.contains(rule.name)) return rule.thresholds;
  return rule.thresholds.overlay(spec.thresholds.at(rule.name),
                                 "suite check '" + spec.id + "', thresholds of '" + rule.name + "'");
}

Suite parse_suite(const std::string& text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    AEGIS_FAIL(InvalidArgument, origin << ": TOML error at line " << e.source().begin.line << ": " << e.description());
  }
  reject_unknown(root, {"audit", "check"}, origin);
  Suite s;
  if (auto* audit = root.get("audit")) {
    auto* t = audit->as_table();
    AEGIS_CHECK(t, InvalidArgument, origin << ": [audit] must be a table" << at_line(*audit));
    reject_unknown(*t, {"name", "samples", "batch_size"}, origin + " [audit]");
    nlohmann::json j = to_json(*t);
    try {
      s.name = j.value("name", s.name);
      s.samples = j.value("samples", s.samples);
      s.batch_size = j.value("batch_size", s.batch_size);
    } catch (const nlohmann::json::exception&) {
      AEGIS_FAIL(InvalidArgument, origin << " [audit]: name must be a string, "
                                            "samples and batch_size integers");
    }
    AEGIS_CHECK(s.samples > 0, InvalidArgument, origin << " [audit]: samples must be > 0, got " << s.samples);
    AEGIS_CHECK(s.batch_size > 0, InvalidArgument, origin << " [audit]: batch_size must be > 0, got " << s.batch_size);
  }
  auto* checks = root.get("check");
  AEGIS_CHECK(checks && checks->is_array_of_tables(), InvalidArgument,
              origin << ": a suite needs at least one [[check]] table");
  std::set<std::string> ids;
  for (const auto& node : *checks->as_array()) {
    const auto& t = *node.as_table();
    std::string where = origin + at_line(node);
    reject_unknown(t, {"id", "check", "params", "thresholds"}, where + " [[check]]");
    nlohmann::json j = to_json(t);
    CheckSpec spec;
    AEGIS_CHECK(j.contains("check") && j["check"].is_string(), InvalidArgument,
                where << ": every [[check]] needs a string 'check' naming a "
                         "registered check");
    spec.check = j["check"].get<std::string>();
    spec.id = j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : "") : spec.check;
    AEGIS_CHECK(
        !spec.id.empty() && spec.id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos &&
            spec.id[0] != '.',
        InvalidArgument, where << ": check id '" << spec.id << "' must be lowercase letters, digits, '-', '_' or '.'");
    AEGIS_CHECK(ids.insert(spec.id).second, InvalidArgument,
                where << ": duplicate check id '" << spec.id << "' (give each [[check]] its own 'id')");
    spec.params = j.value("params", nlohmann::json::object());
    spec.thresholds = j.value("thresholds", nlohmann::json::object());
    AEGIS_CHECK(spec.params.is_object(), InvalidArgument, where << ": 'params' must be a table");
    AEGIS_CHECK(spec.thresholds.is_object(), InvalidArgument, where << ": 'thresholds' must be a table");
    std::unique_ptr<Check> check;
    try {
      check = make_check(spec.check, spec.params);
    } catch (const Error& e) {
      throw Error(e.kind(), where + ", check '" + spec.id + "': " + e.what());
    }
    auto rules = check->rules();
    for (const auto& [rule, table] : spec.thresholds.items()) {
      const FindingRule* found = nullptr;
      std::string valid;
      for (const auto& r : rules) {
        if (r.name == rule) found = &r;
        valid += (valid.empty() ? "" : ", ") + r.name;
      }
      AEGIS_CHECK(found, InvalidArgument,
                  where << ", check '" << spec.id << "': thresholds for unknown rule '" << rule << "' (rules: " << valid
                        << ")");
      effective_thresholds(spec, *found);  // validates the overrides
    }
    s.checks.push_back(std::move(spec));
  }
  return s;
}

Suite load_suite(const std::string& path) {
  std::ifstream in(path);
  AEGIS_CHECK(in, NotFound, "suite file " << path << " not found");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_suite(ss.str(), path);
}

Suite builtin_suite(const std::string& budget) {
  AEGIS_CHECK(budget == "quick" || budget == "standard" || budget == "thorough" || budget == "privacy",
              InvalidArgument, "unknown budget '" << budget << "' (valid: quick, standard, thorough, privacy)");
  return load_suite(data_dir() + "/suites/" + budget + ".toml");
}

}  // namespace aegis
