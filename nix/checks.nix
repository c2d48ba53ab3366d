# `nix flake check`: what can run inside the sandbox (no network besides loopback).
{
  lib,
  runCommand,
  runCommandCC,
  python3,
  system,
  src,
  mojo-sdk,
  kernels,
  synapse-mojo,
  devVenv,
}:

let
  arch =
    {
      x86_64-linux = "x86_64";
      aarch64-linux = "aarch64";
    }
    .${system};
  otherArch = if arch == "x86_64" then "aarch64" else "x86_64";
  # `synapse-mojo bench` needs the `bench` extra, which the installed package does not carry:
  # the same wrapper (prebuilt kernels, pinned SDK) over the dev virtualenv, which has it.
  synapse-mojo-bench = synapse-mojo.override { venv = devVenv; };
in
{
  # The SDK compiles and links an executable and an extension module.
  mojo-sdk-executable = mojo-sdk.tests.executable;
  mojo-sdk-shared-lib = mojo-sdk.tests.shared-lib;

  # Every prebuilt kernel loads and agrees with the Python reference (the runtime's own
  # self-checks, on the portable build that `packages.synapse-mojo` ships).
  kernels-self-check = runCommand "synapse-mojo-kernels-self-check" { nativeBuildInputs = [ synapse-mojo ]; } ''
    set -o pipefail
    export HOME=$TMPDIR
    synapse-mojo kernels check --kernel-dir ${kernels.kernelDir} | tee $out
  '';

  # Every standalone Mojo program runs its smoke case (the `Smoke: <args>` line of its source,
  # recorded in the build's manifest.json): seconds, and not a benchmark result.
  mojo-programs-smoke = runCommand "synapse-mojo-programs-smoke" { nativeBuildInputs = [ python3 ]; } ''
    set -o pipefail
    export HOME=$TMPDIR
    python3 ${src}/python/synapse_mojo/runtime/mojo_build_cli.py --run-smoke \
      --out ${kernels.kernelDir} 2>&1 | tee $out
  '';

  # The test suite, except what is marked slow. Redis runs on the sandbox's loopback. The Neo4j
  # tests build their server with Maven from Maven Central, which the sandbox cannot reach, so
  # they skip here with that reason (no CI=true in the sandbox; the GitHub uv job and .ci/run
  # run them against real Neo4j servers). Kernels are compiled by the tests with the venv's
  # compiler (the SDK's files), linking with the C compiler of this stdenv.
  pytest = runCommandCC "synapse-mojo-pytest" { nativeBuildInputs = [ devVenv ]; } ''
    set -o pipefail
    export HOME=$TMPDIR
    cp -r ${src} repo
    chmod -R u+w repo
    cd repo
    pytest -m "not slow" -p no:cacheprovider -q -rs 2>&1 | tee $out
  '';

  # A small benchmark on the portable kernels and its comparison with the committed results
  # of the other architecture (benchmarks/results/<arch>/*.json). The timings of a sandboxed
  # smoke run are not results: this checks that the pipeline works end to end.
  bench-smoke = runCommand "synapse-mojo-bench-smoke" { nativeBuildInputs = [ synapse-mojo-bench ]; } ''
    set -o pipefail
    export HOME=$TMPDIR
    mkdir -p $out
    synapse-mojo bench search --n 10000 --dim 384 --k 10 --backends mojo-f32,numpy \
      --queries 50 --no-memory --no-plots --out $out --json $out/search-${arch}.json
    other=${src}/benchmarks/results/${otherArch}
    compared=0
    for committed in "$other"/*.json; do
      [ -e "$committed" ] || continue
      suite=$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("suite", ""))' "$committed")
      [ "$suite" = search ] || continue
      synapse-mojo bench compare $out/search-${arch}.json "$committed" \
        --markdown "$out/compare-$(basename "$committed" .json).md"
      compared=$((compared + 1))
    done
    if [ "$compared" = 0 ]; then
      echo "No committed ${otherArch} search results in benchmarks/results/${otherArch}/:" \
        "comparison skipped. Commit the JSON of a ${otherArch} run (the GitHub workflow uploads" \
        "one per architecture) to compare against it." | tee $out/compare.md
    fi
  '';
}
