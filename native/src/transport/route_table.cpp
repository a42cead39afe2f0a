#include "ovfast/transport/route_table.hpp"

#include <algorithm>
#include <limits>

namespace ovfast {

const VersionRoute* RouteSnapshot::find(std::string_view name, int64_t version) const {
  auto it = models_.find(name);
  if (it == models_.end()) return nullptr;
  const ModelRoute& m = it->second;
  if (m.needs_control_plane) return nullptr;
  if (version == 0) version = m.default_version;
  if (version == 0) return nullptr;
  // NOTE: a handful of versions per model: a scan beats any index.
  for (const VersionRoute& v : m.versions)
    if (v.version == version) return &v;
  return nullptr;
}

RouteTable::RouteTable() : current_(std::make_shared<const RouteSnapshot>()) {}

std::shared_ptr<const RouteSnapshot> RouteTable::snapshot() const { return std::atomic_load(&current_); }

Status RouteTable::publish(ModelRoute route) {
  bool default_found = route.default_version == 0;
  for (size_t i = 0; i < route.versions.size(); ++i) {
    const VersionRoute& v = route.versions[i];
    if (v.version <= 0 || !v.servable)
      return invalid_argument("route " + route.name + ": a version must be > 0 and have a servable");
    for (size_t k = 0; k < i; ++k)
      if (route.versions[k].version == v.version)
        return invalid_argument("route " + route.name + ": version " + std::to_string(v.version) + " twice");
    default_found = default_found || v.version == route.default_version;
  }
  if (!default_found)
    return invalid_argument("route " + route.name + ": default version " + std::to_string(route.default_version) +
                            " is not one of its versions");
  std::lock_guard<std::mutex> lock(write_mu_);
  auto next = std::make_shared<RouteSnapshot>(*std::atomic_load(&current_));
  std::string name = route.name;
  next->models_[std::move(name)] = std::move(route);
  std::atomic_store(&current_, std::shared_ptr<const RouteSnapshot>(std::move(next)));
  return Status::ok();
}

void RouteTable::remove(std::string_view name) {
  std::lock_guard<std::mutex> lock(write_mu_);
  std::shared_ptr<const RouteSnapshot> cur = std::atomic_load(&current_);
  auto it = cur->models_.find(name);
  if (it == cur->models_.end()) return;
  auto next = std::make_shared<RouteSnapshot>(*cur);
  next->models_.erase(next->models_.find(name));
  std::atomic_store(&current_, std::shared_ptr<const RouteSnapshot>(std::move(next)));
}

bool parse_version_label(std::string_view label, int64_t* version) {
  if (label.empty()) {
    *version = 0;
    return true;
  }
  if (label.size() > 19 || label[0] < '1' || label[0] > '9') return false;
  uint64_t v = 0;
  for (char c : label) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');  // 19 digits cannot overflow uint64
  }
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *version = static_cast<int64_t>(v);
  return true;
}

}  // namespace ovfast
