// LogTraceScope (core/log.h): the log lines a thread writes inside a scope name its trace.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/log.h"

namespace synaps {
namespace {

TEST(LogTraceScopeTest, ScopesNestAndEndOnTheirThread) {
  EXPECT_EQ(CurrentLogTraceId(), "");
  {
    LogTraceScope outer("aaaa");
    EXPECT_EQ(CurrentLogTraceId(), "aaaa");
    {
      LogTraceScope inner("bbbb");
      EXPECT_EQ(CurrentLogTraceId(), "bbbb");
      std::thread([] { EXPECT_EQ(CurrentLogTraceId(), "") << "per thread"; }).join();
    }
    EXPECT_EQ(CurrentLogTraceId(), "aaaa");
  }
  EXPECT_EQ(CurrentLogTraceId(), "");
}

TEST(LogTraceScopeTest, JsonAndTextLinesNameTheTrace) {
  for (bool json_lines : {true, false}) {
    InitLogging("info", json_lines);
    std::ostringstream out;
    auto logger = spdlog::default_logger();
    logger->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    InitLogging("info", json_lines);  // formats every sink of the logger, ours too
    spdlog::info("outside");
    {
      LogTraceScope scope("4bf92f3577b34da6a3ce929d0e0e4736");
      spdlog::info("inside");
    }
    logger->sinks().pop_back();
    std::istringstream lines(out.str());
    std::string outside, inside;
    std::getline(lines, outside);
    std::getline(lines, inside);
    if (json_lines) {
      auto a = nlohmann::json::parse(outside);
      auto b = nlohmann::json::parse(inside);
      EXPECT_FALSE(a.contains("traceId")) << outside;
      EXPECT_EQ(b["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736") << inside;
      EXPECT_EQ(b["msg"], "inside");
    } else {
      EXPECT_EQ(outside.find("trace="), std::string::npos) << outside;
      EXPECT_TRUE(inside.ends_with("inside trace=4bf92f3577b34da6a3ce929d0e0e4736")) << inside;
    }
  }
}

}  // namespace
}  // namespace synaps
