// aegis info: what a model file is: architecture, parameters, metadata, SHA-256.

#include <iostream>

#include <fmt/format.h>

#include "aegis/core/sha256.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct InfoFlags {
  OutputFlags out;
  ModelFlags model;
};

void run(InfoFlags& f) {
  f.out.apply();
  auto model = f.model.load();
  const ModelMeta& m = model->meta();
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, t] : model->named_tensors())
    tensors.push_back({{"name", name}, {"shape", t.sizes().vec()}, {"dtype", std::string(c10::toString(t.scalar_type()))}});
  nlohmann::json j = {{"path", f.model.path},
                      {"sha256", sha256_file(f.model.path)},
                      {"parameters", model->parameter_count()},
                      {"has_features", model->has_features()},
                      {"meta", m.to_json()},
                      {"tensors", tensors}};
  if (m.provenance.contains("privacy")) j["privacy"] = m.provenance["privacy"];
  emit(f.out, j, [&] {
    std::cout << fmt::format("model        {}\n", f.model.path);
    std::cout << fmt::format("sha256       {}\n", j["sha256"].get<std::string>());
    std::cout << fmt::format("architecture {}\n", m.architecture);
    std::cout << fmt::format("parameters   {}\n", model->parameter_count());
    std::cout << fmt::format("input shape  [{}]\n", fmt::join(m.input_shape, ", "));
    std::cout << fmt::format("classes      {}", m.num_classes);
    if (!m.class_names.empty()) std::cout << " (" << fmt::format("{}", fmt::join(m.class_names, ", ")) << ")";
    std::cout << fmt::format("\ninput range  [{}, {}]\n", m.clip_min, m.clip_max);
    if (!m.mean.empty())
      std::cout << fmt::format("normalised   mean [{}] std [{}]\n", fmt::join(m.mean, ", "), fmt::join(m.std, ", "));
    if (m.provenance.contains("training")) {
      const auto& t = m.provenance["training"];
      std::cout << fmt::format("trained      {} on {} ({} samples), {} epochs\n", t.value("objective", "?"),
                               t["data"].value("source", "?"), t["data"].value("samples", 0), t.value("epochs_run", 0));
      std::cout << fmt::format("data hash    {}\n", t["data"].value("fingerprint", "?"));
    }
    if (m.provenance.contains("privacy")) {  // written by DP-SGD (privacy/dp_sgd.h)
      const auto& p = m.provenance["privacy"];
      std::cout << fmt::format("privacy      epsilon {:.4g} at delta {:g} ({} accountant), per training example\n",
                               p.value("epsilon", 0.0), p.value("delta", 0.0), p.value("accountant", "?"));
      std::cout << fmt::format("dp-sgd       sigma {:.4g}, C {:g} ({} clipping), q {:.4g}, {} steps\n",
                               p.value("noise_multiplier", 0.0), p.value("max_grad_norm", 0.0),
                               p.value("clipping", "?"), p.value("sample_rate", 0.0), p.value("steps", 0));
      if (p.value("seeded", false))
        std::cout << "noise        SEEDED (reproducible): not private against anyone who knows the seed\n";
    }
    std::cout << "\ntensors\n";
    for (const auto& t : tensors)
      std::cout << fmt::format("  {:<24} {}\n", t["name"].get<std::string>(), t["shape"].dump());
  });
}

}  // namespace

void add_info_command(CLI::App& app, Context&) {
  auto f = std::make_shared<InfoFlags>();
  auto* sub = app.add_subcommand("info", "Architecture, parameter count, metadata and SHA-256 of a model");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model, false);
  sub->add_option("model_file", f->model.path, "Model file (or use --model)");
  sub->callback([f] {
    if (f->model.path.empty()) throw CLI::RequiredError("a model file");
    run(*f);
  });
}

}  // namespace aegis::cli
