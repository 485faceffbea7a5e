#include "aegis/defenses/detectors/detector.h"

#include <cmath>
#include <fstream>

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

void Detector::calibrate(const torch::Tensor& clean_x, double fpr) {
  AEGIS_CHECK(fpr > 0 && fpr < 1, InvalidArgument, "target false-positive rate must be in (0, 1), got " << fpr);
  torch::Tensor s = score(clean_x).to(torch::kDouble).flatten();
  AEGIS_CHECK(s.numel() > 0, InvalidArgument, "calibration needs clean samples");
  threshold_ = torch::quantile(s, 1.0 - fpr).item<double>();
  calibrated_fpr_ = fpr;
}

torch::Tensor Detector::score_graph(const torch::Tensor&) {
  AEGIS_FAIL(Unsupported, "the " << name() << " detector has no differentiable surrogate, so it cannot be attacked "
                                     "adaptively by gradient; evaluate it with a black-box attack instead");
}

nlohmann::json Detector::to_json() const {
  return {{"format", "aegis-detector/1"},
          {"type", name()},
          {"threshold", threshold_},
          {"calibrated_fpr", std::isnan(calibrated_fpr_) ? nlohmann::json(nullptr) : nlohmann::json(calibrated_fpr_)},
          {"state", state_json()}};
}

void save_detector(const Detector& d, const std::string& path) {
  std::ofstream out(path);
  AEGIS_CHECK(out.good(), Io, "cannot write " << path);
  out << d.to_json().dump(2) << "\n";
  AEGIS_CHECK(out.good(), Io, "error writing " << path);
}

std::unique_ptr<Detector> load_detector_file(const std::string& path, ClassifierPtr model) {
  std::ifstream in(path);
  AEGIS_CHECK(in.good(), NotFound, "detector file not found: " << path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    AEGIS_FAIL(CorruptData, path << ": not valid JSON (" << one_line_message(e) << ")");
  }
  return load_detector(j, std::move(model));
}

}  // namespace aegis
