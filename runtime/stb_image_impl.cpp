// stb_image_impl.cpp: the one translation unit that compiles stb_image (Debian's libstb-dev header,
// <stb/stb_image.h>, v2.27), with only the decoders the runtime offers: JPEG, PNG, BMP, GIF, TGA, PNM.
// Everything is decoded from memory (image.cpp reads the file and checks it first), so stdio is left out.
// Its failure reason is thread-local (STBI_THREAD_LOCAL), so decoding from several threads is safe.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_ONLY_PNM
#define STBI_NO_STDIO

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif
#include <stb/stb_image.h>  // stbi_info_from_memory, stbi_load_from_memory, stbi_load_16_from_memory
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
