# One precompiled header for every target: LibTorch's headers take ~20 s per
# translation unit to parse, the PCH pays that once. Targets reuse the PCH of
# `aegis_pch`, an object library compiled with the same flags.
add_library(aegis_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(aegis_pch PUBLIC ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json)
target_include_directories(aegis_pch SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
target_compile_definitions(aegis_pch PUBLIC
  AEGIS_VERSION="${PROJECT_VERSION}"
  AEGIS_DATA_DIR="${PROJECT_SOURCE_DIR}/data")
target_compile_options(aegis_pch PRIVATE ${AEGIS_WARNINGS})
target_precompile_headers(aegis_pch PRIVATE
  <torch/torch.h>
  <torch/script.h>
  <nlohmann/json.hpp>
  <string>
  <vector>
  <memory>
  <optional>
  <functional>)

function(aegis_use_pch target)
  target_precompile_headers(${target} REUSE_FROM aegis_pch)
endfunction()
