#include "store/detail/json_column.h"

#include <string>

namespace synaps::store::detail {

Result<nlohmann::json> ParseColumn(std::string_view text, std::string_view what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Fail(ErrorCode::kInternal,
                std::string(what) + " stored in PostgreSQL does not read as JSON: " + e.what());
  }
}

}  // namespace synaps::store::detail
