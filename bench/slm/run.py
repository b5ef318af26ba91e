#!/usr/bin/env python3
"""The summarize runtime versus llama.cpp itself: same GGUF, same thread counts.

1. Builds the llama.cpp library from the sources vendored in the
   llama-cpp-sys-2 crate (the version in Cargo.lock, from cargo's registry
   cache) with cmake into a temporary directory, with the flags the crate's
   build uses (Release, GGML_NATIVE=OFF so ggml's default x86 set including
   AVX2, OpenMP), library targets only, and compiles `pp_tg.c` against it:
   llama-bench's pp/tg method through the C API (the crate does not ship
   llama.cpp's tools).
2. Runs it for each thread count: load time, prompt tokens/s (pp512),
   generated tokens/s (tg128), RSS.
3. Runs `cargo bench -p sluice-plugin-summarize --bench slm`: the same
   figures through the crate's model thread, plus the latency of whole
   20-event digests (facts, grammar, generation, check) and the process RSS.
4. Builds llama.cpp's own `llama-bench` against the same vendored sources
   (the crate leaves the tools' sources out; `llama-bench.cpp` and `main.cpp`
   come from the llama.cpp tree inside the pinned llama-cpp-python sdist on
   PyPI, fetched with `pip download`) and runs it with the same GGUF,
   thread counts and pp512/tg128 tests (`--no-llama-bench` skips it).
5. Prints one table.

Usage: python3 bench/slm/run.py [--threads 1,2] [--reps 5] [--digests 10]
                               [--model PATH] [--json OUT] [--dev]

--dev skips both release builds of llama.cpp (each several minutes on 2
cores): the crate runs in the dev profile with workspace crates at
opt-level 3 (dependencies are already optimised there and llama.cpp is built
as Release), and the reference links the very libraries cargo's cmake build
produced for it, so both sides run identical llama.cpp object code.
Needs cmake, a C/C++ compiler and cargo (scripts/setup.sh installs them) and
the model (models/slm/fetch.sh).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "slm")
DEFAULT_MODEL = os.path.join(ROOT, "models", "slm", "SmolLM2-135M-Instruct.Q4_1.gguf")
N_PROMPT, N_GEN = 512, 128
# Its sdist carries llama.cpp's tools/llama-bench sources.
LLAMA_CPP_PYTHON = "0.3.36"
LLAMA_BENCH_CMAKE = """cmake_minimum_required(VERSION 3.14)
project(llama_bench CXX C)
set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_MTMD OFF CACHE BOOL "" FORCE)
set(LLAMA_OPENSSL OFF CACHE BOOL "" FORCE)
add_subdirectory(llama.cpp)
add_executable(llama-bench llama-bench.cpp main.cpp)
target_link_libraries(llama-bench PRIVATE llama-common llama)
target_compile_features(llama-bench PRIVATE cxx_std_17)
"""


def sys_crate_version():
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    m = re.search(r'name = "llama-cpp-sys-2"\nversion = "([^"]+)"', lock)
    if not m:
        sys.exit("llama-cpp-sys-2 is not in Cargo.lock")
    return m.group(1)


def vendored_llama_cpp(version):
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    hits = glob.glob(os.path.join(cargo_home, "registry", "src", "*", f"llama-cpp-sys-2-{version}", "llama.cpp"))
    if not hits:
        subprocess.run(["cargo", "fetch", "--locked"], cwd=ROOT, check=True)
        hits = glob.glob(os.path.join(cargo_home, "registry", "src", "*", f"llama-cpp-sys-2-{version}", "llama.cpp"))
    if not hits:
        sys.exit(f"llama.cpp sources of llama-cpp-sys-2 {version} not found under {cargo_home}")
    return hits[0]


def build_reference(src, version, jobs):
    """Builds libllama (shared) and pp_tg; cached per crate version."""
    out = os.path.join(tempfile.gettempdir(), f"sluice-llama-cpp-{version}")
    exe = os.path.join(out, "pp_tg")
    if os.path.exists(exe) and os.path.getmtime(exe) > os.path.getmtime(os.path.join(HERE, "pp_tg.c")):
        return exe, 0.0
    started = time.time()
    build = os.path.join(out, "build")
    subprocess.run([
        "cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=ON", "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=ON",
        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=OFF",
        "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_COMMON=OFF",
        "-DLLAMA_CURL=OFF",
    ], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "--target", "llama", "-j", str(jobs)],
                   check=True, stdout=subprocess.DEVNULL)
    libs = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(build, "**", "libllama.so"), recursive=True)}
                  | {os.path.dirname(p) for p in glob.glob(os.path.join(build, "**", "libggml*.so"), recursive=True)})
    cmd = ["cc", "-O2", "-o", exe, os.path.join(HERE, "pp_tg.c"),
           "-I", os.path.join(src, "include"), "-I", os.path.join(src, "ggml", "include")]
    for d in libs:
        cmd += ["-L", d, f"-Wl,-rpath,{d}"]
    cmd += ["-lllama", "-lggml", "-lggml-base"]
    subprocess.run(cmd, check=True)
    return exe, time.time() - started


def link_reference(build, src):
    """Links pp_tg against an existing cmake build of the same sources."""
    exe = os.path.join(tempfile.gettempdir(), "sluice-pp_tg-dev")
    libs = [os.path.join(build, p) for p in ("src/libllama.a", "ggml/src/libggml.a",
                                           "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a")]
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "pp_tg.c"),
                    "-I", os.path.join(src, "include"), "-I", os.path.join(src, "ggml", "include"),
                    *libs, "-lstdc++", "-fopenmp", "-lm", "-lpthread"], check=True)
    return exe


def llama_bench_sources():
    """tools/llama-bench/*.cpp from the pinned llama-cpp-python sdist."""
    cache = os.path.join(os.path.expanduser("~"), ".cache", "sluice", f"llama-cpp-python-{LLAMA_CPP_PYTHON}")
    names = ("llama-bench.cpp", "main.cpp")
    if all(os.path.isfile(os.path.join(cache, n)) for n in names):
        return [os.path.join(cache, n) for n in names]
    os.makedirs(cache, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", cache], check=True)
    import tarfile
    sdist = os.path.join(cache, f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz")
    with tarfile.open(sdist) as tar:
        for n in names:
            member = tar.getmember(f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/tools/llama-bench/{n}")
            with tar.extractfile(member) as f, open(os.path.join(cache, n), "wb") as out:
                out.write(f.read())
    os.remove(sdist)
    return [os.path.join(cache, n) for n in names]


def build_llama_bench(src, version, jobs):
    """Builds llama-bench on the crate's llama.cpp sources; cached per version."""
    out = os.path.join(tempfile.gettempdir(), f"sluice-llama-bench-{version}")
    exe = os.path.join(out, "build", "llama-bench")
    if os.path.exists(exe):
        return exe, 0.0
    started = time.time()
    import shutil
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src, os.path.join(out, "llama.cpp"))
    for f in llama_bench_sources():
        shutil.copy(f, out)
    with open(os.path.join(out, "CMakeLists.txt"), "w") as f:
        f.write(LLAMA_BENCH_CMAKE)
    build = os.path.join(out, "build")
    subprocess.run(["cmake", "-S", out, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF",
                    "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=ON"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "--target", "llama-bench", "-j", str(jobs)],
                   check=True, stdout=subprocess.DEVNULL)
    return exe, time.time() - started


def run_llama_bench(exe, model, threads, reps):
    out = subprocess.run([exe, "-m", model, "-t", str(threads), "-p", str(N_PROMPT), "-n", str(N_GEN),
                          "-r", str(reps), "-o", "json"], check=True, capture_output=True, text=True).stdout
    runs = json.loads(out)
    pp = next(r for r in runs if r["n_prompt"] > 0 and r["n_gen"] == 0)
    tg = next(r for r in runs if r["n_gen"] > 0 and r["n_prompt"] == 0)
    return {"prompt_tokens_per_second": pp["avg_ts"], "generated_tokens_per_second": tg["avg_ts"],
            "build_commit": pp.get("build_commit"), "cpu_info": pp.get("cpu_info")}


def dev_env():
    env = dict(os.environ)
    # Only the workspace crates' opt-level: any other profile change would
    # give the dependencies (llama.cpp included) new build directories.
    env["CARGO_PROFILE_DEV_OPT_LEVEL"] = "3"
    return env


def cargo_llama_build(version):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    hits = glob.glob(os.path.join(target, "debug", "build", "llama-cpp-sys-2-*", "out", "build", "src", "libllama.a"))
    if not hits:
        sys.exit(f"no dev build of llama-cpp-sys-2 {version} under {target}: run "
                 "`cargo test -p sluice-plugin-summarize --no-run` first")
    return os.path.dirname(os.path.dirname(max(hits, key=os.path.getmtime)))


def run_reference(exe, model, threads, reps):
    out = subprocess.run([exe, model, str(threads), str(N_PROMPT), str(N_GEN), str(reps)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_sluice(model, threads, reps, digests, dev):
    profile = ["--profile", "dev"] if dev else []
    cmd = ["cargo", "bench", "--locked", *profile, "-p", "sluice-plugin-summarize", "--bench", "slm", "--",
           "--model", model, "--threads", ",".join(map(str, threads)),
           "--reps", str(reps), "--digests", str(digests)]
    env = dev_env() if dev else None
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"cargo bench failed:\n{p.stderr[-4000:]}")
    out = p.stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--digests", type=int, default=10)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--json")
    ap.add_argument("--dev", action="store_true")
    ap.add_argument("--no-llama-bench", action="store_true")
    a = ap.parse_args()
    if not os.path.isfile(a.model):
        sys.exit(f"{a.model} is missing: run models/slm/fetch.sh")
    threads = [int(t) for t in a.threads.split(",")]
    version = sys_crate_version()
    src = vendored_llama_cpp(version)
    if a.dev:
        exe, build_s = link_reference(cargo_llama_build(version), src), 0.0
    else:
        exe, build_s = build_reference(src, version, os.cpu_count() or 2)

    bench_exe = None
    if not a.no_llama_bench:
        bench_exe, bench_build_s = build_llama_bench(src, version, os.cpu_count() or 2)
        if bench_build_s:
            print(f"llama-bench built in {bench_build_s:.0f} s", flush=True)

    sluice = run_sluice(a.model, threads, a.reps, a.digests, a.dev)
    ref = {t: run_reference(exe, a.model, t, a.reps) for t in threads}
    lb = {t: run_llama_bench(bench_exe, a.model, t, a.reps) for t in threads} if bench_exe else {}

    ev = lambda kind, t=None: next(r for r in sluice if r["event"] == kind and r.get("threads", t) == t)
    load, mem = ev("load"), ev("memory")
    print(f"model {os.path.basename(a.model)}, llama.cpp of llama-cpp-sys-2 {version}"
          + (" (dev: identical library on both sides)" if a.dev else "")
          + (f" (reference built in {build_s:.0f} s)" if build_s else ""))
    print(f"system: {ref[threads[0]]['system']}")
    print()
    print(f"{'threads':>7} | {'prompt t/s':>20} | {'tg128 t/s':>20} | {'tg ratio':>8} | {'20-event digest s (p50/p90/max)':>31} | by model")
    print(f"{'':>7} | {'sluice':>9} {'llama.cpp':>10} | {'sluice':>9} {'llama.cpp':>10} |          |")
    rows = []
    for t in threads:
        s, d, r = ev("speed", t), ev("digest", t), ref[t]
        ratio = s["generated_tokens_per_second"] / r["generated_tokens_per_second"]
        print(f"{t:>7} | {s['prompt_tokens_per_second']:>9.1f} {r['prompt_tokens_per_second']:>10.1f} | "
              f"{s['generated_tokens_per_second']:>9.1f} {r['generated_tokens_per_second']:>10.1f} | "
              f"{ratio:>8.2f} | {d['p50_seconds']:>9.2f} / {d['p90_seconds']:.2f} / {d['max_seconds']:.2f}"
              f"{'':>8} | {d['by_model']}/{d['digests']}")
        rows.append({"threads": t, "sluice": s, "digest": d, "llama_cpp": r, "generation_ratio": ratio})
        if t in lb:
            rows[-1]["llama_bench"] = lb[t]
            rows[-1]["generation_ratio_vs_llama_bench"] = s["generated_tokens_per_second"] / lb[t]["generated_tokens_per_second"]
    if lb:
        print()
        print("llama.cpp's own llama-bench, same sources, GGUF and threads (pp512 / tg128, tokens/s):")
        for t in threads:
            s, r = ev("speed", t), lb[t]
            print(f"{t:>7} thread(s): llama-bench {r['prompt_tokens_per_second']:.1f} / "
                  f"{r['generated_tokens_per_second']:.1f}; sluice {s['prompt_tokens_per_second']:.1f} / "
                  f"{s['generated_tokens_per_second']:.1f}; generation ratio "
                  f"{s['generated_tokens_per_second'] / r['generated_tokens_per_second']:.2f}")
    print()
    print(f"load: sluice {load['load_seconds']:.2f} s (weights {load['weights_seconds']:.2f} s), "
          f"llama.cpp {ref[threads[0]]['load_seconds']:.2f} s")
    print(f"RSS: sluice bench process {mem['rss_mib']:.0f} MiB (peak {mem['peak_rss_mib']:.0f} MiB, "
          f"{load['rss_mib']:.0f} MiB after load); llama.cpp {ref[threads[0]]['rss_mib']:.0f} MiB "
          f"(peak {ref[threads[0]]['peak_rss_mib']:.0f} MiB)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "load": load, "memory": mem}, f, indent=2)


if __name__ == "__main__":
    main()
