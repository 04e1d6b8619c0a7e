#include "history/gzip.h"

#include <zlib.h>

#include <algorithm>

namespace synaps::history {

std::string GzipMember(std::string_view data) {
  z_stream z{};
  // 15 + 16: a 32 KiB window with a gzip header and trailer (zlib writes mtime 0, no name).
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::bad_alloc();
  }
  std::string out;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  // deflateBound guarantees a single call with Z_FINISH completes.
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::logic_error("deflate did not finish within deflateBound");
  return out;
}

Result<std::string> Gunzip(std::string_view gzip, size_t max_bytes) {
  std::string out;
  size_t pos = 0;  // where the current member starts
  char buffer[64 * 1024];
  while (pos < gzip.size()) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) throw std::bad_alloc();
    int rc = Z_OK;
    while (rc == Z_OK) {
      // zlib counts input in 32-bit units: larger inputs go in slices.
      if (z.avail_in == 0) {
        const size_t at = pos + z.total_in;
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzip.data() + at));
        z.avail_in = static_cast<uInt>(std::min<size_t>(gzip.size() - at, size_t{1} << 30));
      }
      z.next_out = reinterpret_cast<Bytef*>(buffer);
      z.avail_out = sizeof(buffer);
      rc = inflate(&z, Z_NO_FLUSH);
      const size_t produced = sizeof(buffer) - z.avail_out;
      // Checked before the output grows: what the data inflates to is counted here, never taken
      // from the gzip trailer (ISIZE is the size modulo 2^32, and anyone may write it).
      if (produced > max_bytes - out.size()) {
        inflateEnd(&z);
        return Fail(ErrorCode::kResourceExhausted,
                    "gzip data inflates to more than " + std::to_string(max_bytes) + " bytes");
      }
      out.append(buffer, produced);
      if (rc == Z_BUF_ERROR) {
        if (z.avail_in == 0 && pos + z.total_in >= gzip.size()) break;  // input ended early
        rc = Z_OK;
      }
    }
    const size_t used = z.total_in;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
      return Fail(ErrorCode::kInvalidArgument,
                  rc == Z_BUF_ERROR ? "gzip data is cut short" : "not valid gzip data");
    }
    pos += used;
  }
  return out;
}

}  // namespace synaps::history
