// The OpenAPI document (docs/api/openapi.yaml, embedded at build time) against the router:
// every route the router serves is documented and every documented operation is served; each
// operation's documented roles follow RoleAllows for its documented permission, and the router
// refuses (403) exactly the roles the document leaves out.
#include "api/openapi.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "api/router.h"
#include "auth/jwt.h"
#include "db/pool.h"

namespace synaps::api {
namespace {

using nlohmann::json;
using Operation = std::pair<std::string, std::string>;  // (METHOD, path pattern)

const std::set<std::string> kHttpMethods = {"get",   "put",  "post",    "delete",
                                            "patch", "head", "options", "trace"};
const std::vector<std::string> kRoles = {"admin", "operator", "worker", "viewer", "user"};

const json& Doc() {
  static const json kDoc = json::parse(OpenApiJson(), nullptr, /*allow_exceptions=*/false);
  return kDoc;
}

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every (METHOD, path) the document describes, with its operation object.
std::map<Operation, json> DocumentedOperations() {
  std::map<Operation, json> out;
  if (!Doc().is_object() || !Doc().contains("paths")) return out;
  for (const auto& [path, item] : Doc()["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      if (kHttpMethods.contains(method)) out[{Upper(method), path}] = op;
    }
  }
  return out;
}

// The {name} parameters of a path pattern, in order.
std::vector<std::string> PathParams(const std::string& pattern) {
  std::vector<std::string> out;
  for (size_t open = pattern.find('{'); open != std::string::npos;
       open = pattern.find('{', open + 1)) {
    size_t close = pattern.find('}', open);
    if (close == std::string::npos) break;
    out.push_back(pattern.substr(open + 1, close - open - 1));
  }
  return out;
}

// The pattern with every {name} replaced by `value`.
std::string FillParams(const std::string& pattern, const std::string& value) {
  std::string out = pattern;
  for (const auto& name : PathParams(pattern)) {
    std::string param = "{" + name + "}";
    out.replace(out.find(param), param.size(), value);
  }
  return out;
}

bool IsStatusCode(const std::string& s) {
  return s.size() == 3 && s[0] >= '1' && s[0] <= '5' &&
         std::isdigit(static_cast<unsigned char>(s[1])) &&
         std::isdigit(static_cast<unsigned char>(s[2]));
}

std::string Describe(const std::set<Operation>& ops) {
  std::string s;
  for (const auto& [m, p] : ops) s += "\n  " + m + " " + p;
  return s;
}

// Follows a local "$ref" ("#/components/...") to its target; null when it does not resolve.
json Resolve(const json& node) {
  if (!node.is_object() || !node.contains("$ref")) return node;
  std::string ref = node["$ref"].get<std::string>();
  if (!ref.starts_with("#/")) return nullptr;
  json::json_pointer ptr(ref.substr(1));
  return Doc().contains(ptr) ? Doc()[ptr] : json(nullptr);
}

std::optional<Permission> ParsePermission(const std::string& s) {
  if (s == "none") return Permission::kNone;
  if (s == "read") return Permission::kRead;
  if (s == "submit") return Permission::kSubmit;
  if (s == "operate") return Permission::kOperate;
  if (s == "work") return Permission::kWork;
  if (s == "admin") return Permission::kAdmin;
  if (s == "control") return Permission::kControl;
  if (s == "installation-admin") return Permission::kInstallationAdmin;
  return std::nullopt;
}

TEST(OpenApiTest, EmbeddedDocumentIsOpenApi31) {
  ASSERT_FALSE(OpenApiYaml().empty());
  ASSERT_FALSE(OpenApiJson().empty()) << "docs/api/openapi.yaml does not parse";
  ASSERT_TRUE(Doc().is_object());
  ASSERT_TRUE(Doc()["openapi"].is_string()) << "openapi must be a (quoted) string";
  EXPECT_TRUE(Doc()["openapi"].get<std::string>().starts_with("3.1."))
      << Doc()["openapi"].get<std::string>();
  EXPECT_TRUE(Doc()["info"]["title"].is_string());
  EXPECT_TRUE(Doc()["info"]["version"].is_string()) << "quote a version that reads as a number";
  ASSERT_TRUE(Doc()["paths"].is_object());
  EXPECT_FALSE(Doc()["paths"].empty());
  EXPECT_EQ(Doc()["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

TEST(OpenApiTest, EveryRouteIsDocumented) {
  auto documented = DocumentedOperations();
  std::set<Operation> missing;
  for (const auto& route : Router::RouteList()) {
    if (!documented.contains(route)) missing.insert(route);
  }
  EXPECT_TRUE(missing.empty()) << "routes missing from docs/api/openapi.yaml:" << Describe(missing);
}

TEST(OpenApiTest, EveryDocumentedOperationIsRouted) {
  auto routes = Router::RouteList();
  std::set<Operation> routed(routes.begin(), routes.end());
  std::set<Operation> extra;
  for (const auto& [op, _] : DocumentedOperations()) {
    if (!routed.contains(op)) extra.insert(op);
  }
  EXPECT_TRUE(extra.empty()) << "docs/api/openapi.yaml documents operations the router lacks:"
                             << Describe(extra);
}

TEST(OpenApiTest, OperationsAreComplete) {
  std::set<std::string> operation_ids;
  for (const auto& [op, body] : DocumentedOperations()) {
    const std::string where = op.first + " " + op.second;
    ASSERT_TRUE(body.is_object()) << where;
    ASSERT_TRUE(body.contains("operationId")) << where;
    EXPECT_TRUE(operation_ids.insert(body["operationId"].get<std::string>()).second)
        << where << ": duplicate operationId";
    ASSERT_TRUE(body["responses"].is_object()) << where;
    bool has_success = false;
    for (const auto& [status, response] : body["responses"].items()) {
      EXPECT_TRUE(IsStatusCode(status)) << where << ": " << status;
      if (status.starts_with("2")) has_success = true;
      EXPECT_TRUE(Resolve(response).is_object()) << where << " " << status << ": unresolved";
    }
    EXPECT_TRUE(has_success) << where << ": no 2xx response";

    // Path parameters: each {name} in the path is declared, in: path, required.
    std::set<std::string> declared;
    for (const auto& p : body.value("parameters", json::array())) {
      json param = Resolve(p);
      ASSERT_TRUE(param.is_object()) << where << ": unresolved parameter " << p.dump();
      if (param["in"] == "path") {
        EXPECT_EQ(param["required"], true) << where << ": path parameter must be required";
        declared.insert(param["name"].get<std::string>());
      }
    }
    auto params = PathParams(op.second);
    std::set<std::string> in_path(params.begin(), params.end());
    EXPECT_EQ(declared, in_path) << where << ": path parameters declared vs. in the path";

    // The permission, the roles that hold it, and whether a token is needed at all.
    ASSERT_TRUE(body["x-synaps-permission"].is_string()) << where;
    auto permission = ParsePermission(body["x-synaps-permission"].get<std::string>());
    ASSERT_TRUE(permission) << where << ": unknown x-synaps-permission";
    ASSERT_TRUE(body["x-synaps-roles"].is_array()) << where;
    std::set<std::string> roles = body["x-synaps-roles"].get<std::set<std::string>>();
    if (*permission == Permission::kNone) {
      EXPECT_EQ(roles, std::set<std::string>{"anyone"}) << where;
      EXPECT_EQ(body["security"], json::array()) << where << ": public route needs security: []";
    } else {
      std::set<std::string> allowed;
      for (const auto& r : kRoles) {
        if (RoleAllows(r, *permission)) allowed.insert(r);
      }
      EXPECT_EQ(roles, allowed) << where << ": x-synaps-roles disagrees with RoleAllows";
      // kControl (the control registry's writes) is documented with the scope it needs.
      EXPECT_EQ(
          *permission == Permission::kControl || *permission == Permission::kInstallationAdmin,
          body.value("x-synaps-scope", "") == "installation")
          << where
          << ": x-synaps-scope: installation goes with x-synaps-permission: control or "
             "installation-admin";
      EXPECT_FALSE(body.contains("security")) << where << ": authenticated routes use the default";
      EXPECT_TRUE(body["responses"].contains("401")) << where;
      EXPECT_TRUE(body["responses"].contains("403")) << where;
    }
  }
}

// Every "$ref" anywhere in the document points at something that exists.
void CheckRefs(const json& node, const std::string& where) {
  if (node.is_object()) {
    if (node.contains("$ref")) {
      EXPECT_TRUE(node["$ref"].is_string() && !Resolve(node).is_null())
          << where << ": $ref " << node["$ref"].dump() << " does not resolve";
    }
    for (const auto& [k, v] : node.items()) CheckRefs(v, where + "/" + k);
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) CheckRefs(node[i], where + "/" + std::to_string(i));
  }
}

TEST(OpenApiTest, ReferencesResolve) { CheckRefs(Doc(), "#"); }

// The router itself, with a pool whose PostgreSQL refuses connections and JWTs for each role:
// a role the document leaves out gets 403 before the handler runs; a documented role gets past
// the role check (to validation, or to 503 from the missing database). No token: 401.
class RouterRolesTest : public ::testing::Test {
 protected:
  static constexpr const char* kSecret = "openapi-test-secret-of-at-least-32-bytes";

  void SetUp() override { spdlog::set_level(spdlog::level::warn); }

  static std::string TokenFor(const std::string& role, bool installation = false) {
    auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto claims = auth::NewClaims("tenant-a", role, "openapi-test", std::chrono::minutes(5), now);
    claims.installation = installation;
    auto token = auth::Mint(claims, kSecret);
    EXPECT_TRUE(token) << token.error().message;
    return token ? *token : std::string();
  }

  static HttpRequest RequestFor(const Operation& op, const std::string& token) {
    HttpRequest req;
    req.method = op.first;
    // Path parameters that no handler accepts keep the handlers away from the database.
    req.target = FillParams(op.second, "x");
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    if (op.first == "POST") {
      req.headers["content-type"] = "application/json";
      req.body = "{}";
    }
    return req;
  }
};

TEST_F(RouterRolesTest, RouterRefusesExactlyTheUndocumentedRoles) {
  db::Pool pool("host=127.0.0.1 port=1 connect_timeout=2", 1);
  RouterDeps deps;
  deps.pool = &pool;
  deps.jwt_secret = kSecret;
  deps.openapi_json = OpenApiJson();
  Router router(std::move(deps));
  std::map<std::string, std::string> tokens;
  std::map<std::string, std::string> installation_tokens;
  for (const auto& r : kRoles) {
    tokens[r] = TokenFor(r);
    installation_tokens[r] = TokenFor(r, /*installation=*/true);
  }

  auto documented = DocumentedOperations();
  for (const auto& route : Router::RouteList()) {
    auto it = documented.find(route);
    if (it == documented.end()) continue;  // reported by EveryRouteIsDocumented
    const std::string where = route.first + " " + route.second;
    auto roles = it->second.value("x-synaps-roles", json::array()).get<std::set<std::string>>();
    HttpResponse anonymous = router.Handle(RequestFor(route, ""));
    if (roles.contains("anyone")) {
      EXPECT_NE(anonymous.status, 401) << where << " is documented as public";
      EXPECT_NE(anonymous.status, 403) << where << " is documented as public";
      continue;
    }
    EXPECT_EQ(anonymous.status, 401) << where << ": " << anonymous.body;
    // An operation documented with x-synaps-scope: installation refuses every role without it.
    bool needs_installation = it->second.value("x-synaps-scope", "") == "installation";
    for (const auto& role : kRoles) {
      if (needs_installation) {
        HttpResponse tenant_only = router.Handle(RequestFor(route, tokens[role]));
        EXPECT_EQ(tenant_only.status, 403) << where << " without the installation scope as "
                                           << role << ": " << tenant_only.body;
      }
      HttpResponse res = router.Handle(
          RequestFor(route, needs_installation ? installation_tokens[role] : tokens[role]));
      EXPECT_NE(res.status, 401) << where << " as " << role << ": " << res.body;
      if (roles.contains(role)) {
        EXPECT_NE(res.status, 403)
            << where << " is documented for role " << role << ": " << res.body;
      } else {
        EXPECT_EQ(res.status, 403)
            << where << " is not documented for role " << role << ": " << res.body;
        json body = json::parse(res.body, nullptr, false);
        EXPECT_EQ(body["error"]["code"], "permission_denied") << res.body;
      }
    }
  }
}

// An API process without an object store cannot read archives: 503 archive_unavailable, as a
// JSON error, before any database or store is touched.
TEST_F(RouterRolesTest, ArchiveReadsWithoutAnObjectStoreAnswer503) {
  db::Pool pool("host=127.0.0.1 port=1 connect_timeout=2", 1);
  RouterDeps deps;
  deps.pool = &pool;
  deps.jwt_secret = kSecret;
  Router router(std::move(deps));
  HttpRequest req;
  req.method = "GET";
  req.target = "/v1/runs/0190c0de-0000-7000-8000-000000000001/archive";
  req.headers["authorization"] = "Bearer " + TokenFor("viewer");
  HttpResponse res = router.Handle(req);
  ASSERT_EQ(res.status, 503) << res.body;
  json body = json::parse(res.body, nullptr, false);
  EXPECT_EQ(body["error"]["code"], "archive_unavailable") << res.body;
  EXPECT_TRUE(Doc()["paths"]["/v1/runs/{id}/archive"]["get"]["responses"].contains("503"));
}

TEST_F(RouterRolesTest, ServesTheDocumentAsJson) {
  db::Pool pool("host=127.0.0.1 port=1 connect_timeout=2", 1);
  RouterDeps deps;
  deps.pool = &pool;
  deps.openapi_json = OpenApiJson();
  Router router(std::move(deps));
  HttpRequest req;
  req.method = "GET";
  req.target = "/openapi.json";
  HttpResponse res = router.Handle(req);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(Lower(res.content_type), "application/json");
  EXPECT_EQ(json::parse(res.body, nullptr, false), Doc());
}

}  // namespace
}  // namespace synaps::api
