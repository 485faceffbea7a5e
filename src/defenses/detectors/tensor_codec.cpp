#include "defenses/detectors/tensor_codec.h"

#include <torch/torch.h>

#include <cstring>

#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/integrity/signature_bundle.h"

namespace aegis::detector_internal {

void put_f32(nlohmann::json& state, const std::string& prefix, const torch::Tensor& t) {
  torch::Tensor r = t.to(torch::kFloat).contiguous();
  std::string bytes(size_t(r.numel()) * sizeof(float), '\0');
  std::memcpy(bytes.data(), r.data_ptr<float>(), bytes.size());
  state[prefix + "_shape"] = r.sizes().vec();
  state[prefix + "_f32_base64"] = base64_encode(bytes);
}

torch::Tensor get_f32(const nlohmann::json& s, const std::string& prefix, const std::string& what) {
  try {
    std::vector<int64_t> shape = s.at(prefix + "_shape").get<std::vector<int64_t>>();
    AEGIS_CHECK(shape.size() >= 2, CorruptData, what << ": the shape must have a batch and a sample shape");
    int64_t n = 1;
    for (int64_t d : shape) {
      AEGIS_CHECK(d > 0 && d < (int64_t(1) << 31), CorruptData, what << ": bad shape");
      n *= d;
      AEGIS_CHECK(n < (int64_t(1) << 31), CorruptData, what << ": too large");
    }
    std::string bytes = base64_decode(s.at(prefix + "_f32_base64").get<std::string>(), what);
    AEGIS_CHECK(int64_t(bytes.size()) == n * int64_t(sizeof(float)), CorruptData,
                what << ": " << bytes.size() << " bytes, the shape needs " << n * 4);
    torch::Tensor t = torch::empty(shape, torch::kFloat);
    std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
    AEGIS_CHECK(torch::isfinite(t).all().item<bool>(), CorruptData, what << ": non-finite values");
    return t;
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, what << ": " << e.what());
  }
}

}  // namespace aegis::detector_internal
