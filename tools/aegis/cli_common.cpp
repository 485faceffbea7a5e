#include "cli_common.h"

#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "aegis/core/sha256.h"
#include "aegis/serve/remote_classifier.h"

namespace aegis::cli {

void OutputFlags::apply() const {
  if (json || quiet) set_default_progress_mode(ProgressMode::Quiet);
  configure_threads();
  if (threads > 0) at::set_num_threads(threads);
  seed_everything(seed);
}

void add_output_flags(CLI::App* sub, OutputFlags& f) {
  sub->add_flag("--json", f.json, "Print the result as JSON on stdout (no progress output)");
  sub->add_flag("-q,--quiet", f.quiet, "No progress bars or log lines");
  sub->add_option("--seed", f.seed, "Seed for every random choice")->capture_default_str();
  sub->add_option("--threads", f.threads, "Compute threads (default: all cores)")->check(CLI::NonNegativeNumber);
}

void emit(const OutputFlags& flags, const nlohmann::json& j, const std::function<void()>& human) {
  if (flags.json) {
    std::cout << j.dump(2) << std::endl;
  } else {
    human();
    std::cout.flush();
  }
}

DataSpec DataFlags::spec(const std::string& default_split) const {
  DataSpec s(data);
  s.split(split.empty() ? default_split : split).labels(labels).label_column(label_column).limit(limit);
  return s;
}

void add_data_flags(CLI::App* sub, DataFlags& f, const std::string& default_split) {
  sub->add_option("--data", f.data, "Data: 'fashion-mnist', an IDX directory or file, a .csv, or an .npy of samples")
      ->capture_default_str();
  sub->add_option("--split", f.split, "Split of an IDX collection: train or test (default " + default_split + ")")
      ->check(CLI::IsMember({"train", "test"}));
  sub->add_option("--labels", f.labels, "Labels file for .npy or single IDX image files");
  sub->add_option("--label-column", f.label_column, "CSV label column (name or index)")->capture_default_str();
  sub->add_option("--limit", f.limit, "Use only the first N samples (0 = all)")->check(CLI::NonNegativeNumber);
}

std::shared_ptr<ScriptClassifier> ModelFlags::load(const Dataset* data) const {
  ModelOverrides o;
  if (data && data->size() > 0) o.fallback_input_shape(data->sample_shape());
  if (!input_shape.empty()) o.input_shape(input_shape);
  if (classes > 0) o.num_classes(classes);
  if (!clip.empty()) {
    AEGIS_CHECK(clip.size() == 2, InvalidArgument, "--clip takes two values: min max");
    o.clip(clip[0], clip[1]);
  }
  if (!mean.empty() || !std.empty()) o.normalization(mean, std);
  if (!class_names.empty()) o.class_names(class_names);
  if (!key_file.empty()) o.key_file(key_file);
  return ScriptClassifier::load(path, o);
}

bool ModelFlags::is_remote() const { return path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0; }

nlohmann::json ModelFlags::describe() const {
  if (is_remote()) return {{"url", path}};
  return {{"path", path}, {"sha256", sha256_file(path)}};
}

ClassifierPtr ModelFlags::load_classifier(const Dataset* data) const {
  if (!is_remote()) return load(data);
  const std::string marker = "/v2/models/";
  const auto at = path.find(marker);
  AEGIS_CHECK(at != std::string::npos && at + marker.size() < path.size(), InvalidArgument,
              "a served model is named by its URL http[s]://HOST:PORT/v2/models/NAME, got " << path);
  std::string name = path.substr(at + marker.size());
  if (!name.empty() && name.back() == '/') name.pop_back();
  AEGIS_CHECK(!name.empty() && name.find('/') == std::string::npos, InvalidArgument,
              "a served model is named by its URL http[s]://HOST:PORT/v2/models/NAME, got " << path);
  std::string key;
  if (!api_key_file.empty()) {
    std::ifstream in(api_key_file);
    AEGIS_CHECK(in, NotFound, "cannot read API key file " << api_key_file);
    std::getline(in, key);
  } else if (const char* env = std::getenv("AEGIS_API_KEY"); env) {
    key = env;
  }
  AEGIS_CHECK(!key.empty(), InvalidArgument, "a served model needs an API key: --api-key-file FILE or $AEGIS_API_KEY");
  return serve::RemoteClassifier::connect(
      serve::RemoteOptions(path.substr(0, at), name).api_key(key).ca_file(ca_file));
}

void add_model_flags(CLI::App* sub, ModelFlags& f, bool required) {
  auto* opt = sub->add_option("-m,--model", f.path, "TorchScript model file (.pt)");
  if (required) opt->required();
  sub->add_option("--input-shape", f.input_shape,
                  "Shape of one sample, for models without aegis metadata (e.g. 1,28,28)")
      ->delimiter(',');
  sub->add_option("--classes", f.classes, "Number of classes (default: read from the model)");
  sub->add_option("--clip", f.clip, "Valid input range: min,max (default 0,1)")->delimiter(',')->expected(2);
  sub->add_option("--mean", f.mean, "Per-channel mean the model expects inputs normalised with")->delimiter(',');
  sub->add_option("--std", f.std, "Per-channel std the model expects inputs normalised with")->delimiter(',');
  sub->add_option("--class-names", f.class_names, "Class names, comma-separated")->delimiter(',');
  sub->add_option("--key-file", f.key_file,
                  "Key file of an encrypted model (aegis encrypt); or set AEGIS_KEY_FILE / AEGIS_KEY");
  sub->add_option("--api-key-file", f.api_key_file,
                  "API key of a served model (--model http[s]://HOST:PORT/v2/models/NAME); or set AEGIS_API_KEY");
  sub->add_option("--ca-file", f.ca_file,
                  "CA certificate (PEM) that signed an https gateway's certificate (default: the system's CAs)");
}

CLI::App* subcommand_group(CLI::App& app, const std::string& name, const std::string& description) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  CLI::App* group = app.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

void add_positional_data(CLI::App* sub, DataFlags& f) {
  sub->add_option("DATA", f.data,
                  "Data (same as --data): 'fashion-mnist', an IDX directory or file, a .csv, or an .npy");
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  AEGIS_CHECK(in.good(), NotFound, "cannot read " << path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, path << ": not JSON: " << e.what());
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream out(path);
  AEGIS_CHECK(out.good(), Io, "cannot write " << path);
  out << j.dump(2) << "\n";
  AEGIS_CHECK(out.good(), Io, "error writing " << path);
}

std::string class_label(const ModelMeta& meta, const Dataset& data, int64_t c) {
  if (!meta.class_names.empty() || c >= int64_t(data.class_names.size())) return meta.class_name(c);
  return data.class_names[size_t(c)];
}

}  // namespace aegis::cli
