#pragma once
// Shared pieces of the CLI: the flags several subcommands take (output mode,
// seed, data, model) parsed into the library's option structs, and output.

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"

namespace aegis::cli {

/// Exit status a subcommand asks for (e.g. a failed verification).
struct Context {
  int exit_code = 0;
};

struct OutputFlags {
  bool json = false;
  bool quiet = false;
  uint64_t seed = 0;
  int threads = 0;
  /// Sets progress mode, threads and the global seed.
  void apply() const;
};
void add_output_flags(CLI::App* sub, OutputFlags& flags);

/// --json prints `j` on stdout; otherwise `human` prints a summary.
void emit(const OutputFlags& flags, const nlohmann::json& j, const std::function<void()>& human);

struct DataFlags {
  std::string data = "fashion-mnist";
  std::string split;
  std::string labels;
  std::string label_column = "label";
  int64_t limit = 0;
  DataSpec spec(const std::string& default_split) const;
};
void add_data_flags(CLI::App* sub, DataFlags& flags, const std::string& default_split);

struct ModelFlags {
  std::string path;
  std::vector<int64_t> input_shape;
  int64_t classes = 0;
  std::vector<double> clip;  // lo, hi
  std::vector<double> mean, std;
  std::vector<std::string> class_names;
  std::string key_file;      // for models encrypted with `aegis encrypt`
  std::string api_key_file;  // for a served model: file holding the API key
  std::string ca_file;       // for a served model over https: the CA that signed its certificate
  /// The model file. With `data`, a model without aegis metadata takes the
  /// data's sample shape (a one-line note says so) instead of failing.
  std::shared_ptr<ScriptClassifier> load(const Dataset* data = nullptr) const;
  /// The model file, or a model served by a gateway when `path` is a URL
  /// `http://host:port/v2/models/NAME`: a RemoteClassifier (scores or labels
  /// only, every query counted and sent with the API key from --api-key-file
  /// or $AEGIS_API_KEY). For subcommands that need no gradients.
  ClassifierPtr load_classifier(const Dataset* data = nullptr) const;
  bool is_remote() const;
  /// For results: {"path", "sha256"} of a model file, {"url"} of a served model.
  nlohmann::json describe() const;
};
void add_model_flags(CLI::App* sub, ModelFlags& flags, bool required = true);

/// The parent subcommand `name` (e.g. "data"), created with `description` and
/// requiring one of its own subcommands when no one has added it yet: lets
/// several files attach children to one group (`aegis data check|scan|...`).
CLI::App* subcommand_group(CLI::App& app, const std::string& name, const std::string& description);

/// Name of class `c` for captions: the model's class names, else the data's, else its number.
std::string class_label(const ModelMeta& meta, const Dataset& data, int64_t c);

/// Adds a positional DATA argument writing to the same place as --data.
void add_positional_data(CLI::App* sub, DataFlags& flags);

/// Reads a JSON file: NotFound when it cannot be read, CorruptData when it is not JSON.
nlohmann::json read_json_file(const std::string& path);

/// Writes `j` to `path` (pretty), creating parent directories.
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace aegis::cli
