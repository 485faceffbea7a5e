// aegis keygen | sign | verify: model signatures in the OpenSSF model-signing
// v1 format (Sigstore bundle, DSSE, in-toto), ECDSA keys through OpenSSL.

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "aegis/integrity/attestation.h"
#include "aegis/integrity/model_signing.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct KeygenFlags {
  OutputFlags out;
  std::string path;
};

struct SignFlags {
  OutputFlags out;
  std::string model, key, signature, name, data_fingerprint;
  std::vector<std::string> ignore, attach;
};

// KIND=FILE: a JSON file up to 1 MiB is inlined, anything else attached by hash.
Attachment parse_attachment(const std::string& spec) {
  auto eq = spec.find('=');
  AEGIS_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), InvalidArgument,
              "--attach takes KIND=FILE (e.g. audit-report=audit.json), got " << spec);
  std::string kind = spec.substr(0, eq), path = spec.substr(eq + 1);
  AEGIS_CHECK(std::filesystem::is_regular_file(path), NotFound, "file not found: " << path);
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0 &&
      std::filesystem::file_size(path) <= (1u << 20)) {
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    AEGIS_CHECK(!j.is_discarded(), InvalidArgument, path << " is not valid JSON");
    return Attachment(kind, j);
  }
  return Attachment::of_file(kind, path);
}

/// The DP-SGD privacy record (epsilon, delta, sigma, C, q, steps) of a model
/// file aegis trained with --defense dp-sgd; null for anything else. `sign`
/// attests it, so the claimed budget is bound to the signed digest.
nlohmann::json privacy_record(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) return nullptr;
  try {
    return ScriptClassifier::load(path)->meta().provenance.value("privacy", nlohmann::json());
  } catch (const std::exception&) {  // not a model aegis can read: nothing to attest
    return nullptr;
  }
}

struct VerifyFlags {
  OutputFlags out;
  std::string model, pub, signature;
  std::vector<std::string> ignore;
  bool attestation = false;
};

}  // namespace

void add_signing_commands(CLI::App& app, Context& ctx) {
  {
    auto f = std::make_shared<KeygenFlags>();
    auto* sub =
        app.add_subcommand("keygen", "Create an ECDSA P-256 signing key pair (PEM): KEY (mode 0600) and KEY.pub");
    add_output_flags(sub, f->out);
    sub->add_option("--out,-o", f->path, "Private key path; the public key goes to PATH.pub")->required();
    sub->callback([f] {
      f->out.apply();
      std::string pub = generate_signing_key(f->path);
      nlohmann::json j = {{"private_key", f->path}, {"public_key", pub}, {"hint", public_key_hint(pub)}};
      emit(f->out, j, [&] {
        std::cout << fmt::format("private key  {} (keep secret)\npublic key   {}\nkey hint     {}\n", f->path, pub,
                                 j["hint"].get<std::string>());
      });
    });
  }
  {
    auto f = std::make_shared<SignFlags>();
    auto* sub = app.add_subcommand(
        "sign",
        "Sign a model file or directory (OpenSSF model-signing v1 bundle, verifiable by `model_signing verify key`)");
    add_output_flags(sub, f->out);
    sub->add_option("model", f->model, "Model file or directory")->required();
    sub->add_option("--key,-k", f->key, "Private key (PEM, ECDSA P-256/384/521)")->required();
    sub->add_option("--signature,-s", f->signature, "Signature output (default: DIR/model.sig or FILE.sig)");
    sub->add_option("--name", f->name, "Model name in the statement (default: the file or directory name)");
    sub->add_option("--ignore-paths", f->ignore, "Files or folders of the model directory to leave unsigned");
    sub->add_option("--attach", f->attach,
                    "Also attest KIND=FILE (e.g. training-recipe=recipe.json, audit-report=audit.json), "
                    "bound to the same digest, in DIR/model.att.sig or FILE.att.sig (a model trained with "
                    "--defense dp-sgd has its privacy budget attested as privacy-budget without asking)");
    sub->add_option("--data-fingerprint", f->data_fingerprint, "Also attest the training data's fingerprint");
    sub->callback([f] {
      f->out.apply();
      SignOptions o(f->key);
      o.signature_path(f->signature).model_name(f->name).manifest(ManifestOptions().ignore_paths(f->ignore));
      SignResult r = sign_model(f->model, o);
      nlohmann::json j = r.to_json();
      std::vector<Attachment> attachments;
      for (const auto& a : f->attach) attachments.push_back(parse_attachment(a));
      if (!f->data_fingerprint.empty())
        attachments.emplace_back("data-fingerprint", nlohmann::json{{"fingerprint", f->data_fingerprint}});
      const nlohmann::json privacy = privacy_record(f->model);
      if (!privacy.is_null() && std::none_of(attachments.begin(), attachments.end(),
                                             [](const Attachment& a) { return a.kind == "privacy-budget"; }))
        attachments.emplace_back("privacy-budget", privacy);
      if (!attachments.empty()) {
        SignOptions ao(f->key);
        ao.model_name(f->name).manifest(ManifestOptions().ignore_paths(f->ignore));
        j["attestation"] = attest_model(f->model, attachments, ao).to_json();
      }
      emit(f->out, j, [&] {
        std::cout << fmt::format("signed       {} ({} file{})\n", r.statement.model_name, r.statement.resources.size(),
                                 r.statement.resources.size() == 1 ? "" : "s");
        std::cout << fmt::format("digest       sha256:{}\n", r.statement.subject_digest);
        std::cout << fmt::format("signature    {}\n", r.signature_path);
        if (j.contains("attestation"))
          std::cout << fmt::format("attestation  {} ({} attachment{})\n", j["attestation"]["path"].get<std::string>(),
                                   j["attestation"]["attachments"].size(),
                                   j["attestation"]["attachments"].size() == 1 ? "" : "s");
      });
    });
  }
  {
    auto f = std::make_shared<VerifyFlags>();
    auto* sub = app.add_subcommand(
        "verify", "Verify a model file or directory against its signature and a public key (exit 1 if it fails)");
    add_output_flags(sub, f->out);
    sub->add_option("model", f->model, "Model file or directory")->required();
    sub->add_option("--pub,-p", f->pub, "Public key (PEM)")->required();
    sub->add_option("--signature,-s", f->signature, "Signature (default: DIR/model.sig or FILE.sig)");
    sub->add_option("--ignore-paths", f->ignore,
                    "Extra files or folders to leave out (the signed list always applies)");
    sub->add_flag("--attestation", f->attestation,
                  "Also verify the attestation (DIR/model.att.sig or FILE.att.sig) and show what it attests");
    sub->callback([f, &ctx] {
      f->out.apply();
      VerifyOptions o(f->pub);
      o.signature_path(f->signature).manifest(ManifestOptions().ignore_paths(f->ignore));
      VerifyResult r = verify_model(f->model, o);
      if (!r.ok) ctx.exit_code = 1;
      nlohmann::json j = r.to_json();
      if (r.ok && f->attestation) {
        std::vector<std::string> ignore = f->ignore;
        ignore.insert(ignore.end(), r.ignore_paths.begin(), r.ignore_paths.end());
        VerifyOptions ao(f->pub);
        ao.manifest(ManifestOptions().ignore_paths(ignore));
        j["attestation"] = verify_attestation(f->model, ao).to_json();
      }
      emit(f->out, j, [&] {
        if (r.ok)
          std::cout << fmt::format("verified     {} ({} file{}, sha256:{})\n", r.model_name, r.files,
                                   r.files == 1 ? "" : "s", r.subject_digest);
        else
          std::cout << "REFUSED      " << r.reason << "\n";
        if (j.contains("attestation"))
          for (const auto& a : j["attestation"]["attachments"])
            std::cout << fmt::format("attested     {}: {}\n", a["kind"].get<std::string>(), a["content"].dump());
      });
    });
  }
}

}  // namespace aegis::cli
