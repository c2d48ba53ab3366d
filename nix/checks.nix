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
    python3 ${src}/python/synapse_mojo/runtime/mojo_build.py --run-smoke \
      --out ${kernels.kernelDir} 2>&1 | tee $out
  '';

  # The test suite, except what is marked slow. Redis runs on the sandbox's loopback. FalkorDB
  # binds its Bolt port on every interface, so the tests run it only inside a network namespace
  # of its own, which needs root; the sandbox builder is not root. The Linux sandbox is itself a
  # network namespace with nothing but loopback, though, so when /proc/net/dev lists only `lo`
  # the check sets SYNAPSE_TEST_FALKORDB_ANY_INTERFACE=1 and the FalkorDB tests run un-isolated;
  # in a build without that sandbox (sandbox = false) they skip, saying why. Neo4j-only tests
  # skip (no CI=true here: the GitHub uv job runs them against a real Neo4j). Kernels are
  # compiled by the tests with the venv's compiler (the SDK's files), linking with the C
  # compiler of this stdenv.
  pytest = runCommandCC "synapse-mojo-pytest" { nativeBuildInputs = [ devVenv ]; } ''
    set -o pipefail
    export HOME=$TMPDIR
    interfaces=$(sed -n '3,$s/^ *\([^:]*\):.*/\1/p' /proc/net/dev | tr '\n' ' ')
    if [ "$interfaces" = "lo " ]; then
      echo "network: loopback only ($interfaces): FalkorDB tests run un-isolated"
      export SYNAPSE_TEST_FALKORDB_ANY_INTERFACE=1
    else
      echo "network: $interfaces- not loopback-only: FalkorDB tests skip"
    fi
    cp -r ${src} repo
    chmod -R u+w repo
    cd repo
    pytest -m "not slow" -p no:cacheprovider -q -rs 2>&1 | tee $out
  '';

  # A small benchmark on the portable kernels and its comparison with the committed results
  # of the other architecture (benchmarks/results/<arch>/*.json). The timings of a sandboxed
  # smoke run are not results: this checks that the pipeline works end to end.
  bench-smoke = runCommand "synapse-mojo-bench-smoke" { nativeBuildInputs = [ synapse-mojo ]; } ''
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
