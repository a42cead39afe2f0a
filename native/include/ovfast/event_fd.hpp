// EventFd: the wakeup native queues give the asyncio loop. A non-blocking,
// close-on-exec Linux eventfd that the loop watches with add_reader().
// Threading: notify() from any thread; reset() from the reading thread.
#pragma once

namespace ovfast {

class EventFd {
 public:
  EventFd();  // throws std::runtime_error if the kernel refuses an eventfd
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  // Makes fd() readable (adds one to the counter).
  void notify();
  // Makes fd() unreadable again (reads the counter to zero). Non-blocking.
  void reset();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace ovfast
