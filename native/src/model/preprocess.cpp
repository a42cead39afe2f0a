#include "ovfast/model/preprocess.hpp"

#include <openvino/core/layout.hpp>
#include <openvino/core/preprocess/pre_post_process.hpp>

namespace ovfast {

namespace {

bool has_port(const std::vector<ov::Output<ov::Node>>& ports, const std::string& name) {
  for (const auto& p : ports)
    if (p.get_names().count(name)) return true;
  return false;
}

}  // namespace

Status apply_preprocessing(std::shared_ptr<ov::Model>& model, const std::map<std::string, std::string>& layouts,
                           const std::vector<float>& mean, const std::vector<float>& scale) {
  if (layouts.empty() && mean.empty() && scale.empty()) return Status::ok();
  if (layouts.empty())
    return invalid_argument("mean/scale need a layout (e.g. --layout NHWC:NCHW) to find the channel dimension");
  try {
    ov::preprocess::PrePostProcessor ppp(model);
    for (const auto& [key, text] : layouts) {
      const auto colon = text.find(':');
      const std::string client = colon == std::string::npos ? "" : text.substr(0, colon);
      const std::string served = colon == std::string::npos ? text : text.substr(colon + 1);
      const bool is_input = key.empty() || has_port(model->inputs(), key);
      if (!is_input && !has_port(model->outputs(), key))
        return invalid_argument("Layout given for '" + key + "' which is neither an input nor an output of the model");
      if (key.empty() && model->inputs().size() != 1)
        return invalid_argument("A layout without an input name is only allowed for models with one input");
      if (is_input) {
        auto& in = key.empty() ? ppp.input() : ppp.input(key);
        in.model().set_layout(ov::Layout(served));
        if (!client.empty()) in.tensor().set_layout(ov::Layout(client));
        if (!mean.empty()) in.preprocess().mean(mean);
        if (!scale.empty()) in.preprocess().scale(scale);
      } else {
        // Outputs: the model produces `served`; clients get `client`.
        auto& out = ppp.output(key);
        out.model().set_layout(ov::Layout(served));
        if (!client.empty()) out.tensor().set_layout(ov::Layout(client));
      }
    }
    model = ppp.build();
  } catch (const std::exception& e) {
    return invalid_argument(std::string("Cannot apply layout/mean/scale: ") + e.what());
  }
  return Status::ok();
}

bool accepts_nhwc_images(const ov::Output<const ov::Node>& port) {
  const ov::PartialShape& ps = port.get_partial_shape();
  if (ps.rank().is_dynamic() || ps.size() != 4) return false;
  const ov::Layout layout = ov::layout::get_layout(port);
  if (layout.empty()) return true;
  auto at = [](int64_t idx, int64_t want) { return (idx < 0 ? idx + 4 : idx) == want; };
  if (ov::layout::has_height(layout) && !at(ov::layout::height_idx(layout), 1)) return false;
  if (ov::layout::has_width(layout) && !at(ov::layout::width_idx(layout), 2)) return false;
  if (ov::layout::has_channels(layout) && !at(ov::layout::channels_idx(layout), 3)) return false;
  return true;
}

}  // namespace ovfast
