// grpc_status.hpp: the native side of the error table (the Python side is
// checked against it in tests/unit/test_error_table.py) and status messages
// written as Python writes them.
#include <gtest/gtest.h>

#include "ovfast/transport/grpc_status.hpp"

namespace ovfast {
namespace {

TEST(GrpcStatus, EveryCodeHasItsGrpcCode) {
  EXPECT_EQ(grpc_status_code(StatusCode::OK), 0);
  EXPECT_EQ(grpc_status_code(StatusCode::INVALID_ARGUMENT), 3);
  EXPECT_EQ(grpc_status_code(StatusCode::NOT_FOUND), 5);
  EXPECT_EQ(grpc_status_code(StatusCode::UNAVAILABLE), 14);
  EXPECT_EQ(grpc_status_code(StatusCode::UNSUPPORTED), 12);
  EXPECT_EQ(grpc_status_code(StatusCode::CANCELLED), 1);
  EXPECT_EQ(grpc_status_code(StatusCode::FAILED_PRECONDITION), 9);
  EXPECT_EQ(grpc_status_code(StatusCode::ABORTED), 10);
  EXPECT_EQ(grpc_status_code(static_cast<StatusCode>(99)), 2) << "outside the enum: UNKNOWN";
}

TEST(GrpcStatus, MessagesKeepUtf8AndEscapeEveryOtherByte) {
  EXPECT_EQ(printable_message("plain"), "plain");
  EXPECT_EQ(printable_message("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82");
  EXPECT_EQ(printable_message("a\xff" "b"), "a\\xffb");
  EXPECT_EQ(printable_message("\xe2\x82" "A"), "\\xe2\\x82A") << "a truncated sequence, byte by byte";
  EXPECT_EQ(printable_message("\xc0\xaf"), "\\xc0\\xaf") << "overlong";
  EXPECT_EQ(printable_message("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "surrogate";
  EXPECT_EQ(printable_message(std::string("\0x", 2)), std::string("\0x", 2)) << "NUL is UTF-8";
}

}  // namespace
}  // namespace ovfast
