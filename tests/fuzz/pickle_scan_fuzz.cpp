// Fuzzes the unsafe-file scanner: the pickle opcode walker and the zip
// central-directory reader behind it, which read untrusted model files.
// fuzz-sources: src/integrity/model_scan.cpp src/integrity/zip_reader.cpp
// src/core/error.cpp

#include <cstddef>
#include <cstdint>
#include <string>

#include "aegis/core/error.h"
#include "aegis/integrity/model_scan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  aegis::PickleWalk w = aegis::walk_pickle(bytes, 100000);  // never throws
  (void)w.imports.size();
  try {
    // Small limits keep each input fast; the parser must still never crash.
    aegis::ScanReport r = aegis::scan_bytes(bytes, "fuzz.pt", aegis::ScanOptions().max_pickle_bytes(1 << 20));
    (void)r.to_json().dump();
  } catch (const aegis::Error&) {
  }
  return 0;
}
