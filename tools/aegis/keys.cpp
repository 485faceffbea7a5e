// aegis keys: create, list and revoke the gateway's API keys. A new key is
// printed once; the keys file holds only its SHA-256.

#include <fmt/format.h>

#include <iostream>

#include "aegis/serve/api_keys.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct KeysFlags {
  OutputFlags out;
  std::string file = "keys.json";
  std::string role = "predict";
  std::vector<std::string> models = {"*"};
  std::string name;
  std::string id;
};

}  // namespace

void add_keys_command(CLI::App& app, Context&) {
  auto f = std::make_shared<KeysFlags>();
  auto* keys = app.add_subcommand("keys", "Manage the gateway's API keys (create, list, revoke)");
  keys->require_subcommand(1);
  auto common = [&](CLI::App* sub) {
    add_output_flags(sub, f->out);
    sub->add_option("--keys", f->file, "API keys file")->capture_default_str();
  };
  auto* create = keys->add_subcommand("create", "Create a key (printed once, stored as a hash)");
  common(create);
  create->add_option("--role", f->role, "predict, explain (the explanation endpoint), admin or auditor")
      ->check(CLI::IsMember({"predict", "explain", "admin", "auditor"}))
      ->capture_default_str();
  create->add_option("--models", f->models, "Models the key may use (comma-separated; * = all)")
      ->delimiter(',')
      ->capture_default_str();
  create->add_option("--name", f->name, "A label for people");
  create->callback([f] {
    serve::KeyStore store(f->file);
    auto k = store.create(serve::KeyOptions(serve::parse_role(f->role)).models(f->models).name(f->name));
    nlohmann::json j = k.record.to_json();
    j["key"] = k.key;
    emit(f->out, j, [&] {
      std::cout << k.key << "\n";
      std::cerr << fmt::format("created {} key {} for models {} (shown once; {} holds only its hash)\n", f->role,
                               k.record.id, fmt::join(f->models, ","), f->file);
    });
  });
  auto* list = keys->add_subcommand("list", "List keys (ids, roles, models; never secrets)");
  common(list);
  list->callback([f] {
    serve::KeyStore store(f->file);
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : store.list()) j.push_back(r.to_json());
    emit(f->out, j, [&] {
      for (const auto& r : store.list())
        std::cout << fmt::format("{}  {:<8} {:<20} {}{}\n", r.id, serve::role_name(r.role),
                                 fmt::format("{}", fmt::join(r.models, ",")), r.name, r.revoked ? "  (revoked)" : "");
    });
  });
  auto* revoke = keys->add_subcommand("revoke", "Revoke a key by id (a running gateway refuses it from its next request)");
  common(revoke);
  revoke->add_option("id", f->id, "Key id")->required();
  revoke->callback([f] {
    serve::KeyStore store(f->file);
    store.revoke(f->id);
    emit(f->out, {{"revoked", f->id}}, [&] { std::cout << "revoked " << f->id << "\n"; });
  });
  auto* set_role = keys->add_subcommand("set-role", "Give a key another role (a running gateway applies it from its next request)");
  common(set_role);
  set_role->add_option("id", f->id, "Key id")->required();
  set_role->add_option("role", f->role, "predict, explain, admin or auditor")
      ->required()
      ->check(CLI::IsMember({"predict", "explain", "admin", "auditor"}));
  set_role->callback([f] {
    serve::KeyStore store(f->file);
    store.set_role(f->id, serve::parse_role(f->role));
    emit(f->out, {{"id", f->id}, {"role", f->role}}, [&] { std::cout << f->id << " is now " << f->role << "\n"; });
  });
}

}  // namespace aegis::cli
