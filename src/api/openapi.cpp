#include "api/openapi.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace synaps::api {
namespace {

// YAML → JSON for the subset OpenAPI documents use. Plain scalars that read as numbers or
// booleans become numbers or booleans; quoted ones stay strings.
nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = ToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(ToJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted
      if (s == "true") return true;
      if (s == "false") return false;
      if (s == "null" || s == "~") return nullptr;
      if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
        auto parsed = nlohmann::json::parse(s, nullptr, false);
        if (parsed.is_number()) return parsed;
      }
      return s;
    }
    default:
      return nullptr;
  }
}

}  // namespace

const std::string& OpenApiJson() {
  static const std::string kJson = [] {
    try {
      return ToJson(YAML::Load(OpenApiYaml())).dump();
    } catch (const std::exception& e) {
      spdlog::error("embedded OpenAPI document does not parse: {}", e.what());
      return std::string();
    }
  }();
  return kJson;
}

}  // namespace synaps::api
