// The privacy accountants for the Python package (aegis.privacy): the same
// Accountant the CLI's `aegis dp` uses, with its history as a dict so a
// training loop can save it with its checkpoint. No tensors, so this file
// stays out of LibTorch's headers.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>
#include <string>

#include "aegis/core/error.h"
#include "aegis/privacy/accountant.h"
#include "bindings.h"

namespace aegis::python {

namespace {

py::dict rdp_details(const Accountant& a, double delta) {
  RdpEpsilon e = static_cast<const RdpAccountant&>(a).epsilon_and_order(delta);
  py::dict d;
  d["epsilon"] = e.epsilon;
  d["order"] = e.order;
  return d;
}

py::dict prv_details(const Accountant& a, double delta) {
  PrvEpsilon e = static_cast<const PrvAccountant&>(a).epsilon_bounds(delta);
  py::dict d;
  d["epsilon"] = e.upper;
  d["lower"] = e.lower;
  d["estimate"] = e.estimate;
  return d;
}

}  // namespace

void bind_privacy(py::module_& m) {
  py::class_<Accountant>(m, "_Accountant")
      .def_property_readonly("name", &Accountant::name)
      .def("step", &Accountant::step, py::arg("noise_multiplier"), py::arg("sample_rate"), py::arg("steps") = 1)
      .def(
          "epsilon",
          [](const Accountant& a, double delta) {
            py::gil_scoped_release nogil;
            return a.epsilon(delta);
          },
          py::arg("delta"))
      .def(
          "details",
          [](const Accountant& a, double delta) {
            return a.name() == "rdp" ? rdp_details(a, delta) : prv_details(a, delta);
          },
          py::arg("delta"))
      .def_property_readonly("total_steps", &Accountant::total_steps)
      .def("state_json", [](const Accountant& a) { return a.to_json().dump(); });
  m.def("make_accountant", &make_accountant, py::arg("name"));
  m.def(
      "accountant_from_json",
      [](const std::string& text) {
        nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
        AEGIS_CHECK(!j.is_discarded(), CorruptData, "accountant state is not JSON");
        return accountant_from_json(j);
      },
      py::arg("state"));
  m.def(
      "find_noise_multiplier",
      [](double epsilon, double delta, double sample_rate, int64_t steps, const std::string& accountant,
         double tolerance) {
        NoiseMultiplier n;
        {
          py::gil_scoped_release nogil;
          n = find_noise_multiplier(epsilon, delta, sample_rate, steps, accountant, tolerance);
        }
        return py::make_tuple(n.noise_multiplier, n.epsilon);
      },
      py::arg("epsilon"), py::arg("delta"), py::arg("sample_rate"), py::arg("steps"), py::arg("accountant"),
      py::arg("tolerance"));
}

}  // namespace aegis::python
