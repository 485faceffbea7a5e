#include "aegis/serve/rate_limit.h"

#include <gtest/gtest.h>

#include <cmath>

namespace aegis::serve {
namespace {

TEST(GCRA, AdmitsBurstThenExactlyTheRate) {
  InProcessRateLimitStore store;
  const RateLimit limit{10.0, 5.0};  // 10/s, bursts of 5
  const double t0 = 1000.0;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(store.acquire("k", limit, 1, t0).allowed) << i;
  RateDecision d = store.acquire("k", limit, 1, t0);
  EXPECT_FALSE(d.allowed);
  EXPECT_NEAR(d.retry_after_s, 0.1, 1e-9);  // one emission interval
  EXPECT_FALSE(store.acquire("k", limit, 1, t0 + 0.099).allowed);
  EXPECT_TRUE(store.acquire("k", limit, 1, t0 + 0.1).allowed);
  // Over a long run the admitted count is rate * time + burst.
  int admitted = 0;
  // Admits at 0.2 s, 0.3 s, ..., 10.1 s (the loop ends between two admissions).
  for (int ms = 101; ms <= 10150; ++ms) admitted += store.acquire("k", limit, 1, t0 + ms / 1000.0).allowed;
  EXPECT_EQ(admitted, 100);
}

TEST(GCRA, RefusalConsumesNothingAndKeysAreIndependent) {
  InProcessRateLimitStore store;
  const RateLimit limit{1.0, 2.0};
  EXPECT_TRUE(store.acquire("a", limit, 2, 0).allowed);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(store.acquire("a", limit, 1, 0).allowed);
  EXPECT_TRUE(store.acquire("a", limit, 1, 1.0).allowed);  // refusals did not push it further
  EXPECT_TRUE(store.acquire("b", limit, 2, 0).allowed);
}

TEST(GCRA, CostAboveBurstNeverFitsAndUnlimitedAlwaysDoes) {
  InProcessRateLimitStore store;
  RateDecision d = store.acquire("k", RateLimit{100.0, 8.0}, 9, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_s));
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(store.acquire("k", RateLimit{}, 1e6, 0).allowed);
}

TEST(DailyQuota, CountsPerDayAndResetsAtMidnight) {
  InProcessRateLimitStore store;
  const double t = 86400.0 * 20000 + 86000;  // 400 s before a UTC midnight
  EXPECT_EQ(seconds_to_next_utc_day(t), 400.0);
  EXPECT_TRUE(store.add_daily("k", utc_day(t), 60, 100));
  EXPECT_FALSE(store.add_daily("k", utc_day(t), 41, 100));
  EXPECT_TRUE(store.add_daily("k", utc_day(t), 40, 100));
  EXPECT_EQ(store.daily_count("k", utc_day(t)), 100);
  EXPECT_TRUE(store.add_daily("k", utc_day(t + 400), 100, 100));
  EXPECT_EQ(store.daily_count("k", utc_day(t)), 0);
}

}  // namespace
}  // namespace aegis::serve
