#include "aegis/attacks/evasion/robustbench.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <vector>

namespace aegis {

std::string robustbench_eps(double eps, Norm norm, const ModelMeta& meta) {
  const double range = meta.clip_max - meta.clip_min;
  if (norm == Norm::Linf && range > 0) {
    const double steps = eps / range * 255.0;
    const double whole = std::round(steps);
    if (whole >= 1 && std::abs(steps - whole) < 1e-6 * std::max(1.0, whole)) return fmt::format("{:g}/255", whole);
  }
  return fmt::format("{:g}", eps);
}

nlohmann::ordered_json robustbench_model_info(const RobustEvaluation& r, const ModelMeta& meta,
                                              const RobustBenchInfo& info) {
  const auto percent = [](double a) { return fmt::format("{:.2f}", 100.0 * a); };
  nlohmann::ordered_json j;
  j["link"] = info.link_;
  j["name"] = info.name_;
  j["authors"] = info.authors_;
  j["additional_data"] = info.additional_data_;
  j["number_forward_passes"] = info.forward_passes_;
  j["dataset"] = info.dataset_;
  j["venue"] = info.venue_;
  j["architecture"] = info.architecture_.empty() ? meta.architecture : info.architecture_;
  j["eps"] = robustbench_eps(r.eps, r.norm, meta);
  j["clean_acc"] = percent(r.clean_accuracy);
  j["reported"] = info.reported_;
  j["autoattack_acc"] = percent(r.robust_accuracy);
  std::vector<std::string> why;
  if (r.protocol != "autoattack-standard")
    why.push_back(fmt::format("evaluated with aegis's {} protocol, not AutoAttack's standard version", r.protocol));
  if (r.samples < info.test_set_size_)
    why.push_back(fmt::format("on the first {} of the {} test samples", r.samples, info.test_set_size_));
  if (!r.warnings.empty())
    why.push_back(fmt::format("{} preflight or sanity warning(s): the robust accuracy may be overstated ({})",
                              r.warnings.size(), r.warnings.front()));
  if (r.norm == Norm::L1) why.push_back("an L1 threat model, which the leaderboard does not have");
  if (!why.empty()) {
    std::string footnote;
    for (const auto& w : why) footnote += (footnote.empty() ? "" : "; ") + w;
    footnote[0] = char(std::toupper(static_cast<unsigned char>(footnote[0])));
    j["unreliable"] = true;
    j["footnote"] = footnote + ".";
  }
  return j;
}

}  // namespace aegis
