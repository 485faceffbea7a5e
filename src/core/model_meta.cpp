#include "aegis/core/model_meta.h"

#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

void ModelMeta::validate() const {
  AEGIS_CHECK(!input_shape.empty(), InvalidArgument, "model metadata: input_shape is empty");
  for (int64_t d : input_shape) {
    AEGIS_CHECK(d > 0, InvalidArgument, "model metadata: input_shape has a non-positive dimension " << d);
  }
  AEGIS_CHECK(num_classes >= 2, InvalidArgument,
              "model metadata: num_classes must be >= 2, got " << num_classes);
  AEGIS_CHECK(std::isfinite(clip_min) && std::isfinite(clip_max) && clip_min < clip_max,
              InvalidArgument, "model metadata: clip range [" << clip_min << ", " << clip_max << "] is empty");
  AEGIS_CHECK(mean.size() == std.size(), InvalidArgument,
              "model metadata: mean has " << mean.size() << " values but std has " << std.size());
  if (!mean.empty()) {
    int64_t channels = input_shape.size() >= 2 ? input_shape[0] : input_shape[0];
    AEGIS_CHECK(int64_t(mean.size()) == 1 || int64_t(mean.size()) == channels, InvalidArgument,
                "model metadata: " << mean.size() << " normalisation values for " << channels
                                   << " channels");
    for (double s : std) AEGIS_CHECK(s > 0, InvalidArgument, "model metadata: std must be > 0");
  }
  AEGIS_CHECK(class_names.empty() || int64_t(class_names.size()) == num_classes, InvalidArgument,
              "model metadata: " << class_names.size() << " class names for " << num_classes
                                 << " classes");
}

std::string ModelMeta::class_name(int64_t c) const {
  if (c >= 0 && c < int64_t(class_names.size())) return class_names[c];
  return std::to_string(c);
}

int64_t ModelMeta::input_numel() const {
  int64_t n = 1;
  for (int64_t d : input_shape) n *= d;
  return n;
}

nlohmann::json ModelMeta::to_json() const {
  nlohmann::json j;
  j["format"] = "aegis-model-meta/1";
  j["architecture"] = architecture;
  j["input_shape"] = input_shape;
  j["num_classes"] = num_classes;
  j["clip_min"] = clip_min;
  j["clip_max"] = clip_max;
  j["mean"] = mean;
  j["std"] = std;
  j["class_names"] = class_names;
  j["provenance"] = provenance;
  return j;
}

ModelMeta ModelMeta::from_json(const nlohmann::json& j) {
  ModelMeta m;
  try {
    AEGIS_CHECK(j.is_object(), CorruptData, "model metadata is not a JSON object");
    m.architecture = j.value("architecture", std::string("torchscript"));
    m.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
    m.num_classes = j.at("num_classes").get<int64_t>();
    m.clip_min = j.value("clip_min", 0.0);
    m.clip_max = j.value("clip_max", 1.0);
    m.mean = j.value("mean", std::vector<double>{});
    m.std = j.value("std", std::vector<double>{});
    m.class_names = j.value("class_names", std::vector<std::string>{});
    if (j.contains("provenance")) m.provenance = j["provenance"];
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "model metadata: " << e.what());
  }
  try {
    m.validate();
  } catch (const Error& e) {
    throw Error(ErrorKind::CorruptData, e.what());
  }
  return m;
}

}  // namespace aegis
