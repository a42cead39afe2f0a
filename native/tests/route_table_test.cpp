// RouteTable (ovfast/transport/route_table.hpp): lookups by version and by
// default, models that need the control plane, refused inconsistent routes,
// snapshots that keep their servables alive after the table moved on, and
// readers racing writers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ovfast/servable.hpp"
#include "ovfast/transport/route_table.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

class RouteTableTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    core_ = std::make_unique<ov::Core>();
    dir_ = std::make_unique<testkit::TempDir>();
    path_ = dir_->save(testkit::add_one_model(), "add_one");
  }
  static void TearDownTestSuite() {
    core_.reset();
    dir_.reset();
  }

  // An echo servable (no compile): the table never runs it, it only routes to it.
  static std::shared_ptr<Servable> servable() {
    ModelOptions o = testkit::cpu_options(path_, 1);
    o.echo = true;
    std::unique_ptr<Servable> s;
    Status st = Servable::create(*core_, o, nullptr, &s);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return s;
  }

  static ModelRoute route(const std::string& name, int64_t default_version,
                          const std::vector<std::pair<int64_t, std::shared_ptr<Servable>>>& versions,
                          bool needs_control_plane = false) {
    ModelRoute r;
    r.name = name;
    r.default_version = default_version;
    r.needs_control_plane = needs_control_plane;
    for (const auto& [v, s] : versions) r.versions.push_back({v, std::to_string(v), s});
    return r;
  }

  static std::unique_ptr<ov::Core> core_;
  static std::unique_ptr<testkit::TempDir> dir_;
  static std::string path_;
};
std::unique_ptr<ov::Core> RouteTableTest::core_;
std::unique_ptr<testkit::TempDir> RouteTableTest::dir_;
std::string RouteTableTest::path_;

TEST_F(RouteTableTest, EmptyTableRoutesNothing) {
  RouteTable t;
  ASSERT_NE(t.snapshot(), nullptr);
  EXPECT_EQ(t.snapshot()->size(), 0u);
  EXPECT_EQ(t.snapshot()->find("m", 0), nullptr);
  EXPECT_EQ(t.snapshot()->find("m", 1), nullptr);
}

TEST_F(RouteTableTest, FindsVersionsAndTheDefault) {
  RouteTable t;
  auto s1 = servable(), s2 = servable();
  ASSERT_TRUE(t.publish(route("m", 2, {{1, s1}, {2, s2}})).is_ok());
  auto snap = t.snapshot();
  const VersionRoute* r = snap->find("m", 1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->servable.get(), s1.get());
  EXPECT_EQ(r->label, "1");
  r = snap->find("m", 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(r->servable.get(), s2.get());
  EXPECT_EQ(snap->find("m", 3), nullptr) << "unknown version: the control plane answers";
  EXPECT_EQ(snap->find("other", 0), nullptr) << "unknown model: the control plane answers";
  EXPECT_EQ(snap->find("M", 1), nullptr) << "names are exact";
}

TEST_F(RouteTableTest, NoDefaultMeansVersionZeroIsNotRouted) {
  RouteTable t;
  auto s = servable();
  ASSERT_TRUE(t.publish(route("m", 0, {{4, s}})).is_ok());
  EXPECT_EQ(t.snapshot()->find("m", 0), nullptr);
  EXPECT_NE(t.snapshot()->find("m", 4), nullptr);
  ASSERT_TRUE(t.publish(route("m", 0, {})).is_ok()) << "a model with nothing AVAILABLE (loading)";
  EXPECT_EQ(t.snapshot()->find("m", 0), nullptr);
  EXPECT_EQ(t.snapshot()->find("m", 4), nullptr);
}

TEST_F(RouteTableTest, ModelsThatNeedTheControlPlaneAreNeverRouted) {
  RouteTable t;
  auto s = servable();
  ASSERT_TRUE(t.publish(route("auto", 1, {{1, s}}, /*needs_control_plane=*/true)).is_ok());
  EXPECT_EQ(t.snapshot()->find("auto", 0), nullptr);
  EXPECT_EQ(t.snapshot()->find("auto", 1), nullptr);
}

TEST_F(RouteTableTest, PublishReplacesOneModelAndRemoveDropsIt) {
  RouteTable t;
  auto a = servable(), b = servable(), c = servable();
  ASSERT_TRUE(t.publish(route("a", 1, {{1, a}})).is_ok());
  ASSERT_TRUE(t.publish(route("b", 1, {{1, b}})).is_ok());
  ASSERT_TRUE(t.publish(route("a", 2, {{2, c}})).is_ok());
  auto snap = t.snapshot();
  EXPECT_EQ(snap->size(), 2u);
  EXPECT_EQ(snap->find("a", 1), nullptr) << "version 1 was replaced, not kept";
  EXPECT_EQ(snap->find("a", 0)->servable.get(), c.get());
  EXPECT_EQ(snap->find("b", 0)->servable.get(), b.get()) << "other models are untouched";
  t.remove("a");
  t.remove("never-published");
  EXPECT_EQ(t.snapshot()->find("a", 0), nullptr);
  EXPECT_EQ(t.snapshot()->find("b", 0)->servable.get(), b.get());
}

TEST_F(RouteTableTest, InconsistentRoutesAreRefusedAndChangeNothing) {
  RouteTable t;
  auto s = servable();
  ASSERT_TRUE(t.publish(route("m", 1, {{1, s}})).is_ok());
  const auto before = t.snapshot();
  for (const ModelRoute& bad : {route("m", 0, {{0, s}}), route("m", 0, {{-1, s}}), route("m", 1, {{1, s}, {1, s}}),
                                route("m", 0, {{1, nullptr}}), route("m", 2, {{1, s}})}) {
    Status st = t.publish(bad);
    EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << st.message();
  }
  EXPECT_EQ(t.snapshot().get(), before.get());
}

TEST_F(RouteTableTest, ASnapshotKeepsItsServablesAlive) {
  RouteTable t;
  std::weak_ptr<Servable> weak;
  {
    auto s = servable();
    weak = s;
    ASSERT_TRUE(t.publish(route("m", 1, {{1, s}})).is_ok());
  }
  EXPECT_FALSE(weak.expired()) << "the table holds a reference";
  auto held = t.snapshot();
  t.remove("m");
  EXPECT_FALSE(weak.expired()) << "a request's snapshot keeps the version it found";
  EXPECT_EQ(t.snapshot()->find("m", 1), nullptr);
  ASSERT_NE(held->find("m", 1), nullptr) << "a snapshot never changes";
  held.reset();
  EXPECT_TRUE(weak.expired()) << "the last reference gone, the servable is destroyed";
}

TEST_F(RouteTableTest, ReadersRaceWriters) {
  RouteTable t;
  auto s1 = servable(), s2 = servable();
  std::atomic<bool> stop{false};
  std::atomic<int> found{0}, bad{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto snap = t.snapshot();
        if (const VersionRoute* r = snap->find("m", 0)) {
          found.fetch_add(1);
          if (!r->servable || (r->servable != s1 && r->servable != s2) || r->label != std::to_string(r->version))
            bad.fetch_add(1);
        }
      }
    });
  for (int i = 0; i < 2000; ++i) {
    if (i % 3 == 2) t.remove("m");
    else EXPECT_TRUE(t.publish(route("m", i % 2 + 1, {{1, s1}, {2, s2}})).is_ok());
  }
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(ParseVersionLabel, CanonicalDecimalOnly) {
  int64_t v = -1;
  EXPECT_TRUE(parse_version_label("", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_version_label("7", &v));
  EXPECT_EQ(v, 7);
  EXPECT_TRUE(parse_version_label("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  for (const char* s : {"0", "07", "+7", "-7", " 7", "7 ", "7a", "1_0", "9223372036854775808",
                        "99999999999999999999", "\xd9\xa3"})
    EXPECT_FALSE(parse_version_label(s, &v)) << s;
}

}  // namespace
}  // namespace ovfast
