// native_load TARGET REQUESTS ORDER CLIENTS SECONDS OUT: a grpc++ closed-loop load generator.
//
// The Python clients (tritonclient's asyncio client) cost more CPU per request than a small model's
// inference, so on a 2-core machine their own scheduling becomes the tail latency they report. This
// client costs a few microseconds per request: CLIENTS threads share one channel, each with one
// KServe ModelInfer call in flight at a time (grpc++ generic stub, callback API; the bytes sent are
// prepared by Python, nothing is parsed here).
//
// REQUESTS: serialized ModelInferRequest messages, each preceded by its length (uint32, little
// endian). ORDER: uint32 indexes into REQUESTS, in the order the requests are sent (threads take the
// next one in turn). SECONDS > 0: run that long, wrapping around ORDER; 0: send ORDER once.
// OUT: JSON {"lat_us": [...], "failed": N, "failures": [first 5], "elapsed_s": S}.
#include <absl/synchronization/mutex.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const char kMethod[] = "/inference.GRPCInferenceService/ModelInfer";

bool read_file(const char* path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

uint32_t u32_at(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out;
}

struct Shared {
  std::vector<grpc::Slice> requests;
  std::vector<uint32_t> order;
  std::atomic<uint64_t> next{0};
  bool wrap = false;
  std::chrono::steady_clock::time_point deadline;
  std::mutex mu;  // failures
  uint64_t failed = 0;
  std::vector<std::string> failures;
};

void client(grpc::GenericStub* stub, Shared* sh, std::vector<uint32_t>* lat_us) {
  std::mutex mu;
  std::condition_variable cv;
  for (;;) {
    if (sh->wrap && std::chrono::steady_clock::now() >= sh->deadline) return;
    uint64_t i = sh->next.fetch_add(1);
    if (!sh->wrap && i >= sh->order.size()) return;
    const grpc::Slice& body = sh->requests[sh->order[i % sh->order.size()]];
    grpc::ByteBuffer request(&body, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    grpc::Status status;
    bool done = false;
    auto t0 = std::chrono::steady_clock::now();
    stub->UnaryCall(&ctx, kMethod, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      status = std::move(s);
      done = true;
      cv.notify_one();
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    if (status.ok()) {
      lat_us->push_back(static_cast<uint32_t>(us));
    } else {
      std::lock_guard<std::mutex> lock(sh->mu);
      ++sh->failed;
      if (sh->failures.size() < 5)
        sh->failures.push_back("request " + std::to_string(sh->order[i % sh->order.size()]) + ": " +
                               std::to_string(status.error_code()) + " " + status.error_message());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s TARGET REQUESTS ORDER CLIENTS SECONDS OUT\n", argv[0]);
    return 2;
  }
  // As ovfast's server: no lock-order tracking in grpc core's absl::Mutexes (Debian builds Abseil
  // without NDEBUG, which turns it on).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Shared sh;
  std::string blob, order;
  if (!read_file(argv[2], &blob) || !read_file(argv[3], &order)) {
    std::fprintf(stderr, "cannot read %s or %s\n", argv[2], argv[3]);
    return 2;
  }
  for (size_t at = 0; at + 4 <= blob.size();) {
    uint32_t n = u32_at(blob, at);
    if (at + 4 + n > blob.size()) {
      std::fprintf(stderr, "truncated request at byte %zu\n", at);
      return 2;
    }
    sh.requests.emplace_back(blob.data() + at + 4, n);
    at += 4 + n;
  }
  for (size_t at = 0; at + 4 <= order.size(); at += 4) {
    uint32_t i = u32_at(order, at);
    if (i >= sh.requests.size()) {
      std::fprintf(stderr, "order names request %u of %zu\n", i, sh.requests.size());
      return 2;
    }
    sh.order.push_back(i);
  }
  if (sh.order.empty()) {
    std::fprintf(stderr, "empty order\n");
    return 2;
  }
  int clients = std::stoi(argv[4]);
  double seconds = std::stod(argv[5]);
  sh.wrap = seconds > 0;

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(argv[1], grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
    std::fprintf(stderr, "cannot connect to %s\n", argv[1]);
    return 1;
  }
  grpc::GenericStub stub(channel);
  std::vector<std::vector<uint32_t>> lat(clients);
  auto t0 = std::chrono::steady_clock::now();
  sh.deadline = t0 + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) threads.emplace_back(client, &stub, &sh, &lat[c]);
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::FILE* out = std::fopen(argv[6], "w");
  if (out == nullptr) return 2;
  std::fprintf(out, "{\"elapsed_s\": %.6f, \"failed\": %llu, \"failures\": [", elapsed,
               static_cast<unsigned long long>(sh.failed));
  for (size_t i = 0; i < sh.failures.size(); ++i)
    std::fprintf(out, "%s\"%s\"", i ? ", " : "", json_escape(sh.failures[i]).c_str());
  std::fprintf(out, "], \"lat_us\": [");
  bool first = true;
  for (const auto& v : lat)
    for (uint32_t us : v) {
      std::fprintf(out, first ? "%u" : ",%u", us);
      first = false;
    }
  std::fprintf(out, "]}\n");
  return std::fclose(out) == 0 ? 0 : 2;
}
