#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/defenses/detectors/detector.h"
#include "aegis/defenses/detectors/feature_squeezing_detector.h"
#include "aegis/defenses/detectors/lid_detector.h"
#include "aegis/defenses/detectors/mahalanobis_detector.h"
#include "aegis/defenses/detectors/strip_detector.h"

namespace aegis {

// Each detector type adds its case here (no macro registration: the list of
// what can be loaded is this function).
std::unique_ptr<Detector> load_detector(const nlohmann::json& j, ClassifierPtr model) {
  AEGIS_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), CorruptData,
              "detector JSON has no \"type\"");
  AEGIS_CHECK(model != nullptr, InvalidArgument, "a detector needs the model it watches");
  const std::string type = j["type"];
  const nlohmann::json state = j.value("state", nlohmann::json::object());
  std::unique_ptr<Detector> d;
  if (type == "feature-squeezing") d = FeatureSqueezingDetector::from_state(state, model);
  if (type == "mahalanobis") d = MahalanobisDetector::from_state(state, model);
  if (type == "lid") d = LIDDetector::from_state(state, model);
  if (type == "strip") d = STRIPDetector::from_state(state, model);
  if (d) {
    AEGIS_CHECK(j.contains("threshold") && j["threshold"].is_number(), CorruptData, "detector JSON has no threshold");
    d->set_threshold(j["threshold"].get<double>());
    if (j.contains("calibrated_fpr") && !j["calibrated_fpr"].is_null()) {
      AEGIS_CHECK(j["calibrated_fpr"].is_number(), CorruptData, "detector JSON: calibrated_fpr must be a number");
      d->set_calibrated_fpr(j["calibrated_fpr"].get<double>());
    }
    return d;
  }
  AEGIS_FAIL(InvalidArgument, "unknown detector type '" << type << "'");
}

}  // namespace aegis
