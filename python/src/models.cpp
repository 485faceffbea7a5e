#include "models.h"

#include <torch/extension.h>

#include <nlohmann/json.hpp>

#include "aegis/core/error.h"
#include "bindings.h"

namespace aegis::python {

namespace {

ModelMeta parse_meta(const std::string& meta_json) {
  nlohmann::json j = nlohmann::json::parse(meta_json, nullptr, false);
  AEGIS_CHECK(!j.is_discarded(), InvalidArgument, "model metadata is not valid JSON");
  return ModelMeta::from_json(j);
}

/// A Classifier whose forward is a Python callable. The GIL is released by
/// the long-running entry points and taken back here for each forward.
class CallbackClassifier : public Classifier {
 public:
  CallbackClassifier(py::object fn, ModelMeta meta) : Classifier(std::move(meta)), fn_(std::move(fn)) {
    meta_.validate();
  }
  ~CallbackClassifier() override {
    py::gil_scoped_acquire gil;
    fn_ = py::object();
  }

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override {
    py::gil_scoped_acquire gil;
    py::object out;
    try {
      torch::AutoGradMode mode(grad);
      out = fn_(x);
    } catch (py::error_already_set& e) {
      AEGIS_FAIL(Internal, "the model's forward raised " << e.what());
    }
    AEGIS_CHECK(THPVariable_Check(out.ptr()), Unsupported,
                "the model's forward returned " << std::string(py::str(out.get_type().attr("__name__")))
                                                << "; aegis needs a tensor of logits [batch, classes]");
    torch::Tensor t = THPVariable_Unpack(out.ptr());
    AEGIS_CHECK(t.dim() == 2 && t.size(0) == x.size(0) && t.size(1) == meta_.num_classes, ShapeMismatch,
                "the model returned shape " << t.sizes() << " for a batch of " << x.size(0) << "; expected ["
                                            << x.size(0) << ", " << meta_.num_classes << "]");
    return t;
  }

 private:
  py::object fn_;
};

}  // namespace

Model model_from_script(const py::object& module, const std::string& meta_json) {
  py::object script_module = py::module_::import("torch.jit").attr("ScriptModule");
  AEGIS_CHECK(py::isinstance(module, script_module), InvalidArgument, "expected a torch.jit.ScriptModule");
  auto jit = py::cast<torch::jit::Module>(module.attr("_c"));
  auto script = std::make_shared<ScriptClassifier>(jit, parse_meta(meta_json));
  return {script, script, "script"};
}

Model model_from_callable(const py::object& fn, const std::string& meta_json) {
  AEGIS_CHECK(PyCallable_Check(fn.ptr()), InvalidArgument, "the model must be callable");
  return {std::make_shared<CallbackClassifier>(fn, parse_meta(meta_json)), nullptr, "callback"};
}

Model model_from_file(const std::string& path, const std::string& overrides_json) {
  nlohmann::json j = nlohmann::json::parse(overrides_json, nullptr, false);
  AEGIS_CHECK(!j.is_discarded() && j.is_object(), InvalidArgument, "model overrides must be a JSON object");
  ModelOverrides o;
  try {
    if (j.contains("input_shape")) o.input_shape(j["input_shape"].get<std::vector<int64_t>>());
    if (j.contains("classes")) o.num_classes(j["classes"].get<int64_t>());
    if (j.contains("clip")) {
      auto c = j["clip"].get<std::vector<double>>();
      AEGIS_CHECK(c.size() == 2, InvalidArgument, "clip takes two values: (min, max)");
      o.clip(c[0], c[1]);
    }
    if (j.contains("mean") || j.contains("std"))
      o.normalization(j.value("mean", std::vector<double>{}), j.value("std", std::vector<double>{}));
    if (j.contains("class_names")) o.class_names(j["class_names"].get<std::vector<std::string>>());
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(InvalidArgument, "model overrides: " << e.what());
  }
  auto script = ScriptClassifier::load(path, o);
  return {script, script, "file"};
}

void bind_models(py::module_& m) {
  py::class_<Model>(m, "_Model")
      .def_readonly("kind", &Model::kind)
      .def("meta_json", [](const Model& self) { return self.classifier->meta().to_json().dump(); })
      .def("logits",
           [](Model& self, const torch::Tensor& x) {
             py::gil_scoped_release nogil;
             return self.classifier->logits(x);
           })
      .def("predict",
           [](Model& self, const torch::Tensor& x) {
             py::gil_scoped_release nogil;
             return self.classifier->predict(x);
           })
      .def("queries", [](const Model& self) { return self.classifier->queries(); })
      .def("save", [](const Model& self, const std::string& path) {
        AEGIS_CHECK(self.script, Unsupported, "a model called back through Python cannot be saved; script it first");
        self.script->save(path);
      });
  m.def("model_from_script", &model_from_script, py::arg("module"), py::arg("meta_json"));
  m.def("model_from_callable", &model_from_callable, py::arg("fn"), py::arg("meta_json"));
  m.def("model_from_file", &model_from_file, py::arg("path"), py::arg("overrides_json") = "{}");
}

}  // namespace aegis::python
