#include "CDemoModel.h"

// #embed is C23; clang accepts it in the default C mode with a pedantic warning, silenced for this file.
#pragma clang diagnostic ignored "-Wc23-extensions"

// Aligned like a page start, so tensor data keeps the alignment it has inside the file.
static const unsigned char config_json[] __attribute__((aligned(64))) = {
#embed "../../Models/onebit-demo/config.json"
};
static const unsigned char generation_config_json[] __attribute__((aligned(64))) = {
#embed "../../Models/onebit-demo/generation_config.json"
};
static const unsigned char model_safetensors[] __attribute__((aligned(64))) = {
#embed "../../Models/onebit-demo/model.safetensors"
};
static const unsigned char tokenizer_json[] __attribute__((aligned(64))) = {
#embed "../../Models/onebit-demo/tokenizer.json"
};
static const unsigned char tokenizer_config_json[] __attribute__((aligned(64))) = {
#embed "../../Models/onebit-demo/tokenizer_config.json"
};

static const ob_embedded_file files[] = {
    {"config.json", config_json, sizeof config_json},
    {"generation_config.json", generation_config_json, sizeof generation_config_json},
    {"model.safetensors", model_safetensors, sizeof model_safetensors},
    {"tokenizer.json", tokenizer_json, sizeof tokenizer_json},
    {"tokenizer_config.json", tokenizer_config_json, sizeof tokenizer_config_json},
};

const ob_embedded_file *ob_demo_model_files(size_t *count) {
    *count = sizeof files / sizeof files[0];
    return files;
}
