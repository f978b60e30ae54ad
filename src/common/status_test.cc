#include "common/status.h"

#include <gtest/gtest.h>

namespace gust {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd number " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  GUST_ASSIGN_OR_RETURN(int half, Half(x));
  GUST_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::NotFound("function 'f' does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: function 'f' does not exist");
  EXPECT_EQ(s.WithContext("invoke").message(), "invoke: function 'f' does not exist");
}

TEST(StatusTest, FromErrnoNamesTheError) {
  Status s = Status::FromErrno("open /nope", ENOENT);
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.message(), "open /nope: No such file or directory");
}

TEST(ResultTest, PropagatesErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd number 3");
}

}  // namespace
}  // namespace gust
