#pragma once
// Internal: detectors that carry clean inputs in their JSON (LID's reference
// set, STRIP's overlay pool) store them as base64 float32 with their shape,
// under "<prefix>_shape" and "<prefix>_f32_base64".

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace aegis::detector_internal {

void put_f32(nlohmann::json& state, const std::string& prefix, const torch::Tensor& t);
/// Throws CorruptData (naming `what`) for a missing, mis-sized or non-finite tensor.
torch::Tensor get_f32(const nlohmann::json& state, const std::string& prefix, const std::string& what);

}  // namespace aegis::detector_internal
