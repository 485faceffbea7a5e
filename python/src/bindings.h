#pragma once
// The parts of the _aegis module, each bound by its own file.

#include <pybind11/pybind11.h>

namespace aegis::python {

namespace py = pybind11;

/// _Model and the model_from_* constructors (models.cpp).
void bind_models(py::module_& m);
/// sign, verify, scan, generate_signing_key (integrity.cpp).
void bind_integrity(py::module_& m);
/// the privacy accountants (privacy.cpp).
void bind_privacy(py::module_& m);

}  // namespace aegis::python
