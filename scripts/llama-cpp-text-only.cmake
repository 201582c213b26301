# Included right after llama.cpp's project() when noxfile.py builds llama-cpp-python
# (-DCMAKE_PROJECT_llama.cpp_INCLUDE=<this file>).
#
# Why: llama-cpp-python's CMakeLists forces llama.cpp's `common` library on (LLAMA_BUILD_COMMON with FORCE,
# so -DLLAMA_BUILD_COMMON=OFF is overwritten), though only its multimodal library links it, and that is
# not built here (-DLLAVA_BUILD=OFF). `common` was 45% of the compile: without it the build took 85 s
# instead of 175 s on 2 idle cores, and the wheel's libllama, libggml* answer the same tokens at the same
# speed (docs/development.md, "Measured times").
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
