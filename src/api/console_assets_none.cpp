// Linked instead of the generated asset table when the console is not built
// (-DSYNAPS_BUILD_CONSOLE=OFF): the API then serves no console.
#include "api/console_assets.h"

namespace synaps::api {

std::span<const ConsoleAsset> EmbeddedConsoleAssets() { return {}; }

}  // namespace synaps::api
