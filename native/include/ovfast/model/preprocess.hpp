// Load-time model preparation for image inputs: OVMS `layout` ("NHWC:NCHW"),
// `mean`/`scale`, built into the model with ov::preprocess::PrePostProcessor
// so OpenVINO fuses the transpose and arithmetic into the compiled graph.
// Runs at load, on the loading thread, over a model that thread owns.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <openvino/core/model.hpp>

#include "ovfast/status.hpp"

namespace ovfast {

// Rewrites `model` in place. layouts: input or output name ("" = the only
// input) -> "<client layout>:<model layout>" or a single layout that only
// declares the model's. mean/scale (1 value or one per channel) apply to every
// input given a layout. Throws nothing; OpenVINO errors become INVALID_ARGUMENT.
Status apply_preprocessing(std::shared_ptr<ov::Model>& model, const std::map<std::string, std::string>& layouts,
                           const std::vector<float>& mean, const std::vector<float>& scale);

// True when `model`'s input `index` can take decoded NHWC images: rank 4 with
// no layout, or a layout with H, W, C at positions 1, 2, 3 (OVMS: N...HWC).
bool accepts_nhwc_images(const ov::Output<const ov::Node>& port);

}  // namespace ovfast
