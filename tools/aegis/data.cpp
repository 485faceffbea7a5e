// aegis data diff | register | log | verify: dataset fingerprints, per-sample
// diffs and the hash-chained provenance ledger.

#include <fmt/format.h>

#include <iostream>

#include "aegis/core/error.h"
#include "aegis/integrity/data_diff.h"
#include "aegis/integrity/data_ledger.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct DataCmdFlags {
  OutputFlags out;
  DataFlags data;
  std::string a, b, labels_a, labels_b;
  std::string ledger, name, source, transformation, by, expect_head;
  int64_t parent_version = 0;
  size_t show = 20;

  std::string ledger_path() const {
    if (!ledger.empty()) return ledger;
    const char* env = std::getenv("AEGIS_LEDGER");
    return env && *env ? env : "provenance.db";
  }
};

std::string indices(const std::vector<int64_t>& v, size_t max) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() > max) s += fmt::format(", ... ({} more)", v.size() - max);
  return s;
}

void print_entry(const LedgerEntry& e) {
  std::cout << fmt::format("#{:<4} {} v{}  {}  by {}  {} samples  fp {}\n", e.seq, e.name, e.version, e.at, e.who,
                           e.samples, e.fingerprint.substr(0, 16));
  if (!e.source.empty()) std::cout << fmt::format("       source {}\n", e.source);
  if (e.parent_version > 0) std::cout << fmt::format("       parent v{}\n", e.parent_version);
  if (!e.transformation.empty()) std::cout << fmt::format("       transformation: {}\n", e.transformation);
}

}  // namespace

void add_data_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<DataCmdFlags>();
  auto* data =
      app.add_subcommand("data", "Dataset integrity: diff two versions, provenance ledger (register, log, verify)");
  data->require_subcommand(1);

  auto* diff = data->add_subcommand("diff", "Which samples differ between two datasets (per-sample Merkle leaves)");
  add_output_flags(diff, f->out);
  diff->add_option("a", f->a, "First dataset (as --data takes it)")->required();
  diff->add_option("b", f->b, "Second dataset")->required();
  diff->add_option("--split", f->data.split, "Split of IDX collections (default train)");
  diff->add_option("--labels-a", f->labels_a, "Labels file of the first dataset (.npy / IDX images)");
  diff->add_option("--labels-b", f->labels_b, "Labels file of the second dataset");
  diff->add_option("--show", f->show, "Indices to print per list")->default_val(20);
  diff->callback([f, &ctx] {
    f->out.apply();
    std::string split = f->data.split.empty() ? "train" : f->data.split;
    Dataset a = load_dataset(DataSpec(f->a).split(split).labels(f->labels_a));
    Dataset b = load_dataset(DataSpec(f->b).split(split).labels(f->labels_b));
    DatasetDiff d = diff_datasets(a, b);
    if (!d.identical()) ctx.exit_code = 1;
    emit(f->out, d.to_json(), [&] {
      std::cout << fmt::format("a            {} samples, fingerprint {}\n", d.size_a, d.fingerprint_a);
      std::cout << fmt::format("b            {} samples, fingerprint {}\n", d.size_b, d.fingerprint_b);
      if (d.identical()) {
        std::cout << "identical\n";
        return;
      }
      std::cout << fmt::format("changed      {} [{}]\n", d.changed.size(), indices(d.changed, f->show));
      std::cout << fmt::format("label only   {} [{}]\n", d.label_changed.size(), indices(d.label_changed, f->show));
      std::cout << fmt::format("moved        {} [{}]\n", d.moved.size(), indices(d.moved, f->show));
      std::cout << fmt::format("added        {}\nremoved      {}\n", d.added, d.removed);
    });
  });

  auto* reg = data->add_subcommand("register", "Record a dataset version in the provenance ledger");
  add_output_flags(reg, f->out);
  add_data_flags(reg, f->data, "train");
  reg->add_option("name", f->name, "Dataset name")->required();
  reg->add_option("--ledger", f->ledger, "Ledger file (default: $AEGIS_LEDGER or ./provenance.db)");
  reg->add_option("--source", f->source, "Where the data came from (default: --data)");
  reg->add_option("--transformation", f->transformation, "What produced this version from its parent");
  reg->add_option("--parent-version", f->parent_version, "Parent version (default: the previous one)");
  reg->add_option("--by", f->by, "Who registers it (default: $USER)");
  reg->callback([f] {
    f->out.apply();
    Dataset ds = load_dataset(f->data.spec("train"));
    DataLedger ledger(f->ledger_path());
    LedgerEntry e = ledger.record(f->name, DataRecord(ds.fingerprint())
                                               .source(f->source.empty() ? ds.source : f->source)
                                               .samples(ds.size())
                                               .transformation(f->transformation)
                                               .parent_version(f->parent_version)
                                               .who(f->by));
    emit(f->out, e.to_json(), [&] { print_entry(e); });
  });

  auto* log = data->add_subcommand("log", "The ledger's entries, oldest first");
  add_output_flags(log, f->out);
  log->add_option("name", f->name, "Dataset name (default: all)");
  log->add_option("--ledger", f->ledger, "Ledger file (default: $AEGIS_LEDGER or ./provenance.db)");
  log->callback([f] {
    f->out.apply();
    DataLedger ledger(f->ledger_path());
    auto entries = ledger.log(f->name);
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : entries) j.push_back(e.to_json());
    emit(f->out, j, [&] {
      if (entries.empty()) std::cout << "ledger is empty\n";
      for (const auto& e : entries) print_entry(e);
    });
  });

  auto* verify = data->add_subcommand(
      "verify", "Check the whole hash chain; with NAME and --data also that the data matches its latest entry");
  add_output_flags(verify, f->out);
  add_data_flags(verify, f->data, "train");
  verify->add_option("name", f->name, "Dataset whose latest registered fingerprint --data must match");
  verify->add_option("--ledger", f->ledger, "Ledger file (default: $AEGIS_LEDGER or ./provenance.db)");
  verify->add_option("--expect-head", f->expect_head, "Head hash recorded elsewhere (detects dropped entries)");
  verify->callback([f, verify, &ctx] {
    f->out.apply();
    DataLedger ledger(f->ledger_path());
    LedgerVerification v = ledger.verify(f->expect_head);
    nlohmann::json j = v.to_json();
    std::string data_line;
    if (v.ok && !f->name.empty()) {
      AEGIS_CHECK(verify->get_option("--data")->count() > 0, InvalidArgument,
                  "give --data to check against " << f->name);
      LedgerEntry e = ledger.latest(f->name);
      std::string fp = load_dataset(f->data.spec("train")).fingerprint();
      j["data"] = {{"name", f->name}, {"version", e.version}, {"fingerprint", fp}, {"matches", fp == e.fingerprint}};
      if (fp != e.fingerprint) {
        v.ok = false;
        j["ok"] = false;
        j["reason"] = fmt::format("data fingerprint {} differs from {} v{} ({})", fp.substr(0, 16), f->name, e.version,
                                  e.fingerprint.substr(0, 16));
      }
      data_line = fmt::format("data         matches {} v{}\n", f->name, e.version);
    }
    if (!j["ok"].get<bool>()) ctx.exit_code = 1;
    emit(f->out, j, [&] {
      if (j["ok"].get<bool>())
        std::cout << fmt::format("ledger       {} entries, chain intact, head {}\n{}", v.entries, v.head, data_line);
      else
        std::cout << "BROKEN       " << j["reason"].get<std::string>() << "\n";
    });
  });
}

}  // namespace aegis::cli
