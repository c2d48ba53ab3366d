# Every Mojo artefact of the repository, built by the project's one build tool
# (python/synapse_mojo/runtime/mojo_build_cli.py over mojo_build.py, the same code the runtime
# and the cross build use): the extension modules mojo/*.mojo -> lib/synapse-mojo/kernels/<name>.so and the
# standalone programs mojo/bench/*.mojo -> bin/<name>.
#
# The target CPU is portable by default (x86-64-v3 on x86_64, neoverse-n1 on aarch64), so the
# result runs on any machine of its architecture; override with
# `kernels.override { targetCpu = "native"; }` for a machine-specific build.
{
  lib,
  stdenv,
  python3,
  mojo-sdk,
  version,
  targetCpu ? "portable",
}:

stdenv.mkDerivation (finalAttrs: {
  pname = "synapse-mojo-kernels";
  inherit version;

  # Only what the build reads: a Python change does not rebuild the kernels.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../mojo
      ../python/synapse_mojo/runtime/mojo_build.py
      ../python/synapse_mojo/runtime/mojo_build_cli.py
    ];
  };

  strictDeps = true;
  __structuredAttrs = true;

  # python3 only runs the build script (standard library only); mojo-sdk's wrapper brings the
  # C compiler driver it links with.
  nativeBuildInputs = [
    mojo-sdk
    python3
  ];

  dontConfigure = true;
  # The runtime refuses a prebuilt kernel whose size or SHA-256 differs from the manifest.json
  # the build tool writes; stripping or shrinking RPATHs in fixupPhase would change the bytes
  # after that record was made, so the output stays exactly as the tool wrote it.
  dontStrip = true;
  dontPatchELF = true;

  buildPhase = ''
    runHook preBuild

    # The compiler writes caches under HOME; the sandbox has none.
    export HOME=$TMPDIR
    python3 python/synapse_mojo/runtime/mojo_build_cli.py \
      --src mojo \
      --out "$TMPDIR/artefacts" \
      --mojo ${lib.getExe mojo-sdk} \
      --target-cpu ${lib.escapeShellArg finalAttrs.passthru.targetCpu}

    runHook postBuild
  '';

  # lib/synapse-mojo/kernels is the build's output directory as the tool wrote it (the .so
  # files, bin/ and manifest.json, which `mojo_build_cli.py --run-smoke` reads); bin/ links the
  # programs for `nix run` and PATH.
  installPhase = ''
    runHook preInstall

    mkdir -p $out/lib/synapse-mojo $out/bin
    cp -r "$TMPDIR/artefacts" $out/lib/synapse-mojo/kernels
    if [ -d $out/lib/synapse-mojo/kernels/bin ]; then
      for program in $out/lib/synapse-mojo/kernels/bin/*; do
        ln -s "$program" $out/bin/
      done
    fi

    runHook postInstall
  '';

  passthru = {
    inherit targetCpu;
    kernelDir = "${finalAttrs.finalPackage}/lib/synapse-mojo/kernels";
  };

  meta = {
    description = "synapse-mojo's Mojo kernels (Python extension modules) and standalone Mojo benchmarks";
    homepage = "https://github.com/synapse-mojo/synapse-mojo";
    license = lib.licenses.asl20;
    platforms = mojo-sdk.meta.platforms;
  };
})
