#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

// Each detector type adds its case here (no macro registration: the list of
// what can be loaded is this function).
std::unique_ptr<Detector> load_detector(const nlohmann::json& j, ClassifierPtr model) {
  AEGIS_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), CorruptData,
              "detector JSON has no \"type\"");
  AEGIS_CHECK(model != nullptr, InvalidArgument, "a detector needs the model it watches");
  const std::string type = j["type"];
  AEGIS_FAIL(InvalidArgument, "unknown detector type '" << type << "'");
}

}  // namespace aegis
