#pragma once
/// A robust evaluation in RobustBench's model-info format (the JSON files of
/// its leaderboard, model_info/<dataset>/<Linf|L2>/<name>.json), so a result
/// can be set beside the leaderboard's entries. Where the evaluation departs
/// from the leaderboard's conventions (not AutoAttack's standard version, not
/// the whole test set, preflight or sanity warnings) the entry is marked
/// "unreliable" with a footnote saying why, as the leaderboard marks them.
///
///   nlohmann::ordered_json j = robustbench_model_info(r, model->meta(), RobustBenchInfo().name("my-net"));

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "aegis/attacks/evasion/robust_evaluation.h"
#include "aegis/core/model_meta.h"

namespace aegis {

struct RobustBenchInfo {
  std::string name_, link_, authors_, venue_, dataset_, reported_;
  std::string architecture_;  ///< empty: the model's meta().architecture
  bool additional_data_ = false;
  int64_t forward_passes_ = 1;     ///< forward passes per prediction of the defence
  int64_t test_set_size_ = 10000;  ///< the leaderboard's test set (CIFAR-10, Fashion-MNIST: 10000)

  RobustBenchInfo& name(std::string v) { name_ = std::move(v); return *this; }
  RobustBenchInfo& link(std::string v) { link_ = std::move(v); return *this; }
  RobustBenchInfo& authors(std::string v) { authors_ = std::move(v); return *this; }
  RobustBenchInfo& venue(std::string v) { venue_ = std::move(v); return *this; }
  RobustBenchInfo& dataset(std::string v) { dataset_ = std::move(v); return *this; }
  RobustBenchInfo& reported(std::string v) { reported_ = std::move(v); return *this; }
  RobustBenchInfo& architecture(std::string v) { architecture_ = std::move(v); return *this; }
  RobustBenchInfo& additional_data(bool v) { additional_data_ = v; return *this; }
  RobustBenchInfo& forward_passes(int64_t v) { forward_passes_ = v; return *this; }
  RobustBenchInfo& test_set_size(int64_t v) { test_set_size_ = v; return *this; }
};

/// eps as the leaderboard writes it: "8/255" for a linf budget that is a whole
/// number of 1/255 steps of the model's range, else the number ("0.5").
std::string robustbench_eps(double eps, Norm norm, const ModelMeta& meta);

/// The leaderboard's keys in its order: link, name, authors, additional_data,
/// number_forward_passes, dataset, venue, architecture, eps, clean_acc,
/// reported, autoattack_acc (accuracies as percent strings with two
/// decimals), then unreliable and footnote when the evaluation departs from
/// the leaderboard's conventions.
nlohmann::ordered_json robustbench_model_info(const RobustEvaluation& r, const ModelMeta& meta,
                                              const RobustBenchInfo& info);

}  // namespace aegis
