// _aegis: the C++ side of the Python package. Thin, like the CLI: each
// function takes tensors and a JSON string of options, calls one library
// entry point with the GIL released, and returns tensors and the result's
// JSON (the same JSON the CLI prints). The pure-Python layer (aegis/) turns
// keyword arguments into that JSON and the JSON into result objects.

#include <torch/extension.h>

#include <nlohmann/json.hpp>

#include "aegis/attacks/evasion/robust_evaluation.h"
#include "aegis/attacks/registry.h"
#include "aegis/audit/audit.h"
#include "aegis/audit/suite.h"
#include "aegis/core/dataset.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/fast_at.h"
#include "aegis/defenses/training/pgd_at.h"
#include "aegis/defenses/training/trades.h"
#include "aegis/explain/registry.h"
#include "bindings.h"
#include "models.h"

namespace aegis::python {

namespace {

nlohmann::json parse_object(const std::string& text, const char* what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  AEGIS_CHECK(!j.is_discarded() && j.is_object(), InvalidArgument, what << " must be a JSON object");
  return j;
}

/// x and y as a Dataset (labels as int64, samples as float32).
Dataset make_dataset(const torch::Tensor& x, const torch::Tensor& y, const Model& model) {
  AEGIS_CHECK(x.defined() && y.defined(), InvalidArgument, "x and y are required");
  AEGIS_CHECK(x.dim() >= 2 && y.dim() == 1 && x.size(0) == y.size(0), ShapeMismatch,
              "x must be [N, ...] and y [N], got " << x.sizes() << " and " << y.sizes());
  Dataset d;
  d.x = x.detach().to(torch::kFloat).contiguous();
  d.y = y.detach().to(torch::kLong).contiguous();
  d.class_names = model.classifier->meta().class_names;
  d.source = "python";
  d.validate();
  return d;
}

py::dict attack(Model& model, const std::string& name, const std::string& params_json, const torch::Tensor& x,
                const torch::Tensor& y, const std::optional<torch::Tensor>& targets, int64_t batch_size) {
  auto a = make_attack(name, parse_object(params_json, "attack parameters"));
  AttackResult r;
  torch::Tensor clean_pred;
  {
    py::gil_scoped_release nogil;
    r = a->run_batched(*model.classifier, x.detach().to(torch::kFloat), y.detach().to(torch::kLong), batch_size,
                       targets ? targets->to(torch::kLong) : torch::Tensor());
  }
  py::dict out;
  out["x_adv"] = r.x_adv;
  out["success"] = r.success;
  out["adv_pred"] = r.adv_pred;
  out["l0"] = r.l0;
  out["l2"] = r.l2;
  out["linf"] = r.linf;
  out["targets"] = r.targets.defined() ? py::cast(r.targets) : py::none();
  out["attack"] = a->name();
  out["options_json"] = a->options_json().dump();
  out["json"] = r.to_json().dump();
  return out;
}

std::string evaluate(Model& model, const torch::Tensor& x, const torch::Tensor& y, const std::string& options_json) {
  nlohmann::json j = parse_object(options_json, "evaluation options");
  Dataset data = make_dataset(x, y, model);
  RobustEvaluationOptions o(parse_norm(j.value("norm", "linf")), j.value("eps", 0.0));
  o.budget(j.value("budget", "standard"))
      .batch_size(j.value("batch_size", int64_t(256)))
      .seed(j.value("seed", uint64_t(0)))
      .sanity_checks(j.value("sanity", true))
      .eot_samples(j.value("eot", int64_t(1)))
      .sanity_samples(j.value("sanity_samples", int64_t(200)))
      .force(j.value("force", false));
  if (j.contains("attacks") && !j["attacks"].is_null()) {
    std::vector<std::pair<std::string, nlohmann::json>> v;
    for (const auto& e : j["attacks"]) {
      if (e.is_string()) {
        v.push_back({e.get<std::string>(), nlohmann::json::object()});
        continue;
      }
      AEGIS_CHECK(e.is_object() && e.contains("attack"), InvalidArgument,
                  "attacks: each entry is a name or a dict with 'attack', got " << e.dump());
      nlohmann::json p = e;
      p.erase("attack");
      v.push_back({e["attack"].get<std::string>(), p});
    }
    o.attacks(v);
  }
  RobustEvaluation r;
  {
    py::gil_scoped_release nogil;
    r = evaluate_robustness(*model.classifier, data, o);
  }
  return r.to_json(j.value("per_sample", false)).dump();
}

/// The adversarial batch a training objective would train on, for a user's
/// own PyTorch loop. Options: eps, norm, steps, step_size, beta, seed,
/// random_start, warmup_epochs; ctx: epoch, epochs, step, steps.
torch::Tensor adversarial_batch(Model& model, const std::string& method, const torch::Tensor& x, const torch::Tensor& y,
                                const std::string& options_json) {
  AEGIS_CHECK(model.script, Unsupported,
              "adversarial_batch needs a TorchScript model (this one is called back through Python because it "
              "neither scripts nor traces)");
  nlohmann::json j = parse_object(options_json, "adversarial_batch options");
  const double eps = j.value("eps", 0.0);
  const Norm norm = parse_norm(j.value("norm", "linf"));
  std::unique_ptr<Objective> obj;
  if (method == "pgd-at" || method == "pgd") {
    PGDATOptions o(eps);
    o.norm(norm).steps(j.value("steps", o.steps_)).step_size(j.value("step_size", o.step_size_));
    o.random_start(j.value("random_start", o.random_start_)).warmup_epochs(j.value("warmup_epochs", 0.0));
    obj = std::make_unique<PGDATObjective>(o);
  } else if (method == "trades") {
    TRADESOptions o(eps);
    o.norm(norm).steps(j.value("steps", o.steps_)).step_size(j.value("step_size", o.step_size_));
    o.beta(j.value("beta", o.beta_)).warmup_epochs(j.value("warmup_epochs", 0.0)).seed(j.value("seed", uint64_t(0)));
    obj = std::make_unique<TRADESObjective>(o);
  } else if (method == "fast-at") {
    AEGIS_CHECK(norm == Norm::Linf, InvalidArgument, "fast-at is Linf only");
    FastATOptions o(eps);
    o.step_size(j.value("step_size", o.step_size_))
        .warmup_epochs(j.value("warmup_epochs", 0.0))
        .seed(j.value("seed", uint64_t(0)));
    obj = std::make_unique<FastATObjective>(o);
  } else {
    AEGIS_FAIL(InvalidArgument, "unknown method '" << method << "' (pgd-at, trades, fast-at)");
  }
  Batch b{x.detach().to(torch::kFloat), y.detach().to(torch::kLong),
          torch::arange(x.size(0), torch::TensorOptions().dtype(torch::kLong))};
  model.classifier->check_input(b.x);
  StepContext ctx;
  ctx.epoch = j.value("epoch", int64_t(0));
  ctx.epochs = j.value("epochs", std::max<int64_t>(ctx.epoch + 1, 1));
  ctx.step = j.value("step", int64_t(0));
  ctx.steps = j.value("steps_per_epoch", std::max<int64_t>(ctx.step + 1, 1));
  torch::Tensor x_adv;
  {
    py::gil_scoped_release nogil;
    x_adv = obj->adversarial_batch(*model.script, b, ctx);
    model.script->set_training(false);
  }
  return x_adv.detach();
}

py::dict explain(Model& model, const std::string& method, const std::string& params_json, const torch::Tensor& x,
                 const std::optional<torch::Tensor>& target, const std::optional<torch::Tensor>& background) {
  auto e = make_explainer(method, parse_object(params_json, "explainer parameters"),
                          background ? background->detach().to(torch::kFloat).contiguous() : torch::Tensor());
  Attribution a;
  {
    py::gil_scoped_release nogil;
    a = e->explain(*model.classifier, x, target ? *target : torch::Tensor());
  }
  py::dict out;
  out["values"] = a.values;
  out["target"] = a.target;
  out["score"] = a.score;
  out["baseline_score"] = a.baseline_score.defined() ? py::cast(a.baseline_score) : py::none();
  out["gap"] = a.gap.defined() ? py::cast(a.gap) : py::none();
  out["fidelity"] = a.fidelity.defined() ? py::cast(a.fidelity) : py::none();
  out["json"] = a.to_json().dump();
  return out;
}

py::dict audit(Model& model, const torch::Tensor& x, const torch::Tensor& y, const std::string& options_json) {
  nlohmann::json j = parse_object(options_json, "audit options");
  Dataset data = make_dataset(x, y, model);
  AEGIS_CHECK(j.contains("out_dir") && j["out_dir"].is_string(), InvalidArgument, "audit needs out_dir");
  Suite suite = j.value("suite", "").empty() ? builtin_suite(j.value("budget", "quick")) : load_suite(j["suite"]);
  AuditOptions o(j["out_dir"].get<std::string>());
  o.seed(j.value("seed", uint64_t(0)))
      .resume(j.value("resume", false))
      .model_path(j.value("model_path", ""))
      .data_source(j.value("data_source", "python"))
      .samples(j.value("samples", int64_t(0)))
      .write_html(j.value("html", true))
      .reproduce(j.value("reproduce", ""));
  AuditReport r;
  {
    py::gil_scoped_release nogil;
    r = run_audit(*model.classifier, data, suite, o);
  }
  py::dict out;
  out["json"] = r.report.dump();
  out["worst"] = std::string(severity_name(r.worst));
  out["json_path"] = r.json_path;
  out["html_path"] = r.html_path;
  out["resumed_checks"] = r.resumed_checks;
  return out;
}

void set_progress(const std::string& mode) {
  if (mode == "auto")
    set_default_progress_mode(ProgressMode::Auto);
  else if (mode == "bar")
    set_default_progress_mode(ProgressMode::Bar);
  else if (mode == "lines")
    set_default_progress_mode(ProgressMode::Lines);
  else if (mode == "quiet")
    set_default_progress_mode(ProgressMode::Quiet);
  else
    AEGIS_FAIL(InvalidArgument, "progress mode is auto, bar, lines or quiet, got '" << mode << "'");
}

std::string attack_catalog_json() {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& a : attack_catalog())
    j.push_back({{"name", a.name}, {"summary", a.summary}, {"white_box", a.white_box}});
  return j.dump();
}

}  // namespace

}  // namespace aegis::python

PYBIND11_MODULE(_aegis, m) {
  namespace py = pybind11;
  using namespace aegis::python;
  m.doc() = "aegis C++ core (use the `aegis` package, not this module directly)";
  m.attr("__version__") = AEGIS_VERSION;

  // Errors: aegis.Error and one subclass per ErrorKind, raised with the same
  // one-line message the CLI prints. Argument errors are ValueErrors too.
  static py::exception<aegis::Error> base(m, "Error");
  struct Kind {
    aegis::ErrorKind kind;
    const char* name;
    PyObject* extra_base;
  };
  static const Kind kinds[] = {
      {aegis::ErrorKind::InvalidArgument, "InvalidArgumentError", PyExc_ValueError},
      {aegis::ErrorKind::NotFound, "NotFoundError", PyExc_LookupError},
      {aegis::ErrorKind::CorruptData, "CorruptDataError", nullptr},
      {aegis::ErrorKind::ShapeMismatch, "ShapeMismatchError", PyExc_ValueError},
      {aegis::ErrorKind::PermissionDenied, "PermissionDeniedError", PyExc_PermissionError},
      {aegis::ErrorKind::Unauthenticated, "UnauthenticatedError", nullptr},
      {aegis::ErrorKind::RateLimited, "RateLimitedError", nullptr},
      {aegis::ErrorKind::Unsupported, "UnsupportedError", nullptr},
      {aegis::ErrorKind::Io, "IoError", PyExc_OSError},
      {aegis::ErrorKind::Internal, "InternalError", nullptr},
  };
  static std::vector<std::pair<aegis::ErrorKind, PyObject*>> classes;
  for (const auto& k : kinds) {
    std::string qualified = std::string("aegis.") + k.name;
    PyObject* bases = k.extra_base ? PyTuple_Pack(2, base.ptr(), k.extra_base) : PyTuple_Pack(1, base.ptr());
    PyObject* cls = PyErr_NewException(qualified.c_str(), bases, nullptr);
    Py_DECREF(bases);
    m.add_object(k.name, py::handle(cls));
    classes.push_back({k.kind, cls});
  }
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const aegis::Error& e) {
      for (const auto& [kind, cls] : classes)
        if (kind == e.kind()) {
          PyErr_SetString(cls, aegis::one_line_message(e).c_str());
          return;
        }
      PyErr_SetString(base.ptr(), aegis::one_line_message(e).c_str());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, aegis::one_line_message(e).c_str());
    }
  });

  bind_models(m);
  m.def("attack", &attack, py::arg("model"), py::arg("name"), py::arg("params_json"), py::arg("x"), py::arg("y"),
        py::arg("targets"), py::arg("batch_size"));
  m.def("explain", &explain, py::arg("model"), py::arg("method"), py::arg("params_json"), py::arg("x"),
        py::arg("target"), py::arg("background") = py::none());
  m.def("evaluate", &evaluate, py::arg("model"), py::arg("x"), py::arg("y"), py::arg("options_json"));
  m.def("adversarial_batch", &adversarial_batch, py::arg("model"), py::arg("method"), py::arg("x"), py::arg("y"),
        py::arg("options_json"));
  m.def("audit", &audit, py::arg("model"), py::arg("x"), py::arg("y"), py::arg("options_json"));
  bind_integrity(m);
  bind_privacy(m);
  m.def("set_progress", &set_progress, py::arg("mode"));
  m.def("attack_catalog_json", &attack_catalog_json);
  m.def("seed_everything", &aegis::seed_everything, py::arg("seed"));
}
