// Metrics bindings: scrape-time reads of ServableMetrics and the cold-path
// count() used for requests the native submit path does not see.
#pragma once
#include "py_common.hpp"

namespace ovfast::bindings {

void register_metrics(py::module_& m, py::class_<PyServable>& servable);

}  // namespace ovfast::bindings
