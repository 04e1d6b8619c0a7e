// gzip (RFC 1952) through zlib, for archives. Compression is deterministic: no file name, and a
// modification time of 0, so the same bytes always give the same member.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::history {

// One complete gzip member holding `data`. Concatenated members are one valid gzip file.
std::string GzipMember(std::string_view data);

// Everything every member of `gzip` holds, concatenated. kInvalidArgument when the input is not
// gzip or is cut short; kResourceExhausted, before allocating more, when it inflates to more
// than `max_bytes` (counted while inflating; the gzip trailer's size is not trusted).
Result<std::string> Gunzip(std::string_view gzip, size_t max_bytes);

}  // namespace synaps::history
