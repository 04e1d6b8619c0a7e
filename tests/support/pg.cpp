#include "support/pg.h"

#include <gtest/gtest.h>

namespace synaps::testing {

db::Connection Connect(const std::string& url) {
  auto c = db::Connection::Connect(url);
  EXPECT_TRUE(c) << c.error().message;
  return c ? std::move(*c) : db::Connection();
}

std::string QueryText(db::Connection& conn, const std::string& sql, const db::Params& params) {
  auto r = conn.Exec(sql, params);
  EXPECT_TRUE(r) << r.error().message << "\n" << sql;
  return r && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : std::string();
}

}  // namespace synaps::testing
