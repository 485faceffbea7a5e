// aegis poison: plant poison in a training set (label flipping, BadNets,
// clean-label backdoor) and write the poisoned set plus a record of what was
// planted; `aegis poison evaluate` measures a model trained on it.

#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "aegis/attacks/poisoning/badnets.h"
#include "aegis/attacks/poisoning/clean_label.h"
#include "aegis/attacks/poisoning/label_flip.h"
#include "aegis/attacks/poisoning/poison_metrics.h"
#include "aegis/core/error.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct TriggerFlags {
  std::string kind = "patch";
  int64_t size = 3;
  std::string position = "bottom-right";
  std::string pattern = "checker";
  double alpha = 0.1;
  uint64_t seed = 0;
  Trigger build(const ScriptClassifier* model) const {
    Trigger t = kind == "blend" ? Trigger::blend(alpha, pattern, seed) : Trigger::patch(size, position, pattern);
    t.seed = seed;
    if (model) {
      t.clip_min = model->meta().clip_min;
      t.clip_max = model->meta().clip_max;
    }
    return t;
  }
};

void add_trigger_flags(CLI::App* sub, TriggerFlags& f) {
  sub->add_option("--trigger", f.kind,
                  "Trigger kind: patch (pasted square) or blend (full-image "
                  "pattern mixed in)")
      ->check(CLI::IsMember({"patch", "blend"}))
      ->capture_default_str();
  sub->add_option("--patch-size", f.size, "Patch side in pixels")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--position", f.position, "Patch corner: bottom-right, bottom-left, top-right, top-left")
      ->check(CLI::IsMember({"bottom-right", "bottom-left", "top-right", "top-left"}))
      ->capture_default_str();
  sub->add_option("--pattern", f.pattern, "Trigger pattern: checker, white, black, random")
      ->check(CLI::IsMember({"checker", "white", "black", "random"}))
      ->capture_default_str();
  sub->add_option("--alpha", f.alpha, "Blend weight for --trigger blend")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--trigger-seed", f.seed, "Seed of the random pattern")->capture_default_str();
}

struct PoisonFlags {
  OutputFlags out;
  DataFlags data;
  std::string out_dir = "poisoned";
  double rate = 0.05;
  int64_t source = -1, target = -1;
  TriggerFlags trigger;
  ModelFlags surrogate;
  double eps = 16.0 / 255.0;
  int64_t steps = 10;
};

void finish(const PoisonFlags& f, const PoisonResult& r) {
  r.save(f.out_dir);
  nlohmann::json j = r.to_json();
  j.erase("poisoned");
  j["out_dir"] = f.out_dir;
  emit(f.out, j, [&] {
    std::cout << fmt::format("{}: poisoned {} of {} samples", r.attack, r.indices.size(), r.poisoned.size());
    if (r.target_class) std::cout << fmt::format(" (target class {})", *r.target_class);
    std::cout << fmt::format("\nwrote {0}/x.npy, {0}/y.npy and the record {0}/poison.json\n", f.out_dir);
  });
}

void add_label_flip(CLI::App* group) {
  auto f = std::make_shared<PoisonFlags>();
  auto* sub = group->add_subcommand("label-flip", "Flip labels: at random, or class A -> B (--source/--target)");
  add_output_flags(sub, f->out);
  add_data_flags(sub, f->data, "train");
  sub->add_option("-o,--out-dir", f->out_dir, "Directory for x.npy, y.npy and poison.json")->capture_default_str();
  sub->add_option("--rate", f->rate,
                  "Fraction flipped: of all samples, or of the source class "
                  "when targeted")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--source", f->source, "Targeted: class whose samples are flipped");
  sub->add_option("--target", f->target, "Targeted: their new label");
  sub->callback([f] {
    f->out.apply();
    AEGIS_CHECK((f->source >= 0) == (f->target >= 0), InvalidArgument, "--source and --target go together");
    LabelFlipOptions o(f->rate);
    o.seed(f->out.seed);
    if (f->source >= 0) o.source(f->source).target(f->target);
    finish(*f, label_flip(load_dataset(f->data.spec("train")), o));
  });
}

void add_badnets(CLI::App* group) {
  auto f = std::make_shared<PoisonFlags>();
  auto* sub = group->add_subcommand("badnets",
                                    "BadNets backdoor: stamp a trigger on a fraction of samples, "
                                    "relabel to the target");
  add_output_flags(sub, f->out);
  add_data_flags(sub, f->data, "train");
  add_trigger_flags(sub, f->trigger);
  sub->add_option("-o,--out-dir", f->out_dir, "Directory for x.npy, y.npy and poison.json")->capture_default_str();
  sub->add_option("--rate,--fraction", f->rate, "Fraction of the training set poisoned")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--target", f->target, "Target class of the backdoor")->required();
  sub->callback([f] {
    f->out.apply();
    BadNetsOptions o(f->target);
    o.fraction(f->rate).trigger(f->trigger.build(nullptr)).seed(f->out.seed);
    finish(*f, badnets(load_dataset(f->data.spec("train")), o));
  });
}

void add_clean_label(CLI::App* group) {
  auto f = std::make_shared<PoisonFlags>();
  f->rate = 0.5;
  auto* sub = group->add_subcommand("clean-label",
                                    "Clean-label backdoor (Turner et al.): perturb target-class samples "
                                    "adversarially, add the trigger, keep labels");
  add_output_flags(sub, f->out);
  add_data_flags(sub, f->data, "train");
  add_trigger_flags(sub, f->trigger);
  add_model_flags(sub, f->surrogate, /*required=*/true);
  sub->add_option("-o,--out-dir", f->out_dir, "Directory for x.npy, y.npy and poison.json")->capture_default_str();
  sub->add_option("--rate,--fraction", f->rate, "Fraction of the target class poisoned")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--target", f->target, "Target class (its samples are poisoned)")->required();
  sub->add_option("--eps", f->eps, "L-inf budget of the adversarial perturbation (0 = trigger only)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--steps", f->steps, "PGD steps")->check(CLI::PositiveNumber)->capture_default_str();
  sub->description(sub->get_description() + ". " + 
      "--model is the attacker's surrogate, a model trained on clean "
      "data of the same kind.");
  sub->callback([f] {
    f->out.apply();
    auto model = f->surrogate.load();
    CleanLabelOptions o(f->target);
    o.fraction(f->rate).eps(f->eps).steps(f->steps).trigger(f->trigger.build(model.get())).seed(f->out.seed);
    finish(*f, clean_label(load_dataset(f->data.spec("train")), *model, o));
  });
}

struct EvalFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string record;
};

void add_evaluate(CLI::App* group) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = group->add_subcommand("evaluate",
                                    "Damage done to a model trained on poisoned data: clean "
                                    "accuracy, attack success rate");
  add_output_flags(sub, f->out);
  add_data_flags(sub, f->data, "test");
  add_model_flags(sub, f->model, true);
  sub->add_option("--record", f->record, "poison.json written by aegis poison")->required()->check(CLI::ExistingFile);
  sub->callback([f] {
    f->out.apply();
    nlohmann::json rec = read_json_file(f->record);
    auto model = f->model.load();
    Dataset test = load_dataset(f->data.spec("test"));
    PoisonMetricsOptions o;
    if (rec.contains("trigger") && rec["trigger"].is_object()) {
      auto [t, target] = trigger_from_record(rec);
      o.trigger(t, target);
    } else if (rec.contains("parameters") && rec["parameters"].contains("source_class")) {
      o.flip(rec["parameters"]["source_class"].get<int64_t>(), rec["parameters"]["target_class"].get<int64_t>());
    }
    PoisonMetrics m = measure_poisoning(*model, test, o);
    nlohmann::json j = m.to_json();
    j["record"] = f->record;
    j["attack"] = rec.value("attack", "");
    emit(f->out, j, [&] {
      std::cout << fmt::format("clean accuracy {:.4f} on {} samples\n", m.clean_accuracy, m.samples);
      if (m.attack_success_rate >= 0)
        std::cout << fmt::format(
            "attack success rate {:.4f} ({} triggered "
            "samples of other classes)\n",
            m.attack_success_rate, m.triggered_samples);
      if (m.source_to_target_rate >= 0)
        std::cout << fmt::format("source class predicted as target: {:.4f} of {} samples\n", m.source_to_target_rate,
                                 m.source_samples);
    });
  });
}

}  // namespace

void add_poison_command(CLI::App& app, Context&) {
  auto* group = subcommand_group(app, "poison",
                                 "Poison a training set (label flipping, BadNets, "
                                 "clean-label) or evaluate the damage");
  add_label_flip(group);
  add_badnets(group);
  add_clean_label(group);
  add_evaluate(group);
}

}  // namespace aegis::cli
