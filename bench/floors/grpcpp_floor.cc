// grpcpp_floor CANNED_DIR: the grpc++ floor, a KServe gRPC endpoint doing nothing.
//
// A grpc++ callback server (grpc::CallbackGenericService, the API ovfast's
// native/src/transport/grpc_server.cpp serves with) that answers every call by
// replaying the canned response bytes of its method path: one read, one
// write-and-finish, no protobuf parsing. The canned bytes are files in
// CANNED_DIR, one per method path, named by the path percent-encoded
// (bench/floors/canned.py writes them). Unknown paths get UNIMPLEMENTED.
// Binds 127.0.0.1 on an ephemeral port, prints "listening on <port>", and
// stops on SIGTERM or SIGINT.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>

#include <absl/synchronization/mutex.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

namespace {

constexpr int kMaxMessage = 1 << 30;  // ovfast's gRPC message limit

// "%2Finference..." -> "/inference..."; false on a malformed escape.
bool percent_decode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    unsigned int byte = 0;
    if (std::sscanf(in.substr(i + 1, 2).c_str(), "%2x", &byte) != 1) return false;
    out->push_back(static_cast<char>(byte));
    i += 2;
  }
  return true;
}

// method path -> response bytes; lives as long as the process (slices point into it).
using Canned = std::map<std::string, std::string>;

bool load(const std::string& dir, Canned* canned, std::string* why) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    *why = "cannot open " + dir;
    return false;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string method;
    if (!percent_decode(name, &method)) {
      *why = "bad file name " + name;
      closedir(d);
      return false;
    }
    std::ifstream f(dir + "/" + name, std::ios::binary);
    (*canned)[method].assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  closedir(d);
  if (canned->empty()) {
    *why = "no canned responses in " + dir;
    return false;
  }
  return true;
}

// One unary call on the generic (bidi) reactor: read the request, answer the canned bytes.
class Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(const Canned& canned, const grpc::GenericCallbackServerContext* ctx) {
    auto it = canned.find(ctx->method());
    if (it == canned.end()) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "Method not found!"));
      return;
    }
    body_ = &it->second;
    StartRead(&request_);
  }

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "No request message received"));
      return;
    }
    // the canned bytes outlive the call: a static slice, no copy
    grpc::Slice slice(body_->data(), body_->size(), grpc::Slice::STATIC_SLICE);
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }
  void OnDone() override { delete this; }

  const std::string* body_ = nullptr;
  grpc::ByteBuffer request_, response_;
};

class Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(const Canned& canned) : canned_(canned) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Call(canned_, ctx);
  }

 private:
  const Canned& canned_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CANNED_DIR\n", argv[0]);
    return 2;
  }
  // As ovfast's server: no lock-order tracking in grpc core's absl::Mutexes (Debian builds Abseil
  // without NDEBUG, which turns it on).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Canned canned;
  std::string why;
  if (!load(argv[1], &canned, &why)) {
    std::fprintf(stderr, "grpcpp_floor: %s\n", why.c_str());
    return 1;
  }
  // SIGTERM/SIGINT are taken by sigwait below, in the main thread; gRPC's threads inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Service service(canned);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessage);
  builder.SetMaxSendMessageSize(kMaxMessage);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "grpcpp_floor: cannot start the server on 127.0.0.1\n");
    return 1;
  }
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return 0;
}
