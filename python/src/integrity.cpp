// Signing, verification and scanning for the Python package: no tensors,
// so this file stays out of LibTorch's headers.

#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>
#include <string>

#include "aegis/integrity/model_scan.h"
#include "aegis/integrity/model_signing.h"
#include "bindings.h"

namespace aegis::python {

namespace {

std::string sign(const std::string& path, const std::string& private_key, const std::string& signature_path) {
  SignOptions o(private_key);
  if (!signature_path.empty()) o.signature_path(signature_path);
  return sign_model(path, o).to_json().dump();
}

std::string verify(const std::string& path, const std::string& public_key, const std::string& signature_path) {
  VerifyOptions o(public_key);
  if (!signature_path.empty()) o.signature_path(signature_path);
  return verify_model(path, o).to_json().dump();
}

std::string scan(const std::string& path) {
  ScanReport r;
  {
    py::gil_scoped_release nogil;
    r = scan_model(path);
  }
  nlohmann::json j = r.to_json();
  j["worst"] = severity_name(r.worst());
  j["clean"] = r.clean();
  return j.dump();
}

}  // namespace

void bind_integrity(py::module_& m) {
  m.def("sign", &sign, py::arg("path"), py::arg("private_key"), py::arg("signature_path") = "");
  m.def("verify", &verify, py::arg("path"), py::arg("public_key"), py::arg("signature_path") = "");
  m.def("scan", &scan, py::arg("path"));
  m.def("generate_signing_key", &generate_signing_key, py::arg("private_path"));
}

}  // namespace aegis::python
