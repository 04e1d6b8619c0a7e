# synaps_library(NAME SRCS ... DEPS ...): one static library per component, named synaps_<NAME>,
# with src/ as its include root so headers are included as "component/header.h".
function(synaps_library NAME)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(synaps_${NAME} STATIC ${ARG_SRCS})
  target_include_directories(synaps_${NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(synaps_${NAME} PUBLIC ${ARG_DEPS})
endfunction()

# Turns db/migrations/*.sql into a C++ source holding them in order, so the binary carries its
# schema and `synaps migrate` needs no files at run time.
function(synaps_embed_migrations OUT_VAR)
  file(GLOB migrations CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/db/migrations/*.sql)
  list(SORT migrations)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_migrations.cpp)
  string(REPLACE ";" "|" files_arg "${migrations}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} "-DFILES=${files_arg}"
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    DEPENDS ${migrations} ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    COMMENT "Embedding database migrations"
    VERBATIM)
  set(${OUT_VAR} ${out} PARENT_SCOPE)
endfunction()

# Embeds docs/api/openapi.yaml as synaps::api::OpenApiYaml().
function(synaps_embed_openapi OUT_VAR)
  set(src ${PROJECT_SOURCE_DIR}/docs/api/openapi.yaml)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_openapi.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSRC=${src}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedOpenApi.cmake
    DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/EmbedOpenApi.cmake
    COMMENT "Embedding the OpenAPI document"
    VERBATIM)
  set(${OUT_VAR} ${out} PARENT_SCOPE)
endfunction()
