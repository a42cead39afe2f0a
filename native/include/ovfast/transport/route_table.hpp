// RouteTable: which Servable the native front-end hands a request for
// (model name, version) to. The Python control plane owns model state and
// publishes each model's routes here on every change of it (load, unload,
// reload, "auto" reshape); a request whose route is absent goes to the
// control plane (forward_queue.hpp), which knows why.
//
// Readers (gRPC threads, once per request) take the current snapshot: one
// atomic shared_ptr load, no lock held while the request runs. A snapshot is
// immutable; a writer copies the current one, changes one model and swaps
// the copy in. Writers are serialized among themselves.
// Ownership: a snapshot holds a reference on every Servable it routes to, and
// so does whoever took one out of it. The last reference to go runs
// ~Servable on that thread, which waits for the servable's jobs in flight:
// the control plane unpublishes a version before it drains and drops it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ovfast/servable.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

struct VersionRoute {
  int64_t version = 0;
  std::string label;  // the version as responses carry it ("3")
  std::shared_ptr<Servable> servable;
};

struct ModelRoute {
  std::string name;
  // Every request for this model goes to the control plane (shape or batch "auto":
  // a request may need the version recompiled for its shapes first).
  bool needs_control_plane = false;
  int64_t default_version = 0;        // what version 0 / "" means; 0: none AVAILABLE
  std::vector<VersionRoute> versions;  // the AVAILABLE versions
};

class RouteSnapshot {
 public:
  // The route for (name, version), version 0 = the default; nullptr when the
  // native side does not serve it (unknown model or version, no default,
  // control plane needed).
  const VersionRoute* find(std::string_view name, int64_t version) const;
  size_t size() const { return models_.size(); }

 private:
  friend class RouteTable;
  std::map<std::string, ModelRoute, std::less<>> models_;
};

class RouteTable {
 public:
  RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // The routes as they are now; never null. Any thread.
  std::shared_ptr<const RouteSnapshot> snapshot() const;
  // Replaces (or adds) one model's routes. INVALID_ARGUMENT, and nothing
  // changes, unless every version is > 0, listed once and has a servable,
  // and default_version is 0 or one of them. Any thread.
  Status publish(ModelRoute route);
  // Drops a model's routes (its requests go to the control plane); unknown
  // names are ignored. Any thread.
  void remove(std::string_view name);

 private:
  std::mutex write_mu_;                           // serializes publish/remove
  std::shared_ptr<const RouteSnapshot> current_;  // read and swapped atomically
};

// A KServe `model_version` string as a version number: "" -> 0 (the
// default), canonical decimal digits ("7", not "07", "+7" or " 7") within
// int64 -> their value. false for anything else: such a request goes to the
// control plane, which answers it exactly as it always did.
bool parse_version_label(std::string_view label, int64_t* version);

}  // namespace ovfast
