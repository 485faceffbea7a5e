// The gateway's response state: what the SQLite backend stores comes back
// after a reopen (a restart), ids are never reused, and a file that is not a
// state file is refused rather than overwritten.
#include "aegis/serve/response_state.h"

#include <gtest/gtest.h>

#include <fstream>

#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis::serve {
namespace {

TEST(ResponseState, SqliteKeepsQuarantinesThrottlesAndReviewsAcrossAReopen) {
  testing::TempDir dir;
  const std::string path = dir.file("state.db");
  {
    SqliteResponseState s(path);
    s.set_quarantined("aaaa", true);
    s.set_quarantined("bbbb", true);
    s.set_quarantined("bbbb", false);
    s.set_throttle("cccc|m", 0.1);
    s.set_throttle("cccc|m", 0.01);
    EXPECT_EQ(s.add_review({{"reason", "detector"}, {"status", "pending"}}), 1);
    EXPECT_EQ(s.add_review({{"reason", "monitor-knn"}, {"status", "pending"}}), 2);
    s.put_review(1, {{"id", 1}, {"reason", "detector"}, {"status", "confirmed"}});
  }
  SqliteResponseState s(path);
  EXPECT_TRUE(s.quarantined("aaaa"));
  EXPECT_FALSE(s.quarantined("bbbb"));
  EXPECT_DOUBLE_EQ(s.throttle("cccc|m"), 0.01);
  EXPECT_DOUBLE_EQ(s.throttle("dddd|m"), 1.0);
  auto reviews = s.reviews();
  ASSERT_EQ(reviews.size(), 2u);
  EXPECT_EQ(reviews[1]["status"], "confirmed");
  EXPECT_EQ(reviews[2]["reason"], "monitor-knn");
  EXPECT_EQ(reviews[2]["id"], 2);
  EXPECT_EQ(s.add_review({{"reason", "x"}}), 3);  // ids continue, never reused
  // The in-memory backend behaves the same within a process.
  InMemoryResponseState m;
  m.set_quarantined("aaaa", true);
  EXPECT_TRUE(m.quarantined("aaaa"));
  EXPECT_EQ(m.add_review({{"reason", "x"}}), 1);
}

TEST(ResponseState, AFileThatIsNotAStateFileIsRefusedAndKept) {
  testing::TempDir dir;
  const std::string path = dir.file("state.db");
  std::ofstream(path) << "this is not an SQLite database, and it must stay as it is";
  try {
    SqliteResponseState s(path);
    FAIL() << "opened a file that is not a state file";
  } catch (const Error& e) {
    EXPECT_TRUE(e.kind() == ErrorKind::Io || e.kind() == ErrorKind::CorruptData) << e.what();
  }
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "this is not an SQLite database, and it must stay as it is");
}

}  // namespace
}  // namespace aegis::serve
