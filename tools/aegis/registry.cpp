// aegis registry add|list|show|promote|rollback|history|gc|checkout: the
// versioned model registry (content-addressed blobs + SQLite).

#include "aegis/integrity/registry.h"

#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/integrity/model_signing.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct RegistryFlags {
  OutputFlags out;
  std::string root;
  std::string name, model, signature, parent, fingerprint, recipe, audit, by, reason, stage = "production", dir, pub;
  int64_t version = 0, parent_version = 0;
  bool dry_run = false;

  std::string resolved_root() const {
    if (!root.empty()) return root;
    const char* env = std::getenv("AEGIS_REGISTRY");
    return env && *env ? env : "registry";
  }
  /// --by, else the current identity, with a note saying where the name came from.
  ChangeInfo change() const {
    if (!by.empty()) return ChangeInfo(by, reason);
    Identity id = current_identity();
    if (!out.json) log_info("recording the change as '" + id.name + "' (from " + id.source + "; --by to set)");
    return ChangeInfo(id.name, reason);
  }
};

nlohmann::json read_json(const std::string& path) {
  if (path.empty()) return nullptr;
  std::ifstream in(path);
  AEGIS_CHECK(in.good(), NotFound, "file not found: " << path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  AEGIS_CHECK(!j.is_discarded(), InvalidArgument, path << " is not valid JSON");
  return j;
}

void print_version(const ModelVersion& v) {
  std::cout << fmt::format("{}:{}  sha256:{}  {} bytes{}\n", v.name, v.version, v.sha256, v.size,
                           v.stages.empty() ? "" : fmt::format("  [{}]", fmt::join(v.stages, ", ")));
  std::cout << fmt::format("  added     {} by {}{}\n", v.created_at, v.created_by,
                           v.reason.empty() ? "" : " (" + v.reason + ")");
  std::cout << fmt::format("  file      {}{}\n", v.filename,
                           v.signature_sha256.empty() ? "  (unsigned)" : "  (signed)");
  if (!v.parent.empty()) std::cout << fmt::format("  parent    {}\n", v.parent);
  if (!v.data_fingerprint.empty()) std::cout << fmt::format("  data      {}\n", v.data_fingerprint);
  if (!v.recipe.is_null()) std::cout << fmt::format("  recipe    {}\n", v.recipe.dump());
  if (!v.audit.is_null()) std::cout << fmt::format("  audit     {}\n", v.audit.dump());
}

}  // namespace

void add_registry_command(CLI::App& app, Context&) {
  auto f = std::make_shared<RegistryFlags>();
  auto* reg = app.add_subcommand("registry",
                                 "Versioned model registry: add, list, show, promote, rollback, history, gc, checkout");
  reg->require_subcommand(1);
  reg->add_option("--root", f->root, "Registry directory (default: $AEGIS_REGISTRY or ./registry)");
  auto common = [&](CLI::App* sub) {
    add_output_flags(sub, f->out);
    sub->add_option(
        "--by", f->by,
        "Who makes the change (default: $AEGIS_USER, $GIT_AUTHOR_NAME, git's user.name, the account's name)");
    sub->add_option("--reason", f->reason, "Why (recorded in the history)");
  };

  auto* add = reg->add_subcommand("add", "Store a model file as a new immutable version");
  common(add);
  add->add_option("name", f->name, "Model name")->required();
  add->add_option("model", f->model, "Model file")->required();
  add->add_option("--signature", f->signature, "Its model-signing bundle (default: MODEL.sig when present)");
  add->add_option("--parent-version", f->parent_version, "Lineage: the version of this model it derives from");
  add->add_option("--parent", f->parent, "Lineage: a parent in another model, as name:version");
  add->add_option("--data-fingerprint", f->fingerprint,
                  "Training data fingerprint (default: from the model's metadata)");
  add->add_option("--recipe", f->recipe, "Training recipe JSON file (default: from the model's metadata)");
  add->add_option("--audit", f->audit, "Audit report JSON file to attach");
  add->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    AddOptions o;
    std::string sig =
        f->signature.empty() && std::filesystem::exists(f->model + ".sig") ? f->model + ".sig" : f->signature;
    o.signature(sig).parent(f->parent).data_fingerprint(f->fingerprint).change(f->change());
    if (f->parent_version > 0) o.parent_version(f->parent_version);
    if (!f->recipe.empty()) o.recipe(read_json(f->recipe));
    if (!f->audit.empty()) o.audit(read_json(f->audit));
    ModelVersion v = r.add(f->name, f->model, o);
    emit(f->out, v.to_json(), [&] { print_version(v); });
  });

  auto* list = reg->add_subcommand("list", "Every model's latest version and stages");
  add_output_flags(list, f->out);
  list->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    auto all = r.list();
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : all) j.push_back(v.to_json());
    emit(f->out, j, [&] {
      if (all.empty()) std::cout << "registry is empty\n";
      for (const auto& v : all) {
        std::string stages;
        for (const char* s : {"production", "staging"}) try {
            stages += fmt::format("  {}={}", s, r.stage(v.name, s).version);
          } catch (const Error&) {
          }
        std::cout << fmt::format("{:<24} latest {}{}\n", v.name, v.version, stages);
      }
    });
  });

  auto* show = reg->add_subcommand("show", "One version with its lineage (default: the latest)");
  add_output_flags(show, f->out);
  show->add_option("name", f->name, "Model name")->required();
  show->add_option("--version", f->version, "Version number");
  auto* show_stage = show->add_option("--stage", f->stage, "Show the version a stage points at");
  show->callback([f, show_stage] {
    f->out.apply();
    Registry r(f->resolved_root());
    ModelVersion v = show_stage->count() ? r.stage(f->name, f->stage) : r.show(f->name, f->version);
    emit(f->out, v.to_json(), [&] { print_version(v); });
  });

  auto* promote = reg->add_subcommand("promote", "Point a stage (default production) at a version, atomically");
  common(promote);
  promote->add_option("name", f->name, "Model name")->required();
  promote->add_option("version", f->version, "Version number")->required();
  promote->add_option("--stage", f->stage, "Stage (default production)");
  promote->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    r.promote(f->name, f->version, f->stage, f->change());
    ModelVersion v = r.stage(f->name, f->stage);
    emit(f->out, v.to_json(), [&] { std::cout << fmt::format("{} {} -> version {}\n", f->name, f->stage, v.version); });
  });

  auto* rollback = reg->add_subcommand("rollback", "Point a stage back at the version promoted before the current one");
  common(rollback);
  rollback->add_option("name", f->name, "Model name")->required();
  rollback->add_option("--stage", f->stage, "Stage (default production)");
  rollback->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    ModelVersion v = r.rollback(f->name, f->stage, f->change());
    emit(f->out, v.to_json(),
         [&] { std::cout << fmt::format("{} {} rolled back -> version {}\n", f->name, f->stage, v.version); });
  });

  auto* history = reg->add_subcommand("history", "Every change (who, why, when), newest first");
  add_output_flags(history, f->out);
  history->add_option("name", f->name, "Model name (default: all)");
  history->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    auto events = r.history(f->name);
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : events) j.push_back(e.to_json());
    emit(f->out, j, [&] {
      for (const auto& e : events) {
        std::string what = e.action == "add"
                               ? fmt::format("added version {}", e.version)
                               : fmt::format("{} {}: {} -> {}", e.action, e.stage,
                                             e.from_version ? std::to_string(e.from_version) : "-", e.version);
        std::cout << fmt::format("{}  {:<10} {:<16} {}{}\n", e.at, e.who, e.name, what,
                                 e.reason.empty() ? "" : "  (" + e.reason + ")");
      }
    });
  });

  auto* gc = reg->add_subcommand("gc", "Remove blobs no version references and temporary files left by crashes");
  add_output_flags(gc, f->out);
  gc->add_flag("--dry-run", f->dry_run, "Only list what would be removed");
  gc->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    GcResult g = r.gc(f->dry_run);
    emit(f->out, g.to_json(), [&] {
      std::cout << fmt::format("{} {} file{} ({} bytes)\n", f->dry_run ? "would remove" : "removed", g.removed.size(),
                               g.removed.size() == 1 ? "" : "s", g.bytes);
    });
  });

  auto* checkout = reg->add_subcommand(
      "checkout", "Copy a stage's (default production) model and signature out of the registry; --pub verifies it");
  add_output_flags(checkout, f->out);
  checkout->add_option("name", f->name, "Model name")->required();
  checkout->add_option("--stage", f->stage, "Stage (default production)");
  checkout->add_option("--out,-o", f->dir, "Directory to write into")->required();
  checkout->add_option("--pub", f->pub, "Public key: refuse (exit 1) unless the signature verifies");
  checkout->callback([f] {
    f->out.apply();
    Registry r(f->resolved_root());
    ModelVersion v = r.stage(f->name, f->stage);
    std::string path = r.checkout(v, f->dir);
    nlohmann::json j = {{"path", path}, {"version", v.to_json()}};
    if (!f->pub.empty()) j["verify"] = require_verified_model(path, VerifyOptions(f->pub)).to_json();
    emit(f->out, j, [&] {
      std::cout << fmt::format("{}:{} ({}) -> {}{}\n", v.name, v.version, f->stage, path,
                               f->pub.empty() ? "" : "  signature verified");
    });
  });
}

}  // namespace aegis::cli
