#include "control/template.h"

#include <algorithm>
#include <cctype>

namespace synaps::control {

using nlohmann::json;

namespace {

bool NameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool NameChar(char c) {
  return NameStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '.';
}

// One piece of a parsed template: literal text, or a placeholder's variable name.
struct Piece {
  bool placeholder = false;
  std::string text;
};

Result<std::vector<Piece>> Parse(std::string_view text, const std::string& field) {
  std::vector<Piece> pieces;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "\\{{") == 0) {
      literal += "{{";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "{{") != 0) {
      literal += text[i++];
      continue;
    }
    const size_t start = i;
    size_t j = i + 2;
    while (j < text.size() && text[j] == ' ') ++j;
    size_t name_begin = j;
    if (j < text.size() && NameStart(text[j])) {
      ++j;
      while (j < text.size() && NameChar(text[j])) ++j;
    }
    std::string name(text.substr(name_begin, j - name_begin));
    while (j < text.size() && text[j] == ' ') ++j;
    if (name.empty() || name.back() == '.' || text.compare(j, 2, "}}") != 0) {
      return Fail(ErrorCode::kInvalidArgument,
                  field + ": malformed placeholder at offset " + std::to_string(start) +
                      ": expected {{name}} with a name matching [A-Za-z_][A-Za-z0-9_.]* "
                      "(write \\{{ for a literal {{)",
                  field);
    }
    if (!literal.empty()) pieces.push_back({false, std::move(literal)});
    literal.clear();
    pieces.push_back({true, std::move(name)});
    i = j + 2;
  }
  if (!literal.empty()) pieces.push_back({false, std::move(literal)});
  return pieces;
}

// The value of `name` in `variables`: the exact key first, then a walk along the dots.
const json* Lookup(const json& variables, const std::string& name) {
  if (!variables.is_object()) return nullptr;
  if (auto it = variables.find(name); it != variables.end()) return &*it;
  const json* node = &variables;
  size_t begin = 0;
  while (begin <= name.size()) {
    size_t dot = name.find('.', begin);
    if (dot == std::string::npos) dot = name.size();
    if (!node->is_object()) return nullptr;
    auto it = node->find(name.substr(begin, dot - begin));
    if (it == node->end()) return nullptr;
    node = &*it;
    begin = dot + 1;
  }
  return node;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Status CheckTemplate(std::string_view text, const std::string& field) {
  RETURN_IF_ERROR(Parse(text, field));
  return Ok();
}

Result<std::vector<std::string>> TemplateVariables(std::string_view text) {
  ASSIGN_OR_RETURN(auto pieces, Parse(text, "template"));
  std::vector<std::string> names;
  for (const auto& p : pieces) {
    if (p.placeholder && std::find(names.begin(), names.end(), p.text) == names.end()) {
      names.push_back(p.text);
    }
  }
  return names;
}

Result<std::string> RenderTemplate(std::string_view text, const json& variables) {
  if (!variables.is_null() && !variables.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "variables must be an object", "variables");
  }
  ASSIGN_OR_RETURN(auto pieces, Parse(text, "template"));
  std::string out;
  for (const auto& p : pieces) {
    if (!p.placeholder) {
      out += p.text;
      continue;
    }
    const json* value = Lookup(variables, p.text);
    if (value == nullptr || value->is_null()) {
      ASSIGN_OR_RETURN(auto needed, TemplateVariables(text));
      return Fail(
          ErrorCode::kInvalidArgument,
          "missing template variable " + p.text + " (the template needs: " + Join(needed) + ")",
          "variables." + p.text);
    }
    if (value->is_string()) {
      out += value->get_ref<const std::string&>();
    } else {
      out += value->dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  return out;
}

}  // namespace synaps::control
