// Identifiers, tokens and digests.
#pragma once

#include <string>
#include <string_view>

namespace synaps {

// A random (version 4) UUID in canonical lower-case form.
std::string NewUuid();
// True for the canonical 8-4-4-4-12 hex form (either case).
bool IsUuid(std::string_view s);
// `bytes` random bytes from the OS CSPRNG, hex-encoded.
std::string RandomHex(size_t bytes);
// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Constant-time comparison, for secrets.
bool SecureEquals(std::string_view a, std::string_view b);

}  // namespace synaps
