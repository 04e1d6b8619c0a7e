// Regular expressions that operators write (regex checks, JSON Schema `pattern` and
// `patternProperties`) and that run on untrusted text (model answers, tool arguments). They use
// RE2: matching takes time linear in the text and never recurses, so no pattern and no answer
// can stall or crash a worker (std::regex backtracks and recurses per character). RE2 syntax is
// close to ECMAScript's without backreferences and lookaround (docs/control.md).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::control {

// Ok when `pattern` compiles; kInvalidArgument with RE2's reason otherwise (field left empty).
Status CheckPattern(std::string_view pattern);

// True when `pattern` matches somewhere in `text` (an unanchored search). A pattern that does
// not compile matches nothing. Compiled patterns are cached per thread.
bool PatternFound(std::string_view pattern, std::string_view text);

}  // namespace synaps::control
