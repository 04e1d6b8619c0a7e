// Prompt templates: text with `{{variable}}` placeholders. Pure functions, no I/O.
//
// A placeholder is `{{`, optional spaces, a name matching [A-Za-z_][A-Za-z0-9_.]*, optional
// spaces, `}}`. `\{{` stands for a literal `{{`. Any other `{{` is a syntax error, so that a
// typo never renders as text. A dotted name `a.b` is the variable "a.b" if one has that exact
// name, else member b of object variable a.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace synaps::control {

// kInvalidArgument (field = `field`) naming the offset of the first malformed placeholder.
Status CheckTemplate(std::string_view text, const std::string& field = "template");

// The distinct variable names the template uses, in order of first use. Fails like
// CheckTemplate.
Result<std::vector<std::string>> TemplateVariables(std::string_view text);

// Substitutes every placeholder. `variables` is a JSON object (null counts as empty). Strings
// render as they are; numbers and booleans as JSON text; objects and arrays as compact JSON.
// A variable that is absent or null fails with kInvalidArgument, field "variables.<name>",
// naming it and every variable the template needs — never a silent blank.
Result<std::string> RenderTemplate(std::string_view text, const nlohmann::json& variables);

}  // namespace synaps::control
