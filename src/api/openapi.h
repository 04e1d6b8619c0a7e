// The OpenAPI 3.1 document of the Control API. The source is docs/api/openapi.yaml, embedded at
// build time; it is served as JSON at /openapi.json.
#pragma once

#include <string>

namespace synaps::api {

// The embedded YAML text.
const std::string& OpenApiYaml();
// The document as JSON text (converted once); "" if the embedded YAML cannot be parsed.
const std::string& OpenApiJson();

}  // namespace synaps::api
