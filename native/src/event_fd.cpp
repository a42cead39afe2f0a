#include "ovfast/event_fd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace ovfast {

EventFd::EventFd() {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

EventFd::~EventFd() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFd::notify() {
  uint64_t one = 1;
  ssize_t r;
  do { r = ::write(fd_, &one, sizeof one); } while (r < 0 && errno == EINTR);
}

void EventFd::reset() {
  uint64_t count;
  ssize_t r;
  do { r = ::read(fd_, &count, sizeof count); } while (r < 0 && errno == EINTR);
}

}  // namespace ovfast
