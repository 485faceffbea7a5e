// aegis encrypt | decrypt: encryption at rest (libsodium secretstream, chunked).
// Keys come from a key file or an environment variable, never from the
// command line.

#include <fmt/format.h>

#include <iostream>

#include "aegis/core/error.h"
#include "aegis/integrity/encryption.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct CryptFlags {
  OutputFlags out;
  std::string in, output, key_file, key_env;
  bool new_key = false;
  uint32_t chunk_kib = 1024;

  EncryptionKey key() const {
    AEGIS_CHECK(key_file.empty() != key_env.empty(), InvalidArgument, "give exactly one of --key-file and --key-env");
    if (!key_env.empty()) return EncryptionKey::from_env(key_env);
    return EncryptionKey::from_file(key_file);
  }
};

void add_key_flags(CLI::App* sub, CryptFlags& f) {
  sub->add_option("--key-file,-k", f.key_file, "Key file (64 hex characters; `--new-key` creates it, mode 0600)");
  sub->add_option("--key-env", f.key_env, "Name of an environment variable holding the key as 64 hex characters");
}

}  // namespace

void add_crypt_commands(CLI::App& app, Context&) {
  {
    auto f = std::make_shared<CryptFlags>();
    auto* sub = app.add_subcommand(
        "encrypt", "Encrypt a model or dataset file (XChaCha20-Poly1305 secretstream, authenticated per chunk)");
    add_output_flags(sub, f->out);
    sub->add_option("input", f->in, "File to encrypt")->required();
    sub->add_option("--out,-o", f->output, "Encrypted output (default: INPUT.enc)");
    add_key_flags(sub, *f);
    sub->add_flag("--new-key", f->new_key, "Create a new random key at --key-file first");
    sub->add_option("--chunk-kib", f->chunk_kib, "Plaintext KiB per chunk (1 .. 65536)")->default_val(1024);
    sub->callback([f] {
      f->out.apply();
      if (f->output.empty()) f->output = f->in + ".enc";
      if (f->new_key) {
        AEGIS_CHECK(!f->key_file.empty(), InvalidArgument, "--new-key needs --key-file to write the key to");
        EncryptionKey::generate().save(f->key_file);
      }
      AEGIS_CHECK(f->chunk_kib >= 1 && f->chunk_kib <= 65536, InvalidArgument, "--chunk-kib must be in [1, 65536]");
      EncryptionKey key = f->key();
      uint64_t chunks = encrypt_file(f->in, f->output, key, EncryptOptions().chunk_size(f->chunk_kib * 1024));
      nlohmann::json j = {{"input", f->in}, {"output", f->output}, {"chunks", chunks}, {"key_id", key.id()}};
      emit(f->out, j, [&] {
        std::cout << fmt::format("encrypted    {} -> {} ({} chunk{}, key {})\n", f->in, f->output, chunks,
                                 chunks == 1 ? "" : "s", key.id());
      });
    });
  }
  {
    auto f = std::make_shared<CryptFlags>();
    auto* sub =
        app.add_subcommand("decrypt", "Decrypt a file made by `aegis encrypt` (refuses tampered or truncated files)");
    add_output_flags(sub, f->out);
    sub->add_option("input", f->in, "Encrypted file")->required();
    sub->add_option("--out,-o", f->output, "Decrypted output")->required();
    add_key_flags(sub, *f);
    sub->callback([f] {
      f->out.apply();
      EncryptionKey key = f->key();
      uint64_t chunks = decrypt_file(f->in, f->output, key);
      nlohmann::json j = {{"input", f->in}, {"output", f->output}, {"chunks", chunks}, {"key_id", key.id()}};
      emit(f->out, j, [&] {
        std::cout << fmt::format("decrypted    {} -> {} ({} chunk{} authenticated)\n", f->in, f->output, chunks,
                                 chunks == 1 ? "" : "s");
      });
    });
  }
}

}  // namespace aegis::cli
