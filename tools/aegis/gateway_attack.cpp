// aegis gateway-attack: the adaptive black-box attack through a served
// model's API (serve/gateway_attack.h): how much of the runtime chain
// (detector, output policies, response rules) an attacker who sees only the
// gateway's replies gets past, beside the same search that ignores refusals.

#include <fmt/format.h>

#include <iostream>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/serve/gateway_attack.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct GatewayAttackFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  double eps = 0.1;
  int64_t max_queries = 300;
  bool fixed_step = false;
  bool compare = false;
  std::string result_out;
};

void run(GatewayAttackFlags& f) {
  f.out.apply();
  AEGIS_CHECK(f.model.is_remote(), InvalidArgument,
              "gateway-attack attacks a served model: --model http(s)://host:port/v2/models/NAME");
  Dataset data = load_dataset(f.data.spec("test"));
  auto remote = std::dynamic_pointer_cast<serve::RemoteClassifier>(f.model.load_classifier(&data));
  AEGIS_CHECK(remote != nullptr, Internal, "the served model did not load as a remote classifier");
  check_compatible(remote->meta(), data);
  auto options = [&](bool adaptive) {
    return serve::GatewayAttackOptions(f.eps).max_queries(f.max_queries).adaptive(adaptive).seed(f.out.seed);
  };
  nlohmann::json runs = nlohmann::json::array();
  std::vector<std::pair<std::string, serve::GatewayAttackResult>> results;
  std::vector<bool> modes;
  if (f.compare) modes = {false, true};
  else modes = {!f.fixed_step};
  for (bool adaptive : modes) {
    serve::GatewayAttackResult r = serve::gateway_attack(*remote, data.x, data.y, options(adaptive));
    nlohmann::json j = r.to_json();
    j["step"] = adaptive ? "adaptive" : "fixed";
    j["options"] = options(adaptive).to_json();
    runs.push_back(j);
    results.emplace_back(adaptive ? "adaptive" : "fixed", std::move(r));
  }
  nlohmann::json j = {{"model", f.model.describe()}, {"data", data.source}, {"runs", runs}};
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  emit(f.out, j, [&] {
    std::cout << fmt::format("{} samples of {} through {}, Linf eps {:g}, up to {} queries each\n", data.size(),
                             data.source, f.model.path, f.eps, f.max_queries);
    std::cout << fmt::format("{:<9} {:>9} {:>7} {:>13} {:>9} {:>9} {:>13}  {}\n", "step", "attacked", "evaded",
                             "evasion rate", "queries", "refused", "refusal rate", "key");
    for (const auto& r : runs)
      std::cout << fmt::format("{:<9} {:>9} {:>7} {:>13.3f} {:>9} {:>9} {:>13.3f}  {}\n", r["step"].get<std::string>(),
                               r["attacked"].get<int64_t>(), r["evaded"].get<int64_t>(), r["evasion_rate"].get<double>(), r["queries"].get<int64_t>(),
                               r["refused"].get<int64_t>(), r["refusal_rate"].get<double>(),
                               r["blocked"].get<bool>() ? "cut off: " + r["blocked_reason"].get<std::string>() : "open");
    std::cout << "attacked = answered correctly on the clean input; evaded = of those, answered with a wrong class\n";
  });
}

}  // namespace

void add_gateway_attack_command(CLI::App& app, Context&) {
  auto f = std::make_shared<GatewayAttackFlags>();
  auto* sub = app.add_subcommand("gateway-attack",
                                 "Adaptive black-box attack through a served model's API: how far an attacker who "
                                 "sees only the gateway's replies (refusals included) gets past its detector, output "
                                 "policies and response rules");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--eps", f->eps, "Linf budget")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-queries", f->max_queries, "Requests per sample")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--fixed-step", f->fixed_step, "Keep the step at eps after refusals (the non-adaptive search)");
  sub->add_flag("--compare", f->compare, "Run the fixed-step search, then the adaptive one, on the same samples");
  sub->add_option("--result", f->result_out, "Also write the result as JSON to this file");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
