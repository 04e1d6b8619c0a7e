#include "cli/output.h"

#include <iostream>
#include <nlohmann/json.hpp>

namespace synaps::cli {

int ReportError(const Error& error, bool as_json, int exit_code) {
  if (as_json) {
    nlohmann::json out = {
        {"error", {{"code", std::string(ErrorCodeName(error.code))}, {"message", error.message}}}};
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cerr << "error: " << error.message << "\n";
  }
  return exit_code;
}

}  // namespace synaps::cli
