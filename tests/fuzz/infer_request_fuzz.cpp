// Fuzzes the gateway's request parser and tensor decoder (the first code to
// touch an untrusted request body): any input must either decode into
// tensors whose sizes agree with their shapes, or be refused with
// aegis::Error(InvalidArgument).
// fuzz-sources: src/serve/infer_request.cpp src/core/error.cpp

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "aegis/core/error.h"
#include "aegis/serve/infer_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    aegis::serve::InferRequest r =
        aegis::serve::parse_infer_request(body, aegis::serve::ParseLimits().max_elements(1 << 16));
    int64_t total = 0;
    for (const auto& t : r.inputs) {
      int64_t n = 1;
      for (int64_t d : t.shape) {
        if (d < 0) std::abort();
        n *= d;
      }
      if (n != static_cast<int64_t>(t.data.size())) std::abort();
      total += n;
    }
    if (total > (1 << 16)) std::abort();
  } catch (const aegis::Error& e) {
    if (e.kind() != aegis::ErrorKind::InvalidArgument) std::abort();
  }
  return 0;
}
