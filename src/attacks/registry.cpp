#include "aegis/attacks/registry.h"

#include <algorithm>
#include <functional>

#include "aegis/attacks/evasion/apgd.h"
#include "aegis/attacks/evasion/carlini_wagner.h"
#include "aegis/attacks/evasion/deepfool.h"
#include "aegis/attacks/evasion/fgsm.h"
#include "aegis/attacks/evasion/hop_skip_jump.h"
#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/evasion/square.h"
#include "aegis/core/error.h"

namespace aegis {

namespace {

struct Entry {
  AttackInfo info;
  std::function<std::unique_ptr<Attack>(const nlohmann::json&)> make;
};

std::unique_ptr<Attack> make_bim(const nlohmann::json& params) {
  nlohmann::json p = params;
  AEGIS_CHECK(!p.contains("random_start") || p["random_start"] == false, InvalidArgument,
              "bim: 'random_start' must be false (bim never starts randomly; use pgd)");
  p["random_start"] = false;
  return PGD::from_json(p);
}

/// The table of attacks, in the order `aegis attack --help` lists them.
const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {{"fgsm", "Fast gradient sign method: one step of size eps (linf, l2)", true}, &FGSM::from_json},
      {{"bim", "Basic iterative method: PGD without random start", true}, &make_bim},
      {{"pgd", "Projected gradient descent with random start and restarts (linf, l2, l1)", true}, &PGD::from_json},
      {{"apgd", "Auto-PGD with cross-entropy or DLR loss, momentum and step-size halving (linf, l2)", true},
       &APGD::from_json},
      {{"apgd-t", "AutoAttack's targeted APGD-DLR over the most likely wrong classes (linf, l2)", true},
       &APGD::from_json_targeted},
      {{"cw", "Carlini-Wagner L2: minimal perturbation, binary search over c, confidence kappa", true},
       &CarliniWagner::from_json},
      {{"deepfool", "DeepFool: minimal perturbation to the nearest linearised boundary (l2, linf)", true},
       &DeepFool::from_json},
      {{"square", "Square attack: score-based black-box random search (linf, l2)", false}, &Square::from_json},
      {{"hopskipjump", "HopSkipJump: decision-based black-box, labels only (l2, linf)", false},
       &HopSkipJump::from_json},
  };
  return table;
}

}  // namespace

const std::vector<AttackInfo>& attack_catalog() {
  static const std::vector<AttackInfo> infos = [] {
    std::vector<AttackInfo> v;
    for (const auto& e : entries()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

std::unique_ptr<Attack> make_attack(const std::string& name, const nlohmann::json& params) {
  AEGIS_CHECK(params.is_object(), InvalidArgument, "parameters of attack '" << name << "' must be a table");
  for (const auto& e : entries())
    if (e.info.name == name) return e.make(params);
  std::string names;
  for (const auto& e : entries()) names += (names.empty() ? "" : ", ") + e.info.name;
  AEGIS_FAIL(InvalidArgument, "unknown attack '" << name << "' (available: " << names << ")");
}

ParamReader::ParamReader(const nlohmann::json& params, std::string context)
    : params_(params.is_null() ? nlohmann::json::object() : params), context_(std::move(context)) {
  AEGIS_CHECK(params_.is_object(), InvalidArgument, context_ << ": parameters must be a table");
}

void ParamReader::get_norm(const char* key, Norm& out) {
  std::string s = norm_name(out);
  get(key, s);
  out = parse_norm(s);
}

void ParamReader::get_target_mode(const char* key, TargetMode& out) {
  known_.push_back(key);
  if (!params_.contains(key)) return;
  const auto& v = params_.at(key);
  if (v.is_boolean()) {
    out = v.get<bool>() ? TargetMode::Random : TargetMode::None;
  } else if (v.is_string()) {
    out = parse_target_mode(v.get<std::string>());
  } else {
    wrong_type(key);
  }
}

void ParamReader::wrong_type(const char* key) const {
  AEGIS_FAIL(InvalidArgument, context_ << ": parameter '" << key << "' has the wrong type (" << params_.at(key).dump()
                                       << ")");
}

void ParamReader::finish() const {
  std::vector<std::string> unknown;
  for (const auto& [k, v] : params_.items())
    if (std::find(known_.begin(), known_.end(), k) == known_.end()) unknown.push_back(k);
  if (unknown.empty()) return;
  std::string u, valid;
  for (const auto& k : unknown) u += (u.empty() ? "'" : ", '") + k + "'";
  for (const auto& k : known_) valid += (valid.empty() ? "" : ", ") + k;
  AEGIS_FAIL(InvalidArgument, context_ << ": unknown parameter " << u << " (valid: " << valid << ")");
}

}  // namespace aegis
