// The Accountant interface: step bookkeeping, the JSON a checkpoint carries,
// the factory, and the noise multiplier search against Opacus's published
// values.

#include "aegis/privacy/accountant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "aegis/core/error.h"

namespace aegis {
namespace {

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "expected an aegis::Error";
  return ErrorKind::Internal;
}

TEST(Accountant, StepsMergeAndMatchTheDirectComputation) {
  RdpAccountant acc;
  EXPECT_EQ(acc.epsilon(1e-5), 0);
  // Opacus's RDP accountant test, one step at a time as a training loop does.
  for (int i = 0; i < 2250; ++i) acc.step(1.5, 0.04);
  ASSERT_EQ(acc.history().size(), 1u);
  EXPECT_EQ(acc.total_steps(), 2250);
  EXPECT_NEAR(acc.epsilon(1e-5), 7.32911117143, 1e-8);  // opacus/tests/accountants_test.py
  acc.step(2.0, 0.04, 10);
  acc.step(2.0, 0.04, 5);
  ASSERT_EQ(acc.history().size(), 2u);
  EXPECT_EQ(acc.history()[1], (DpSegment{2.0, 0.04, 15}));
  EXPECT_GT(acc.epsilon(1e-5), 7.32911117143);
  EXPECT_DOUBLE_EQ(acc.epsilon_and_order(1e-5).epsilon, rdp_epsilon(acc.history(), 1e-5).epsilon);
}

TEST(Accountant, FactoryAndNames) {
  EXPECT_EQ(make_accountant("rdp")->name(), "rdp");
  EXPECT_EQ(make_accountant("prv")->name(), "prv");
  EXPECT_EQ(kind_of([] { make_accountant("gdp"); }), ErrorKind::InvalidArgument);
}

TEST(Accountant, PrvIsTighterThanRdpOnTheSameHistory) {
  auto rdp = make_accountant("rdp");
  auto prv = make_accountant("prv");
  for (Accountant* a : {rdp.get(), prv.get()}) a->step(1.0, 0.02, 400);
  const double e_rdp = rdp->epsilon(1e-5), e_prv = prv->epsilon(1e-5);
  EXPECT_LT(e_prv, e_rdp);
  EXPECT_GT(e_prv, 0.6 * e_rdp);
  const PrvEpsilon b = dynamic_cast<PrvAccountant&>(*prv).epsilon_bounds(1e-5);
  EXPECT_DOUBLE_EQ(b.upper, e_prv);
  EXPECT_LT(b.lower, b.upper);
}

TEST(Accountant, JsonRoundTrip) {
  for (const std::string name : {"rdp", "prv"}) {
    auto acc = make_accountant(name);
    acc->step(1.1, 256 / 60000.0, 100);
    acc->step(0.9, 0.01, 3);
    const nlohmann::json j = acc->to_json();
    EXPECT_EQ(j["accountant"], name);
    ASSERT_EQ(j["history"].size(), 2u);
    // Through text, as a checkpoint file stores it: doubles round-trip exactly.
    auto back = accountant_from_json(nlohmann::json::parse(j.dump()));
    EXPECT_EQ(back->name(), name);
    EXPECT_EQ(back->history(), acc->history());
    EXPECT_EQ(back->epsilon(1e-5), acc->epsilon(1e-5));
    // A resumed run keeps counting.
    back->step(0.9, 0.01, 2);
    EXPECT_EQ(back->history().back().steps, 5);
  }
}

TEST(Accountant, CorruptJsonIsRefused) {
  using nlohmann::json;
  const json good = {{"accountant", "rdp"},
                     {"history", json::array({{{"noise_multiplier", 1.0}, {"sample_rate", 0.1}, {"steps", 3}}})}};
  EXPECT_NO_THROW(accountant_from_json(good));
  for (const json& bad :
       {json::array(), json{{"accountant", "rdp"}}, json{{"accountant", "moments"}, {"history", json::array()}},
        json{{"accountant", 3}, {"history", json::array()}}}) {
    EXPECT_EQ(kind_of([&] { accountant_from_json(bad); }), ErrorKind::CorruptData) << bad.dump();
  }
  for (const char* field : {"noise_multiplier", "sample_rate", "steps"}) {
    json missing = good;
    missing["history"][0].erase(field);
    EXPECT_EQ(kind_of([&] { accountant_from_json(missing); }), ErrorKind::CorruptData) << field;
  }
  for (auto [field, value] : {std::pair<const char*, json>{"noise_multiplier", 0.0},
                              {"noise_multiplier", -1.0},
                              {"sample_rate", 0.0},
                              {"sample_rate", 1.5},
                              {"steps", 0},
                              {"steps", 2.5},
                              {"steps", "7"}}) {
    json bad = good;
    bad["history"][0][field] = value;
    EXPECT_EQ(kind_of([&] { accountant_from_json(bad); }), ErrorKind::CorruptData) << bad.dump();
  }
}

TEST(Accountant, StepRejectsBadArguments) {
  RdpAccountant acc;
  EXPECT_EQ(kind_of([&] { acc.step(0.0, 0.1); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([&] { acc.step(-1.0, 0.1); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([&] { acc.step(1.0, 0.0); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([&] { acc.step(1.0, 1.01); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([&] { acc.step(1.0, 0.1, 0); }), ErrorKind::InvalidArgument);
  EXPECT_NO_THROW(acc.step(1.0, 1.0));  // q = 1: full-batch training
  for (double delta : {0.0, 1.0, -1e-5, 2.0}) {
    EXPECT_EQ(kind_of([&] { acc.epsilon(delta); }), ErrorKind::InvalidArgument) << delta;
  }
  EXPECT_TRUE(acc.history().size() == 1 && acc.total_steps() == 1);
}

TEST(NoiseMultiplier, ReproducesOpacus) {
  // opacus/tests/accountants_test.py: eps 8, delta 1e-5, q 0.04 ->
  // 1.416 (90 epochs = 2250 steps) and 1.3562 (2000 steps), 4 places, with the
  // default epsilon_tolerance 0.01.
  NoiseMultiplier a = find_noise_multiplier(8, 1e-5, 0.04, 2250, "rdp");
  EXPECT_NEAR(a.noise_multiplier, 1.416, 5e-5);
  NoiseMultiplier b = find_noise_multiplier(8, 1e-5, 0.04, 2000, "rdp");
  EXPECT_NEAR(b.noise_multiplier, 1.3562, 5e-5);
}

TEST(NoiseMultiplier, RoundTripsThroughBothAccountants) {
  struct Case {
    const char* accountant;
    double target, delta, q;
    int64_t steps;
    double tolerance;
  };
  for (const Case& c : {Case{"rdp", 3.0, 1e-5, 256 / 60000.0, 14063, 1e-3}, Case{"rdp", 1.0, 1e-6, 0.01, 5000, 1e-4},
                        Case{"prv", 2.0, 1e-5, 0.02, 200, 5e-3}}) {
    NoiseMultiplier n = find_noise_multiplier(c.target, c.delta, c.q, c.steps, c.accountant, c.tolerance);
    auto acc = make_accountant(c.accountant);
    acc->step(n.noise_multiplier, c.q, c.steps);
    const double eps = acc->epsilon(c.delta);
    EXPECT_DOUBLE_EQ(eps, n.epsilon) << c.accountant;
    EXPECT_LE(eps, c.target) << c.accountant;
    EXPECT_GE(eps, c.target - c.tolerance) << c.accountant;
    // It is the smallest such sigma: 1% less noise overspends.
    acc->set_history({{n.noise_multiplier * 0.99, c.q, c.steps}});
    EXPECT_GT(acc->epsilon(c.delta), c.target) << c.accountant;
  }
  // PRV certifies the same budget with less noise than RDP.
  EXPECT_LT(find_noise_multiplier(2.0, 1e-5, 0.02, 200, "prv", 5e-3).noise_multiplier,
            find_noise_multiplier(2.0, 1e-5, 0.02, 200, "rdp", 5e-3).noise_multiplier);
}

TEST(NoiseMultiplier, RefusesBadOrUnreachableTargets) {
  EXPECT_EQ(kind_of([] { find_noise_multiplier(1.0, 1e-5, 0.0, 100); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([] { find_noise_multiplier(1.0, 1e-5, 1.5, 100); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([] { find_noise_multiplier(1.0, 0.0, 0.1, 100); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([] { find_noise_multiplier(1.0, 1.0, 0.1, 100); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([] { find_noise_multiplier(0.0, 1e-5, 0.1, 100); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([] { find_noise_multiplier(1.0, 1e-5, 0.1, 0); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind_of([] { find_noise_multiplier(1.0, 1e-5, 0.1, 100, "moments"); }), ErrorKind::InvalidArgument);
  // At delta 1e-10 the conversion alone costs about 0.37 at order 63, and the
  // (0, delta) route through the KL bound needs sigma around 1e13 for a
  // million full-batch steps: eps 0.05 is out of reach below sigma 1e6.
  try {
    find_noise_multiplier(0.05, 1e-10, 1.0, 1000000, "rdp");
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("out of reach"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aegis
