# Script mode: writes OUT, a C++ file defining synaps::api::OpenApiYaml() from SRC.
file(READ ${SRC} yaml)
set(body "// Generated from docs/api/openapi.yaml by cmake/EmbedOpenApi.cmake. Do not edit.\n")
string(APPEND body "#include \"api/openapi.h\"\n\nnamespace synaps::api {\n\n")
string(APPEND body "const std::string& OpenApiYaml() {\n")
string(APPEND body "  static const std::string kYaml = R\"synaps_yaml(${yaml})synaps_yaml\";\n")
string(APPEND body "  return kYaml;\n}\n\n}  // namespace synaps::api\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
