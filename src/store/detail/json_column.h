// Reading json and jsonb values back from PostgreSQL without trusting them. PostgreSQL checked
// their syntax, but not everything it accepts reads back (jsonb keeps numbers that no double can
// hold, such as 1e400), and a row that an older release, a migration or a person wrote may have
// any shape. A value that does not read fails the one call (or, for claims, the one task) that
// read it, with an error naming what was read; it never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"

namespace synaps::store::detail {

// `text` as JSON; kInternal "<what> stored in PostgreSQL does not read as JSON: <why>" otherwise.
Result<nlohmann::json> ParseColumn(std::string_view text, std::string_view what);

}  // namespace synaps::store::detail
