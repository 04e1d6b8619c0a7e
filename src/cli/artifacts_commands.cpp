// synaps artifacts get
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/http_stream.h"
#include "cli/output.h"
#include "core/ids.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

// Versions are numbered 1, 2, ... without gaps; more than this many is not plausible.
constexpr int kMaxVersion = 1 << 30;

std::string ContentPath(const std::string& artifact_id, int version) {
  return "/v1/artifacts/" + PercentEncode(artifact_id) + "/versions/" + std::to_string(version) +
         "/content";
}

// Whether `version` exists, without downloading it: the GET stops as soon as a 200 status
// arrives (there is no metadata endpoint for artifacts yet).
Result<bool> VersionExists(const ApiClient& client, const std::string& artifact_id, int version) {
  StreamRequest req;
  req.url = client.base_url() + ContentPath(artifact_id, version);
  req.headers = client.AuthHeaders();
  StreamCallbacks callbacks;
  callbacks.on_status = [](long status) { return status != 200; };
  auto end = StreamGet(req, callbacks);
  if (!end) {
    return Fail(end.error().code, end.error().message +
                                      ". Is the API running? Start one with `synaps dev` or set "
                                      "SYNAPS_API_URL.");
  }
  if (end->status == 200) return true;
  if (end->status == 404 && version > 1) return false;
  return std::unexpected(client.ErrorForStatus(end->status, end->error_body));
}

// The highest version: doubling until one is missing, then bisecting.
Result<int> LatestVersion(const ApiClient& client, const std::string& artifact_id) {
  ASSIGN_OR_RETURN(bool first, VersionExists(client, artifact_id, 1));
  if (!first) return Fail(ErrorCode::kNotFound, "artifact " + artifact_id + " has no versions");
  int present = 1;
  int missing = 2;
  while (true) {
    ASSIGN_OR_RETURN(bool exists, VersionExists(client, artifact_id, missing));
    if (!exists) break;
    present = missing;
    if (missing >= kMaxVersion / 2) return present;
    missing *= 2;
  }
  while (missing - present > 1) {
    int mid = present + (missing - present) / 2;
    ASSIGN_OR_RETURN(bool exists, VersionExists(client, artifact_id, mid));
    (exists ? present : missing) = mid;
  }
  return present;
}

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool IsUtf8(const std::string& bytes) {
  try {
    (void)json(bytes).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// Writes `bytes` to `path` through a temporary file in the same directory, so a reader never
// sees half a file.
Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".synaps-tmp-" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return Fail(ErrorCode::kInvalidArgument,
                  "cannot write " + path + ": " + std::strerror(errno));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::filesystem::remove(tmp);
      return Fail(ErrorCode::kInternal, "cannot write " + path + ": " + std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    return Fail(ErrorCode::kInternal, "cannot write " + path + ": " + ec.message());
  }
  return Ok();
}

}  // namespace

int RunArtifactsGet(const ArtifactsGetFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  int version = 0;
  if (flags.version) {
    version = *flags.version;
  } else {
    auto latest = LatestVersion(client, flags.artifact_id);
    if (!latest) return ReportError(latest.error(), flags.json);
    version = *latest;
  }
  auto res = client.Download(ContentPath(flags.artifact_id, version), std::chrono::minutes(10));
  if (!res) return ReportError(res.error(), flags.json);
  const std::string& bytes = res->body;
  std::string content_type =
      res->headers.contains("content-type") ? res->headers["content-type"] : "";
  std::string etag = res->headers.contains("etag") ? res->headers["etag"] : "";
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::string sha256 = Sha256Hex(bytes);
  if (!etag.empty() && etag != sha256) {
    return ReportError(Error{ErrorCode::kInternal,
                             "the bytes received do not match their SHA-256 (ETag " + etag +
                                 "): the transfer was damaged; try again",
                             {}},
                       flags.json);
  }
  bool to_file = flags.output_path && *flags.output_path != "-";
  if (to_file) {
    if (auto written = WriteFileAtomically(*flags.output_path, bytes); !written) {
      return ReportError(written.error(), flags.json);
    }
  }
  if (flags.json) {
    json out = {{"artifactId", flags.artifact_id},
                {"version", version},
                {"contentType", content_type},
                {"size", bytes.size()},
                {"sha256", sha256}};
    if (to_file) {
      out["path"] = *flags.output_path;
    } else if (IsUtf8(bytes)) {
      out["content"] = bytes;
    } else {
      out["contentBase64"] = Base64(bytes);
    }
    std::cout << out.dump() << "\n";
  } else if (to_file) {
    std::cout << "wrote " << bytes.size() << " bytes to " << *flags.output_path << " (artifact "
              << flags.artifact_id << " version " << version << ", " << content_type << ")\n";
  } else {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::cout.flush();
  }
  return 0;
}

}  // namespace synaps::cli
