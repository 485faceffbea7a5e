// aegis keygen | sign | verify: model signatures in the OpenSSF model-signing
// v1 format (Sigstore bundle, DSSE, in-toto), ECDSA keys through OpenSSL.

#include <fmt/format.h>

#include <iostream>

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
  std::string model, key, signature, name;
  std::vector<std::string> ignore;
};

struct VerifyFlags {
  OutputFlags out;
  std::string model, pub, signature;
  std::vector<std::string> ignore;
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
    sub->callback([f] {
      f->out.apply();
      SignOptions o(f->key);
      o.signature_path(f->signature).model_name(f->name).manifest(ManifestOptions().ignore_paths(f->ignore));
      SignResult r = sign_model(f->model, o);
      emit(f->out, r.to_json(), [&] {
        std::cout << fmt::format("signed       {} ({} file{})\n", r.statement.model_name, r.statement.resources.size(),
                                 r.statement.resources.size() == 1 ? "" : "s");
        std::cout << fmt::format("digest       sha256:{}\n", r.statement.subject_digest);
        std::cout << fmt::format("signature    {}\n", r.signature_path);
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
    sub->callback([f, &ctx] {
      f->out.apply();
      VerifyOptions o(f->pub);
      o.signature_path(f->signature).manifest(ManifestOptions().ignore_paths(f->ignore));
      VerifyResult r = verify_model(f->model, o);
      if (!r.ok) ctx.exit_code = 1;
      emit(f->out, r.to_json(), [&] {
        if (r.ok)
          std::cout << fmt::format("verified     {} ({} file{}, sha256:{})\n", r.model_name, r.files,
                                   r.files == 1 ? "" : "s", r.subject_digest);
        else
          std::cout << "REFUSED      " << r.reason << "\n";
      });
    });
  }
}

}  // namespace aegis::cli
