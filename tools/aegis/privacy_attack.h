#pragma once
// The privacy and model-theft attacks of `aegis attack` (membership
// inference, model inversion / attribute inference, model extraction).
// attack.cpp owns the subcommand: it adds these options beside the evasion
// ones and, for --attack membership|inversion|extraction, fills the common
// fields (output, model, data, --steps, --eps, --out) and calls
// run_privacy_attack.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cli_common.h"

namespace aegis::cli {

/// Flags of the privacy attacks, parsed into the library's options by
/// run_privacy_attack.
struct PrivacyFlags {
  OutputFlags out;
  ModelFlags model;
  DataFlags data;
  std::string attack;  ///< membership, inversion or extraction
  std::string method;
  std::string access = "full";
  int64_t top_k = 3;
  int decimals = 2;
  std::string out_dir;     ///< artefacts (ROC curve, PNG images, substitute model)
  std::string result_out;  ///< the result as JSON, when set
  // membership
  int64_t candidates = 1000;
  std::string signal = "loss";
  int64_t shadow_models = 0;  // 0 = the method's default
  int64_t attacker_records = 2000;
  int64_t shadow_epochs = 0;         // 0 = the victim's recorded epochs, else 10
  int64_t shadow_train_records = 0;  // lira; 0 = the victim's recorded training-set size
  int64_t perturbations = 16;
  double noise_std = 0.1;
  // inversion
  std::string gradient = "white-box";
  std::string objective = "logit";
  std::string init = "min";
  int64_t steps = 300;
  double lr = 0.01;
  double tv_weight = 0.1;
  double l2_weight = 1.0;
  int64_t samples = 40;
  double sigma = 0.01;
  std::vector<int64_t> classes;
  int64_t feature = -1;
  int64_t reference_limit = 0;
  // extraction
  int64_t budget = 10000;
  std::vector<int64_t> budgets;
  std::string query_data = "train";
  std::string substitute_arch = "auto";
  int64_t substitute_epochs = 15;
  int64_t test_limit = 2000;
  double eps = 0.1;
  int64_t transfer_samples = 500;
  int64_t seed_size = 100;
};

/// True for the attack names this file handles: membership, inversion,
/// extraction.
bool is_privacy_attack(const std::string& name);

/// Adds the privacy attacks' own options, in groups, to `sub` (not the
/// output/model/data flags, --attack, --steps, --eps or the output directory,
/// which the caller shares with the evasion attacks).
void add_privacy_attack_options(CLI::App* sub, PrivacyFlags& flags);

/// Runs the attack `flags.attack` and prints its result (emit()).
void run_privacy_attack(PrivacyFlags& flags);

}  // namespace aegis::cli
