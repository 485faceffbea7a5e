#pragma once
// Models handed over from Python, as aegis Classifiers:
//  - a torch.jit.ScriptModule passes straight through (its parameters are
//    shared, not copied: the Python layer restores the module's training
//    flags after each call, since a ScriptClassifier freezes them);
//  - any other callable (a plain nn.Module that neither scripts nor traces)
//    is called back through Python for every forward; autograd still works,
//    because Python's torch and aegis share one LibTorch.

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "aegis/core/classifier.h"
#include "aegis/core/script_classifier.h"

namespace aegis::python {

namespace py = pybind11;

/// What the Python layer holds: the Classifier, and the ScriptClassifier
/// behind it when there is one (training objectives need it).
struct Model {
  ClassifierPtr classifier;
  std::shared_ptr<ScriptClassifier> script;  ///< null for callback models
  std::string kind;                          ///< "script", "callback" or "file"
};

/// `module` is a torch.jit.ScriptModule; `meta_json` is ModelMeta as JSON.
Model model_from_script(const py::object& module, const std::string& meta_json);
/// `fn(x) -> logits` for any callable (the GIL is taken for each call).
Model model_from_callable(const py::object& fn, const std::string& meta_json);
/// A model file (TorchScript archive), with optional metadata overrides as
/// JSON: input_shape, classes, clip [lo, hi], mean, std, class_names.
Model model_from_file(const std::string& path, const std::string& overrides_json);

}  // namespace aegis::python
