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
// The same, drawn from a per-thread pool of the CSPRNG's output refilled 4 KiB at a time: as
// unpredictable as RandomHex, at a fraction of its cost per call (one RAND_bytes call takes a
// lock and runs the DRBG). For ids made many times per task (trace and span ids); not for
// secrets, whose bytes should not wait in memory before use. `bytes` at most 64.
std::string PooledRandomHex(size_t bytes);
// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Constant-time comparison, for secrets.
bool SecureEquals(std::string_view a, std::string_view b);

}  // namespace synaps
