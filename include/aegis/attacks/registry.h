#pragma once
/// Builds any attack by name from a JSON (or TOML-converted) table of
/// parameters, as the CLI and the audit suite do. Unknown attack names and
/// unknown parameters are rejected by name, with the valid ones listed.
///
///   auto pgd = make_attack("pgd", {{"eps", 0.1}, {"steps", 20}, {"norm", "linf"}});

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aegis/attacks/attack.h"

namespace aegis {

struct AttackInfo {
  std::string name;
  std::string summary;
  bool white_box;
};

std::unique_ptr<Attack> make_attack(const std::string& name, const nlohmann::json& params = nlohmann::json::object());
/// Every registered attack, in a stable order.
const std::vector<AttackInfo>& attack_catalog();

/// Reads parameters from a JSON object and, at finish(), rejects any key
/// that no get() asked for. Used by each attack's from_json.
class ParamReader {
 public:
  ParamReader(const nlohmann::json& params, std::string context);
  template <class T>
  void get(const char* key, T& out) {
    known_.push_back(key);
    if (!params_.contains(key)) return;
    try {
      out = params_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      wrong_type(key);
    }
  }
  void get_norm(const char* key, Norm& out);
  void get_target_mode(const char* key, TargetMode& out);
  /// Throws InvalidArgument naming unknown keys and listing the valid ones.
  void finish() const;

 private:
  [[noreturn]] void wrong_type(const char* key) const;
  nlohmann::json params_;
  std::string context_;
  std::vector<std::string> known_;
};

}  // namespace aegis
