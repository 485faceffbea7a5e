// aegis model meta: writes aegis metadata (input shape, classes, valid range,
// normalisation, class names) into a TorchScript archive that lacks it or has
// it wrong, so every other subcommand and the gateway take the model without
// flags. The model is loaded with the new metadata first: a probe forward
// checks that it accepts the shape and returns that many classes.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "aegis/integrity/model_signing.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct ModelMetaFlags {
  OutputFlags out;
  ModelFlags model;
  std::string out_path;
  bool force = false;
};

void run(ModelMetaFlags& f) {
  f.out.apply();
  namespace fs = std::filesystem;
  AEGIS_CHECK(!f.model.is_remote(), InvalidArgument, "model meta writes a model file, not a served model");
  AEGIS_CHECK(!f.out_path.empty(), InvalidArgument, "give the output file with -o OUT");
  std::error_code ec;
  const bool same = fs::exists(f.out_path) && fs::equivalent(f.out_path, f.model.path, ec);
  AEGIS_CHECK(!fs::exists(f.out_path) || f.force, InvalidArgument,
              f.out_path << " exists; pass --force to replace it" << (same ? " (it is the input model)" : ""));
  auto model = f.model.load();
  model->meta().validate();
  model->save(f.out_path);
  const ModelMeta& m = model->meta();
  const bool was_signed = fs::exists(default_signature_path(f.model.path));
  nlohmann::json j = {{"model", f.model.path},
                      {"out", f.out_path},
                      {"sha256", sha256_file(f.out_path)},
                      {"meta", m.to_json()},
                      {"input_was_signed", was_signed}};
  emit(f.out, j, [&] {
    std::cout << fmt::format("wrote {} with input shape [{}], {} classes, range [{}, {}]", f.out_path,
                             fmt::join(m.input_shape, ", "), m.num_classes, m.clip_min, m.clip_max);
    if (!m.mean.empty())
      std::cout << fmt::format(", normalised mean [{}] std [{}]", fmt::join(m.mean, ", "), fmt::join(m.std, ", "));
    std::cout << "\n";
    if (!m.class_names.empty()) std::cout << fmt::format("classes: {}\n", fmt::join(m.class_names, ", "));
    if (was_signed)
      std::cout << fmt::format(
          "note: {} is signed; {} is a new file and is not (sign it again, or keep the signed archive unmodified and "
          "give these fields in serve.toml)\n",
          f.model.path, f.out_path);
  });
}

}  // namespace

void add_model_command(CLI::App& app, Context&) {
  CLI::App* group = subcommand_group(app, "model", "Model files: metadata");
  auto f = std::make_shared<ModelMetaFlags>();
  auto* sub = group->add_subcommand(
      "meta", "Write aegis metadata (input shape, classes, range, normalisation, class names) into a model archive");
  sub->footer(
      "Example:\n  aegis model meta theirs.pt --input-shape 1,28,28 --class-names "
      "T-shirt,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Boot -o theirs-meta.pt\n"
      "Fields not given keep the archive's value (or, for classes, are found by one probe forward).");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model, false);
  sub->add_option("model_file", f->model.path, "Model file (or use --model)");
  sub->add_option("-o,--out", f->out_path, "Where to write the model with its metadata")->required();
  sub->add_flag("--force", f->force, "Replace OUT if it exists (also the input file itself)");
  sub->callback([f] {
    if (f->model.path.empty()) throw CLI::RequiredError("a model file");
    run(*f);
  });
}

}  // namespace aegis::cli
