// Fuzzes the model-signing bundle and statement parsers, which read untrusted
// signature files (model.sig) before and after the signature check.
// fuzz-sources: src/integrity/signature_bundle.cpp src/core/sha256.cpp
// src/core/error.cpp

#include <cstddef>
#include <cstdint>
#include <string>

#include "aegis/core/error.h"
#include "aegis/integrity/signature_bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    aegis::SignatureBundle b = aegis::parse_signature_bundle(bytes);
    (void)aegis::dsse_pae(b.payload_type, b.payload);
    aegis::ModelStatement st = aegis::parse_statement_payload(b.payload);
    // What parses must re-encode and parse back to the same resources.
    aegis::ModelStatement again = aegis::parse_statement_payload(aegis::statement_to_payload(st));
    if (again.resources.size() != st.resources.size() || again.subject_digest != st.subject_digest) __builtin_trap();
  } catch (const aegis::Error&) {
  }
  try {
    (void)aegis::parse_statement_payload(bytes);
  } catch (const aegis::Error&) {
  }
  return 0;
}
