// Small helpers for tests that talk SQL to the test stack's PostgreSQL: each fails the current
// test (a gtest failure) instead of returning an error, so a test reads as its steps.
#pragma once

#include <string>

#include "db/connection.h"

namespace synaps::testing {

// A connection to `url`; a failed connection fails the test (the returned one is then closed).
db::Connection Connect(const std::string& url);

// The first column of the first row of `sql` as text; "" when there is no row or it is NULL. A
// failing statement fails the test.
std::string QueryText(db::Connection& conn, const std::string& sql, const db::Params& params = {});

}  // namespace synaps::testing
