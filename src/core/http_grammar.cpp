#include "core/http_grammar.h"

#include <cctype>

namespace synaps {

namespace {

bool IsTchar(unsigned char c) {
  if (std::isalnum(c) != 0 && c < 0x80) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// Reads 1*tchar at `i`; false when there is none.
bool ReadToken(std::string_view s, size_t& i) {
  size_t start = i;
  while (i < s.size() && IsTchar(static_cast<unsigned char>(s[i]))) ++i;
  return i > start;
}

void SkipOws(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE, ASCII only.
bool ReadQuotedString(std::string_view s, size_t& i) {
  if (i >= s.size() || s[i] != '"') return false;
  for (++i; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      ++i;
      return true;
    }
    if (c == '\\') {
      if (++i >= s.size()) return false;
      c = static_cast<unsigned char>(s[i]);
      if (c != '\t' && (c < 0x20 || c > 0x7E)) return false;
      continue;
    }
    if (c != '\t' && (c < 0x20 || c > 0x7E)) return false;
  }
  return false;
}

}  // namespace

bool IsHttpToken(std::string_view s) {
  size_t i = 0;
  return ReadToken(s, i) && i == s.size();
}

bool IsSafeHeaderValue(std::string_view value) {
  for (char ch : value) {
    unsigned char c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  if (!value.empty()) {
    char first = value.front();
    char last = value.back();
    if (first == ' ' || first == '\t' || last == ' ' || last == '\t') return false;
  }
  return true;
}

bool IsMediaType(std::string_view s) {
  if (s.empty() || s.size() > kMaxMediaTypeBytes) return false;
  size_t i = 0;
  if (!ReadToken(s, i) || i >= s.size() || s[i] != '/') return false;
  ++i;
  if (!ReadToken(s, i)) return false;
  while (true) {
    SkipOws(s, i);
    if (i == s.size()) return s.back() != ' ' && s.back() != '\t';
    if (s[i] != ';') return false;
    ++i;
    SkipOws(s, i);
    if (i == s.size()) return false;  // a trailing ";" with no parameter
    if (!ReadToken(s, i) || i >= s.size() || s[i] != '=') return false;
    ++i;
    if (i < s.size() && s[i] == '"') {
      if (!ReadQuotedString(s, i)) return false;
    } else if (!ReadToken(s, i)) {
      return false;
    }
  }
}

std::string MediaTypeEssence(std::string_view s) {
  if (!IsMediaType(s)) return {};
  size_t end = 0;
  while (end < s.size() && s[end] != ';' && s[end] != ' ' && s[end] != '\t') ++end;
  std::string out(s.substr(0, end));
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsTenantId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool alnum = c < 0x80 && std::isalnum(c) != 0;
    if (i == 0 ? !alnum : !(alnum || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace synaps
