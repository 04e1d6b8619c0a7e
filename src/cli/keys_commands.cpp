// synaps keys create | revoke
#include <iostream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace synaps::cli {

using nlohmann::json;

int RunKeysCreate(const KeysCreateFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  json body = {{"role", flags.role}};
  if (flags.tenant) body["tenantId"] = *flags.tenant;
  if (flags.name) body["name"] = *flags.name;
  if (flags.installation) body["installation"] = true;
  auto key = client.Call("POST", "/v1/api-keys", &body);
  if (!key) return ReportError(key.error(), flags.json);
  if (flags.json) {
    std::cout << key->dump() << "\n";
    return 0;
  }
  std::cout << "API key " << key->value("id", "?") << " created: role " << key->value("role", "?")
            << ", tenant " << key->value("tenantId", "?");
  if (key->value("installation", false)) std::cout << ", installation scope";
  if ((*key)["name"].is_string())
    std::cout << ", name \"" << (*key)["name"].get<std::string>() << "\"";
  std::cout << "\n" << key->value("token", "") << "\n" << std::flush;
  std::cerr << "warning: store this token now. It is shown only once: the server keeps only its "
               "hash. Revoke it with `synaps keys revoke "
            << key->value("id", "?") << "`.\n";
  return 0;
}

int RunKeysRevoke(const std::string& key_id, bool as_json) {
  ApiClient client = ApiClient::FromEnvironment();
  auto revoked = client.Call("DELETE", "/v1/api-keys/" + PercentEncode(key_id));
  if (!revoked) return ReportError(revoked.error(), as_json);
  if (as_json) {
    std::cout << revoked->dump() << "\n";
  } else {
    std::cout << "API key " << key_id << " revoked\n";
  }
  return 0;
}

}  // namespace synaps::cli
