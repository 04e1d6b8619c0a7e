#include "k8s/in_cluster_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace synaps::k8s {
namespace {

namespace fs = std::filesystem;

class InClusterConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = fs::temp_directory_path() / "synaps-k8s-config-XXXXXX";
    ASSERT_NE(mkdtemp(base.data()), nullptr);
    dir = base;
    Write("token", "eyJ-token\n");
    Write("ca.crt", "-----BEGIN CERTIFICATE-----\n");
    Write("namespace", "agents\n");
    env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  }
  void TearDown() override { fs::remove_all(dir); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  }

  Result<InClusterConfig> Load() {
    InClusterSources sources;
    sources.service_account_dir = dir;
    sources.env = [this](const char* name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end() || it->second.empty()) return std::nullopt;
      return it->second;
    };
    return LoadInClusterConfig(sources);
  }

  std::string dir;
  std::map<std::string, std::string> env;
};

TEST_F(InClusterConfigTest, ReadsThePodsConfiguration) {
  auto c = Load();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_path, dir + "/token");
  EXPECT_EQ(c->ca_path, dir + "/ca.crt");
  EXPECT_EQ(c->namespace_name, "agents");
}

TEST_F(InClusterConfigTest, NotInAClusterIsAClearError) {
  env.erase("KUBERNETES_SERVICE_HOST");
  auto c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(c.error().field, "KUBERNETES_SERVICE_HOST");
  EXPECT_NE(c.error().message.find("not running in a Kubernetes cluster"), std::string::npos)
      << c.error().message;

  env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
  env.erase("KUBERNETES_SERVICE_PORT");
  c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(c.error().field, "KUBERNETES_SERVICE_PORT");
}

TEST_F(InClusterConfigTest, NoMountedTokenIsAClearError) {
  fs::remove(dir + "/token");
  auto c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_NE(c.error().message.find("no service-account token at " + dir + "/token"),
            std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("automountServiceAccountToken"), std::string::npos);
}

TEST_F(InClusterConfigTest, NoCaIsAClearError) {
  fs::remove(dir + "/ca.crt");
  auto c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_NE(c.error().message.find("no cluster CA at " + dir + "/ca.crt"), std::string::npos);
}

TEST_F(InClusterConfigTest, NamespaceFromTheFileFirstThenPodNamespace) {
  env["POD_NAMESPACE"] = "other";
  auto c = Load();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->namespace_name, "agents");

  fs::remove(dir + "/namespace");
  c = Load();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->namespace_name, "other");

  env.erase("POD_NAMESPACE");
  c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_NE(c.error().message.find("POD_NAMESPACE"), std::string::npos);
}

TEST_F(InClusterConfigTest, RefusesMalformedValues) {
  Write("namespace", "Agents/../kube-system");
  auto c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.error().field, "namespace");

  Write("namespace", "agents");
  env["KUBERNETES_SERVICE_PORT"] = "https";
  c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.error().field, "KUBERNETES_SERVICE_PORT");

  env["KUBERNETES_SERVICE_PORT"] = "443";
  env["KUBERNETES_SERVICE_HOST"] = "evil.example/x?";
  c = Load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().field, "KUBERNETES_SERVICE_HOST");
}

TEST_F(InClusterConfigTest, BracketsAnIpv6Host) {
  env["KUBERNETES_SERVICE_HOST"] = "fd00:10:96::1";
  auto c = Load();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server, "https://[fd00:10:96::1]:443");
}

TEST_F(InClusterConfigTest, ServiceAccountDirFromTheEnvironment) {
  env["SYNAPS_K8S_SERVICE_ACCOUNT_DIR"] = dir + "/";
  InClusterSources sources;  // no directory given
  sources.env = [this](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto c = LoadInClusterConfig(sources);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->token_path, dir + "/token");
}

TEST(ValidNamespaceTest, AcceptsRfc1123Labels) {
  EXPECT_TRUE(ValidNamespace("synaps-runtime"));
  EXPECT_TRUE(ValidNamespace("a"));
  EXPECT_TRUE(ValidNamespace(std::string(63, 'a')));
  EXPECT_FALSE(ValidNamespace(std::string(64, 'a')));
  EXPECT_FALSE(ValidNamespace(""));
  EXPECT_FALSE(ValidNamespace("-a"));
  EXPECT_FALSE(ValidNamespace("a-"));
  EXPECT_FALSE(ValidNamespace("A"));
  EXPECT_FALSE(ValidNamespace("a.b"));
}

TEST(KubeClientOptionsTest, FromTheEnvironment) {
  setenv("SYNAPS_K8S_TIMEOUT_MS", "2500", 1);
  setenv("SYNAPS_K8S_CONNECT_TIMEOUT_MS", "700", 1);
  auto o = KubeClientOptionsFromEnv();
  EXPECT_EQ(o.request_timeout.count(), 2500);
  EXPECT_EQ(o.connect_timeout.count(), 700);
  setenv("SYNAPS_K8S_TIMEOUT_MS", "soon", 1);
  EXPECT_THROW(KubeClientOptionsFromEnv(), ConfigError);
  unsetenv("SYNAPS_K8S_TIMEOUT_MS");
  unsetenv("SYNAPS_K8S_CONNECT_TIMEOUT_MS");
  EXPECT_EQ(KubeClientOptionsFromEnv().request_timeout.count(), 15000);
}

}  // namespace
}  // namespace synaps::k8s
