// Fuzzes the IDX and NPY parsers, which read untrusted data files.
// fuzz-sources: src/core/dataset_io.cpp src/core/error.cpp src/core/sha256.cpp src/integrity/encryption.cpp

#include <cstddef>
#include <cstdint>
#include <string>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto t = aegis::parse_idx(bytes);
    (void)t.numel();
  } catch (const aegis::Error&) {
  }
  try {
    auto t = aegis::parse_npy(bytes);
    (void)t.numel();
  } catch (const aegis::Error&) {
  }
  return 0;
}
