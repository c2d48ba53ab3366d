# The installable synapse-mojo: the runtime virtualenv (from uv.lock) wrapped so that it loads
# the prebuilt, portable kernels of this flake and compiles (only if asked to) with the pinned
# Mojo SDK. `python` is wrapped the same way, so `import synapse_mojo` behaves like the CLI.
{
  lib,
  stdenvNoCC,
  makeWrapper,
  venv,
  kernels,
  mojo-sdk,
  version,
}:

stdenvNoCC.mkDerivation (finalAttrs: {
  pname = "synapse-mojo";
  inherit version;

  dontUnpack = true;
  strictDeps = true;
  nativeBuildInputs = [ makeWrapper ];

  # --set-default: a user's SYNAPSE_KERNEL_DIR / SYNAPSE_MOJO still win.
  installPhase = ''
    runHook preInstall

    mkdir -p $out/bin
    for program in synapse-mojo python python3; do
      makeWrapper ${venv}/bin/$program $out/bin/$program \
        --set-default SYNAPSE_KERNEL_DIR ${kernels.kernelDir} \
        --set-default SYNAPSE_MOJO ${lib.getExe mojo-sdk}
    done

    runHook postInstall
  '';

  passthru = {
    inherit venv kernels mojo-sdk;
  };

  meta = {
    description = "Mojo-accelerated exact pattern search and cross-tract message routing for Python agent systems";
    homepage = "https://github.com/synapse-mojo/synapse-mojo";
    license = lib.licenses.asl20;
    platforms = kernels.meta.platforms;
    mainProgram = "synapse-mojo";
  };
})
