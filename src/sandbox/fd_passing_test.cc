#include "sandbox/fd_passing.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "sandbox/fd_limits.h"

namespace gust::sandbox {
namespace {

TEST(FdPassingTest, RoundTripWithFds) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  ASSERT_TRUE(SendMessage(a.get(), "hello", {w.get()}).ok());
  auto msg = ReceiveMessage(b.get());
  ASSERT_TRUE(msg.ok()) << msg.status().ToString();
  EXPECT_EQ(msg->data, "hello");
  ASSERT_EQ(msg->fds.size(), 1u);
  EXPECT_TRUE(::fcntl(msg->fds[0].get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(msg->fds[0].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(FdPassingTest, WouldBlockAndEof) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_EQ(ReceiveMessage(b.get(), MSG_DONTWAIT).status().code(), Code::kUnavailable);
  a.Reset();
  auto msg = ReceiveMessage(b.get());
  ASSERT_TRUE(msg.ok());
  EXPECT_TRUE(msg->eof);
}

TEST(FdPassingTest, RejectsTooManyFds) {
  std::vector<int> fds(kMaxFds + 1, 0);
  EXPECT_EQ(SendMessage(-1, "x", fds).code(), Code::kInvalidArgument);
}

TEST(FdPassingTest, SendErrorsComeBackAsStatus) {
  ScopedOsFault<ssize_t (*)(int, const msghdr*, int)> fault(&OsOps::sendmsg,
                                                            [](int, const msghdr*, int) -> ssize_t {
                                                              errno = EPIPE;
                                                              return -1;
                                                            });
  Status s = SendMessage(0, "x", {});
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("Broken pipe"), std::string::npos);
}

}  // namespace
}  // namespace gust::sandbox

namespace gust::sandbox {
namespace {

TEST(FdLimitsTest, ReserveDescriptorsRaisesTheSoftLimit) {
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  if (before.rlim_max <= 1024) GTEST_SKIP() << "hard limit too low to test";
  rlimit low{1024, before.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  ReserveDescriptors();
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, std::min<rlim_t>(65536, before.rlim_max));
  // A high descriptor number is usable at once (the table was grown).
  int high = static_cast<int>(std::min<rlim_t>(after.rlim_cur, 8192)) - 1;
  EXPECT_EQ(::dup2(0, high), high);
  ::close(high);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
}

}  // namespace
}  // namespace gust::sandbox
