#include "aegis/serve/audit_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis::serve {
namespace {

void write_entries(const std::string& path, int n) {
  AuditLog log(path);
  for (int i = 0; i < n; ++i)
    log.append(AuditEntry{"request",
                          "key" + std::to_string(i % 3),
                          "m",
                          i % 4 ? "allow" : "reject",
                          i % 4 ? 200 : 429,
                          i % 4 ? "" : "rate_limited",
                          {{"batch", i}, {"scores", {0.1 * i}}}});
}

// Tampering needs the triggers gone, as an attacker with the file would do.
void tamper(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  std::string all = "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; " + sql;
  ASSERT_EQ(sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);
}

TEST(AuditLog, IntactChainVerifiesAndSurvivesReopening) {
  testing::TempDir dir;
  const std::string p = dir.file("audit.db");
  write_entries(p, 10);
  write_entries(p, 5);  // reopened: the chain continues
  AuditVerification v = verify_audit_log(p);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.entries, 15);
  AuditLog log(p);
  EXPECT_EQ(log.head(), v.head);
  EXPECT_TRUE(verify_audit_log(p, v.head).ok);
}

TEST(AuditLog, TriggersRefuseUpdateAndDelete) {
  testing::TempDir dir;
  const std::string p = dir.file("audit.db");
  write_entries(p, 3);
  sqlite3* db = nullptr;
  sqlite3_open(p.c_str(), &db);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit SET decision='allow'", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit WHERE seq=2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_TRUE(verify_audit_log(p).ok);
}

TEST(AuditLog, DetectsEditedRemovedAndReorderedEntries) {
  struct Case {
    const char* what;
    std::string sql;
    int64_t bad_seq;
    const char* word;
  };
  const std::vector<Case> cases = {
      {"edited decision", "UPDATE audit SET decision='allow' WHERE seq=5", 5, "edited"},
      {"edited details", "UPDATE audit SET details='{\"batch\":1}' WHERE seq=7", 7, "edited"},
      {"edited status", "UPDATE audit SET status=200 WHERE seq=9", 9, "edited"},
      {"removed", "DELETE FROM audit WHERE seq=5", 6, "missing"},
      {"removed and renumbered", "DELETE FROM audit WHERE seq=5; UPDATE audit SET seq=seq-1 WHERE seq>5", 5, "chain"},
      // seq is the rowid: reordering means swapping the sequence numbers.
      {"reordered",
       "UPDATE audit SET seq=-3 WHERE seq=3; UPDATE audit SET seq=3 WHERE seq=4; UPDATE audit SET seq=4 WHERE seq=-3",
       3, "chain"},
      {"swapped contents", "UPDATE audit SET key_id=(SELECT key_id FROM audit WHERE seq=2) WHERE seq=3", 3, "edited"},
  };
  for (const auto& c : cases) {
    testing::TempDir dir;
    const std::string p = dir.file("audit.db");
    write_entries(p, 10);
    tamper(p, c.sql);
    AuditVerification v = verify_audit_log(p);
    EXPECT_FALSE(v.ok) << c.what;
    EXPECT_EQ(v.bad_seq, c.bad_seq) << c.what << ": " << v.problem;
    EXPECT_NE(v.problem.find(c.word), std::string::npos) << c.what << ": " << v.problem;
  }
}

TEST(AuditLog, TruncatedTailIsCaughtOnlyWithTheExpectedHead) {
  testing::TempDir dir;
  const std::string p = dir.file("audit.db");
  write_entries(p, 6);
  const std::string head = verify_audit_log(p).head;
  tamper(p, "DELETE FROM audit WHERE seq=6");
  EXPECT_TRUE(verify_audit_log(p).ok);  // a shorter valid chain: documented limit
  AuditVerification v = verify_audit_log(p, head);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("expected head"), std::string::npos);
}

TEST(AuditLog, MissingOrForeignFilesAreErrors) {
  testing::TempDir dir;
  EXPECT_THROW(verify_audit_log(dir.file("none.db")), Error);
  sqlite3* db = nullptr;
  sqlite3_open(dir.file("other.db").c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE x (a INTEGER)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    verify_audit_log(dir.file("other.db"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::CorruptData);
  }
}

}  // namespace
}  // namespace aegis::serve
