// The audit's building blocks: severity thresholds, the threat catalogue,
// suite parsing (and its rejections), the JSON Schema validator.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "aegis/audit/catalog.h"
#include "aegis/audit/check.h"
#include "aegis/audit/finding.h"
#include "aegis/audit/suite.h"
#include "aegis/core/error.h"
#include "aegis/core/json_schema.h"

namespace aegis {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Thresholds, GradeFollowsDeclaredLimitsInBothDirections) {
  Thresholds up = Thresholds().higher_is_worse(true).critical(0.8).high(0.5).medium(0.2).low(0.05);
  EXPECT_EQ(up.grade(0.0), Severity::Info);
  EXPECT_EQ(up.grade(0.05), Severity::Low);
  EXPECT_EQ(up.grade(0.199), Severity::Low);
  EXPECT_EQ(up.grade(0.2), Severity::Medium);
  EXPECT_EQ(up.grade(0.5), Severity::High);
  EXPECT_EQ(up.grade(0.8), Severity::Critical);
  EXPECT_EQ(up.grade(7.0), Severity::Critical);
  Thresholds down = Thresholds().higher_is_worse(false).critical(0.3).high(0.6).medium(1.0);
  EXPECT_EQ(down.grade(0.1), Severity::Critical);
  EXPECT_EQ(down.grade(0.6), Severity::High);
  EXPECT_EQ(down.grade(0.9), Severity::Medium);
  EXPECT_EQ(down.grade(1.01), Severity::Info);
  // Monotone: a worse value is never graded less severe.
  for (int i = 0; i < 200; ++i) {
    double a = i / 100.0, b = (i + 1) / 100.0;
    EXPECT_LE(int(up.grade(a)), int(up.grade(b)));
    EXPECT_GE(int(down.grade(a)), int(down.grade(b)));
  }
}

TEST(Thresholds, OverlayValidatesKeysAndOrder) {
  Thresholds t = Thresholds().higher_is_worse(true).critical(0.8).high(0.5);
  Thresholds o = t.overlay({{"high", 0.3}, {"low", 0.1}}, "ctx");
  EXPECT_EQ(o.grade(0.35), Severity::High);
  EXPECT_EQ(o.grade(0.15), Severity::Low);
  EXPECT_NE(error_of([&] { t.overlay({{"severe", 1}}, "ctx"); }).find("unknown threshold 'severe'"), std::string::npos);
  EXPECT_NE(error_of([&] { t.overlay({{"high", 0.9}}, "ctx"); }).find("more severe"), std::string::npos);
  EXPECT_NE(error_of([&] { t.overlay({{"low", "x"}}, "ctx"); }).find("finite number"), std::string::npos);
  EXPECT_EQ(parse_severity("HIGH"), Severity::High);
  EXPECT_THROW(parse_severity("severe"), Error);
}

TEST(Catalog, HasTheTechniquesAndAllTenOwaspCategories) {
  const Catalog& c = default_catalog();
  EXPECT_GE(c.version, 1);
  EXPECT_EQ(c.atlas_name("AML.T0043"), "Craft Adversarial Data");
  EXPECT_EQ(c.atlas_name("AML.T0015"), "Evade ML Model");
  EXPECT_EQ(c.atlas_name("AML.T0020"), "Poison Training Data");
  for (const char* id : {"AML.T0024.000", "AML.T0024.001", "AML.T0024.002", "AML.T0018.000"})
    EXPECT_NE(c.find_atlas(id), nullptr) << id;
  const std::vector<std::string> owasp = {"Input Manipulation Attack",
                                          "Data Poisoning Attack",
                                          "Model Inversion Attack",
                                          "Membership Inference Attack",
                                          "Model Theft",
                                          "AI Supply Chain Attacks",
                                          "Transfer Learning Attack",
                                          "Model Skewing",
                                          "Output Integrity Attack",
                                          "Model Poisoning"};
  for (size_t i = 0; i < owasp.size(); ++i) EXPECT_EQ(c.owasp_name(fmt::format("ML{:02d}", i + 1)), owasp[i]);
  EXPECT_THROW(c.atlas_name("AML.T9999"), Error);
  nlohmann::json dup = {{"catalog_version", 1},
                        {"atlas", {{"techniques", {{{"id", "A"}, {"name", "a"}}, {{"id", "A"}, {"name", "b"}}}}}},
                        {"owasp_ml", {{"categories", {{{"id", "ML01"}, {"name", "x"}}}}}}};
  EXPECT_NE(error_of([&] { Catalog::parse(dup, "t"); }).find("duplicate id 'A'"), std::string::npos);
}

TEST(Catalog, EveryCheckMapsToExistingIds) {
  const Catalog& c = default_catalog();
  std::vector<std::unique_ptr<Check>> checks;
  for (const auto& info : check_catalog()) checks.push_back(make_check(info.name));
  checks.push_back(make_check("evasion-curve", {{"threat", "black-box"}}));
  checks.push_back(make_check("minimal-perturbation", {{"norm", "linf"}}));
  for (const char* budget : {"quick", "standard", "thorough", "privacy"})
    for (const auto& spec : builtin_suite(budget).checks) checks.push_back(make_check(spec.check, spec.params));
  for (const auto& check : checks) {
    auto rules = check->rules();
    EXPECT_FALSE(rules.empty()) << check->name();
    for (const auto& r : rules) {
      EXPECT_NE(c.find_atlas(r.atlas), nullptr) << check->name() << "/" << r.name << " " << r.atlas;
      EXPECT_NE(c.find_owasp(r.owasp), nullptr) << check->name() << "/" << r.name << " " << r.owasp;
      EXPECT_EQ(r.mitigation.rfind("aegis ", 0), 0u) << r.mitigation;
    }
  }
}

TEST(Suite, BuiltinBudgetsLoad) {
  for (const char* budget : {"quick", "standard", "thorough"}) {
    Suite s = builtin_suite(budget);
    EXPECT_EQ(s.name, budget);
    EXPECT_GE(s.checks.size(), 5u);
  }
  EXPECT_LT(builtin_suite("quick").samples, builtin_suite("standard").samples);
  Suite privacy = builtin_suite("privacy");
  ASSERT_EQ(privacy.checks.size(), 2u);
  EXPECT_EQ(privacy.checks[1].check, "dp-audit");
  EXPECT_NE(error_of([] { builtin_suite("huge"); }).find("unknown budget 'huge'"), std::string::npos);
}

TEST(Suite, RejectsUnknownChecksParametersRulesAndKeys) {
  auto msg = [](const std::string& toml) { return error_of([&] { parse_suite(toml, "t.toml"); }); };
  std::string m = msg("[[check]]\ncheck = \"evasion-curv\"\n");
  EXPECT_NE(m.find("unknown check 'evasion-curv'"), std::string::npos) << m;
  EXPECT_NE(m.find("evasion-curve"), std::string::npos) << m;  // lists the valid ones
  m = msg("[[check]]\ncheck = \"evasion-curve\"\n[check.params]\nepz = [0.1]\n");
  EXPECT_NE(m.find("unknown parameter 'epz'"), std::string::npos) << m;
  EXPECT_NE(m.find("eps"), std::string::npos) << m;
  m =
      msg("[[check]]\ncheck = \"calibration\"\n[check.params]\nattack_params = "
          "{ stepz = 3 }\n");
  EXPECT_NE(m.find("unknown parameter 'stepz'"), std::string::npos) << m;
  m =
      msg("[[check]]\ncheck = \"calibration\"\n[check.thresholds.nope]\nhigh = "
          "1\n");
  EXPECT_NE(m.find("unknown rule 'nope'"), std::string::npos) << m;
  m = msg("[audit]\nsamplez = 3\n[[check]]\ncheck = \"calibration\"\n");
  EXPECT_NE(m.find("unknown key 'samplez'"), std::string::npos) << m;
  m =
      msg("[[check]]\ncheck = \"calibration\"\n[[check]]\ncheck = "
          "\"calibration\"\n");
  EXPECT_NE(m.find("duplicate check id 'calibration'"), std::string::npos) << m;
  m = msg("[[check]]\ncheck = \"calibration\"\n[check.params]\neps = -1\n");
  EXPECT_NE(m.find("'eps' must be > 0"), std::string::npos) << m;
  m = msg("[[check]\n");
  EXPECT_NE(m.find("TOML error at line 1"), std::string::npos) << m;
  EXPECT_NE(msg("[audit]\nname = \"x\"\n").find("at least one [[check]]"), std::string::npos);
}

TEST(Suite, ParsesParametersAndThresholdOverrides) {
  Suite s = parse_suite(R"(
[audit]
name = "t"
samples = 17
[[check]]
id = "a"
check = "evasion-curve"
[check.params]
eps = [0.2, 0.1]
[check.thresholds.robust-accuracy-drop]
critical = 0.9
)");
  ASSERT_EQ(s.checks.size(), 1u);
  EXPECT_EQ(s.samples, 17);
  EXPECT_EQ(s.checks[0].id, "a");
  auto check = make_check("evasion-curve", s.checks[0].params);
  EXPECT_EQ(check->options_json()["eps"], nlohmann::json({0.1, 0.2}));
  Thresholds t = effective_thresholds(s.checks[0], check->rules()[0]);
  EXPECT_EQ(*t.critical_, 0.9);
  EXPECT_EQ(*t.high_,
            *check->rules()[0].thresholds.high_);  // untouched levels keep their defaults
}

TEST(JsonSchema, ValidatesTheSubsetItUses) {
  nlohmann::json schema = nlohmann::json::parse(R"({
    "type": "object", "required": ["a", "b"], "additionalProperties": false,
    "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"$ref": "#/$defs/s"},
                   "c": {"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 1}},
    "$defs": {"s": {"type": "string", "pattern": "^[0-9a-f]+$"}}})");
  EXPECT_TRUE(validate_json_schema({{"a", 1}, {"b", "ff"}, {"c", {"x"}}}, schema).empty());
  EXPECT_EQ(validate_json_schema({{"a", 1}}, schema).size(), 1u);  // missing b
  EXPECT_EQ(validate_json_schema({{"a", -1}, {"b", "ff"}}, schema).size(), 1u);
  EXPECT_EQ(validate_json_schema({{"a", 1}, {"b", "zz"}}, schema).size(), 1u);
  EXPECT_EQ(validate_json_schema({{"a", 1}, {"b", "ff"}, {"d", 0}}, schema).size(), 1u);
  EXPECT_EQ(validate_json_schema({{"a", 1}, {"b", "ff"}, {"c", {"z"}}}, schema).size(), 1u);
  EXPECT_EQ(validate_json_schema({{"a", 1}, {"b", "ff"}, {"c", nlohmann::json::array()}}, schema).size(), 1u);
  EXPECT_EQ(validate_json_schema({{"a", "1"}, {"b", "ff"}}, schema).size(), 1u);
  EXPECT_THROW(validate_json_schema(1, {{"oneOf", nlohmann::json::array()}}), Error);
}

}  // namespace
}  // namespace aegis
