// Dataset diff (which samples changed) and the hash-chained provenance
// ledger (every edit, deletion or truncation detected and located).

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/integrity/data_diff.h"
#include "aegis/integrity/data_ledger.h"
#include "support/test_support.h"

using namespace aegis;
using aegis::testing::TempDir;

namespace {

Dataset copy_of(const Dataset& d) {
  Dataset c = d;
  c.x = d.x.clone();
  c.y = d.y.clone();
  return c;
}

void sql(const std::string& db_path, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

}  // namespace

TEST(DataDiff, NamesChangedRelabelledMovedAndAddedSamples) {
  Dataset a = aegis::testing::make_blobs(40, 5, 3, /*seed=*/1);
  EXPECT_TRUE(diff_datasets(a, copy_of(a)).identical());

  Dataset b = copy_of(a);
  b.x[3][2] += 0.01;                          // one feature of sample 3
  b.y[7] = (b.y[7].item<int64_t>() + 1) % 3;  // the label of sample 7
  auto row10 = a.x[10].clone(), row11 = a.x[11].clone();
  auto lab10 = a.y[10].item<int64_t>(), lab11 = a.y[11].item<int64_t>();
  b.x[10] = row11;  // samples 10 and 11 swapped
  b.x[11] = row10;
  b.y[10] = lab11;
  b.y[11] = lab10;
  DatasetDiff d = diff_datasets(a, b);
  EXPECT_FALSE(d.identical());
  EXPECT_NE(d.fingerprint_a, d.fingerprint_b);
  EXPECT_EQ(d.changed, (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(d.label_changed, std::vector<int64_t>{7});
  ASSERT_FALSE(torch::equal(row10, row11));  // distinct samples, so the swap is visible
  EXPECT_EQ(d.moved, (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(d.added, 0);

  Dataset longer = copy_of(a);
  longer.x = torch::cat({a.x, a.x.slice(0, 0, 2) + 0.5});
  longer.y = torch::cat({a.y, a.y.slice(0, 0, 2)});
  DatasetDiff grown = diff_datasets(a, longer);
  EXPECT_EQ(grown.added, 2);
  EXPECT_TRUE(grown.changed.empty());
  EXPECT_EQ(diff_datasets(longer, a).removed, 2);
}

TEST(DataDiff, EverySingleSampleChangeChangesTheFingerprint) {
  Dataset a = aegis::testing::make_blobs(17, 4, 2, /*seed=*/5);  // odd size: promoted Merkle nodes too
  std::string fp = a.fingerprint();
  for (int64_t i = 0; i < a.size(); ++i) {
    Dataset b = copy_of(a);
    b.x[i][0] += 1e-3;
    DatasetDiff d = diff_datasets(a, b);
    EXPECT_NE(d.fingerprint_b, fp) << i;
    EXPECT_EQ(d.changed, std::vector<int64_t>{i});
  }
}

TEST(DataLedger, ChainVerifiesAndLinksVersions) {
  TempDir dir;
  DataLedger ledger(dir.file("p.db"));
  Dataset a = aegis::testing::make_blobs(10, 3, 2, 1);
  LedgerEntry e1 = ledger.record("blobs", DataRecord(a.fingerprint()).source("synthetic").samples(10).who("alice"));
  LedgerEntry e2 = ledger.record("blobs", DataRecord(std::string(64, 'b')).transformation("dedup").who("bob"));
  LedgerEntry e3 = ledger.record("other", DataRecord(std::string(64, 'c')));
  EXPECT_EQ(e1.version, 1);
  EXPECT_EQ(e2.version, 2);
  EXPECT_EQ(e2.parent_version, 1);
  EXPECT_EQ(e3.version, 1);
  EXPECT_EQ(e2.prev_hash, e1.hash);
  EXPECT_EQ(e3.prev_hash, e2.hash);
  EXPECT_EQ(ledger.latest("blobs").fingerprint, std::string(64, 'b'));
  EXPECT_EQ(ledger.log("blobs").size(), 2u);
  LedgerVerification v = ledger.verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries, 3);
  EXPECT_EQ(v.head, e3.hash);
  EXPECT_TRUE(ledger.verify(e3.hash).ok);
  EXPECT_THROW(ledger.record("blobs", DataRecord("short")), Error);
  EXPECT_THROW(ledger.record("blobs", DataRecord(std::string(64, 'd')).parent_version(9)), Error);
  EXPECT_THROW(ledger.latest("nope"), Error);
}

TEST(DataLedger, EditsDeletionsAndTruncationAreDetected) {
  TempDir dir;
  std::string db = dir.file("p.db");
  std::string head;
  {
    DataLedger ledger(db);
    for (char c : {'a', 'b', 'c', 'd'}) head = ledger.record("ds", DataRecord(std::string(64, c))).hash;
  }
  {
    // Edit a field: entry 2 no longer matches its hash.
    TempDir d2;
    std::filesystem::copy_file(db, d2.file("p.db"));
    sql(d2.file("p.db"), "UPDATE ledger SET fingerprint = '" + std::string(64, 'e') + "' WHERE seq = 2");
    LedgerVerification v = DataLedger(d2.file("p.db")).verify();
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.reason.find("entry 2 (ds v2) was altered"), std::string::npos) << v.reason;
  }
  {
    // Edit and re-hash it: the next entry no longer links.
    TempDir d2;
    std::filesystem::copy_file(db, d2.file("p.db"));
    LedgerEntry e;
    {
      DataLedger l(d2.file("p.db"));
      e = l.log()[1];
    }
    e.fingerprint = std::string(64, 'e');
    sql(d2.file("p.db"), "UPDATE ledger SET fingerprint = '" + e.fingerprint + "', hash = '" +
                             DataLedger::entry_hash(e) + "' WHERE seq = 2");
    LedgerVerification v = DataLedger(d2.file("p.db")).verify();
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.reason.find("entry 3 (ds v3) does not link"), std::string::npos) << v.reason;
  }
  {
    TempDir d2;
    std::filesystem::copy_file(db, d2.file("p.db"));
    sql(d2.file("p.db"), "DELETE FROM ledger WHERE seq = 2");
    LedgerVerification v = DataLedger(d2.file("p.db")).verify();
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.reason.find("entry 2 is missing"), std::string::npos) << v.reason;
  }
  {
    // Dropping the newest entry keeps the chain valid; only the head hash catches it.
    TempDir d2;
    std::filesystem::copy_file(db, d2.file("p.db"));
    sql(d2.file("p.db"), "DELETE FROM ledger WHERE seq = 4");
    DataLedger l(d2.file("p.db"));
    EXPECT_TRUE(l.verify().ok);
    LedgerVerification v = l.verify(head);
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.reason.find("dropped"), std::string::npos) << v.reason;
  }
}

TEST(DataCli, RegisterLogVerifyAndDiff) {
  TempDir dir;
  Dataset a = aegis::testing::make_blobs(12, 3, 2, 3);
  save_npy(a.x, dir.file("x1.npy"));
  save_npy(a.y, dir.file("y1.npy"));
  Dataset b = copy_of(a);
  b.x[4][1] += 0.25;
  save_npy(b.x, dir.file("x2.npy"));
  std::string ledger = " --ledger " + dir.file("p.db");
  auto r = aegis::testing::run_aegis("data register blobs --data " + dir.file("x1.npy") + " --labels " +
                                     dir.file("y1.npy") + ledger + " --source synthetic --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ok = aegis::testing::run_aegis("data verify blobs --data " + dir.file("x1.npy") + " --labels " +
                                      dir.file("y1.npy") + ledger);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto changed = aegis::testing::run_aegis("data verify blobs --data " + dir.file("x2.npy") + " --labels " +
                                           dir.file("y1.npy") + ledger);
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_NE(changed.out.find("differs"), std::string::npos) << changed.out;
  auto diff = aegis::testing::run_aegis("data diff " + dir.file("x1.npy") + " " + dir.file("x2.npy") + " --labels-a " +
                                        dir.file("y1.npy") + " --labels-b " + dir.file("y1.npy") + " --json");
  EXPECT_EQ(diff.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(diff.out)["changed"].get<std::vector<int64_t>>(), std::vector<int64_t>{4});
  auto log = aegis::testing::run_aegis("data log" + ledger);
  EXPECT_NE(log.out.find("blobs v1"), std::string::npos) << log.out;
}
