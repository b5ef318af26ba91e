/*
 * llama.cpp's own prompt (pp) and generation (tg) measurement, on the
 * llama.cpp sources vendored in the llama-cpp-sys-2 crate, through its C API.
 *
 * The crate ships llama.cpp's library sources but not its tools, so this is
 * the method of llama.cpp's llama-bench, restated: a warm-up run, then
 * `reps` runs of each test on a cleared context; pp decodes `n_prompt`
 * tokens (BOS then pseudo-random ids) in one batch, tg decodes `n_gen`
 * tokens one at a time starting from BOS; tokens/s is the mean over runs.
 *
 * usage: pp_tg MODEL THREADS N_PROMPT N_GEN REPS
 * prints one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static long rss_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0) {
            kib = strtol(line + n + 1, NULL, 10);
        }
    }
    fclose(f);
    return kib;
}

static unsigned long long lcg = 42;
static llama_token random_token(int n_vocab) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (llama_token)((lcg >> 33) % (unsigned long long)n_vocab);
}

static int pp(struct llama_context *ctx, const struct llama_vocab *vocab, int n_prompt, int n_vocab) {
    llama_token *tokens = malloc(sizeof(llama_token) * (size_t)n_prompt);
    int rc;
    tokens[0] = llama_vocab_bos(vocab);
    for (int i = 1; i < n_prompt; i++) {
        tokens[i] = random_token(n_vocab);
    }
    rc = llama_decode(ctx, llama_batch_get_one(tokens, n_prompt));
    llama_synchronize(ctx);
    free(tokens);
    return rc;
}

static int tg(struct llama_context *ctx, const struct llama_vocab *vocab, int n_gen, int n_vocab) {
    llama_token token = llama_vocab_bos(vocab);
    for (int i = 0; i < n_gen; i++) {
        int rc = llama_decode(ctx, llama_batch_get_one(&token, 1));
        if (rc != 0) {
            return rc;
        }
        llama_synchronize(ctx);
        token = random_token(n_vocab);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL THREADS N_PROMPT N_GEN REPS\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int threads = atoi(argv[2]), n_prompt = atoi(argv[3]), n_gen = atoi(argv[4]), reps = atoi(argv[5]);

    llama_log_set(quiet, NULL);
    llama_backend_init();
    double t0 = now_s();
    struct llama_model *model = llama_model_load_from_file(path, llama_model_default_params());
    if (!model) {
        fprintf(stderr, "cannot load %s\n", path);
        return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_gen);
    cp.n_batch = (uint32_t)n_prompt;
    cp.n_ubatch = 512;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "cannot create a context\n");
        return 1;
    }
    double load_s = now_s() - t0;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);

    /* warm-up, as llama-bench does */
    if (pp(ctx, vocab, n_prompt, n_vocab) || tg(ctx, vocab, 1, n_vocab)) {
        fprintf(stderr, "decode failed\n");
        return 1;
    }
    double pp_sum = 0, tg_sum = 0;
    for (int r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t = now_s();
        if (pp(ctx, vocab, n_prompt, n_vocab)) {
            return 1;
        }
        pp_sum += n_prompt / (now_s() - t);
        llama_memory_clear(llama_get_memory(ctx), true);
        t = now_s();
        if (tg(ctx, vocab, n_gen, n_vocab)) {
            return 1;
        }
        tg_sum += n_gen / (now_s() - t);
    }
    printf("{\"engine\":\"llama.cpp\",\"threads\":%d,\"load_seconds\":%.3f,"
           "\"prompt_tokens_per_second\":%.1f,\"generated_tokens_per_second\":%.1f,"
           "\"rss_mib\":%.1f,\"peak_rss_mib\":%.1f,\"system\":\"%s\"}\n",
           threads, load_s, pp_sum / reps, tg_sum / reps, rss_kib("VmRSS:") / 1024.0,
           rss_kib("VmHWM:") / 1024.0, llama_print_system_info());
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
