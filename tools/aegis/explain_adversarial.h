#pragma once
// aegis explain, the security views: --adversarial ATTACK explains the
// samples' adversarial versions beside the clean ones (grid and how far each
// map moved); --robustness runs the explanation attack of Ghorbani et al.
// (explain/explanation_attack.h) and reports the top-k overlap it leaves.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/explain/explainer.h"

namespace aegis::cli {

struct ExplainAdversarialFlags {
  std::string attack;                       ///< --adversarial: a registry attack ("" = off)
  double eps = 0.05;                        ///< --eps: both the attack's budget and the robustness attack's
  int64_t attack_steps = 0;                 ///< --attack-steps (0: the attack's default; robustness: 30)
  bool robustness = false;                  ///< --robustness
  std::string robustness_map = "saliency";  ///< --robustness-map
  int64_t top_k = 0;                        ///< --top-k (0: 5% of the features)
  CLI::Option* steps_opt = nullptr;

  bool any() const { return !attack.empty() || robustness; }
};

void add_explain_adversarial_flags(CLI::App* sub, ExplainAdversarialFlags& f);

/// Refuses bad values (eps, top k, steps, the attack's name and parameters,
/// the map) before any work is done.
void check_explain_adversarial_flags(const ExplainAdversarialFlags& f);

/// Runs what the flags ask for on `data` (clean attributions `clean` from
/// `explainer`), writes its NPY files and PNG grids to `dir`, adds its JSON
/// to `j` ("adversarial", "robustness") and its summary lines to `lines`.
void run_explain_adversarial(const ExplainAdversarialFlags& f, Classifier& model, Explainer& explainer,
                             const Dataset& data, const Attribution& clean, bool target_predicted, uint64_t seed,
                             int64_t batch_size, const std::string& dir, nlohmann::json& j,
                             std::vector<std::string>& lines);

}  // namespace aegis::cli
