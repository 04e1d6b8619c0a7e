// core/barrier.h: a job that throws becomes a kInternal error naming its context; a loop whose
// handler throws keeps serving.
#include "core/barrier.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>
#include <vector>

namespace synaps {
namespace {

TEST(BarrierTest, PassesResultsThrough) {
  Result<int> r = Guarded("seven", [] { return 7; });
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 7);
  Result<int> failed = Guarded(
      "refused", []() -> Result<int> { return Fail(ErrorCode::kNotFound, "no such thing"); });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kNotFound);
  int calls = 0;
  Status s = Guarded("void job", [&] { ++calls; });
  EXPECT_TRUE(s);
  EXPECT_EQ(calls, 1);
}

TEST(BarrierTest, TurnsExceptionsIntoInternalErrors) {
  Result<int> r = Guarded("parsing row 3", []() -> int { throw std::out_of_range("key 'x'"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_EQ(r.error().message, "parsing row 3 failed: key 'x'");
  Status odd = Guarded("odd job", [] { throw 42; });
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message, "odd job failed: an exception not derived from std::exception");
}

TEST(BarrierTest, ALoopWhoseHandlerThrowsServesTheNextOne) {
  boost::asio::io_context io;
  std::vector<int> ran;
  boost::asio::post(io, [&] { ran.push_back(1); });
  boost::asio::post(io, [] { throw std::runtime_error("handler bug"); });
  boost::asio::post(io, [&] { ran.push_back(3); });
  RunGuarded("test loop", io);
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace synaps
