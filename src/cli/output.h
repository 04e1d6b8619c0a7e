// How the client verbs report: a person gets text (errors on stderr), a script gets JSON on
// stdout with --json, errors included as {"error": {"code", "message"}}.
#pragma once

#include "core/error.h"

namespace synaps::cli {

// Prints `error` for a person (stderr) or as JSON (stdout); returns `exit_code`.
int ReportError(const Error& error, bool as_json, int exit_code = 1);

}  // namespace synaps::cli
