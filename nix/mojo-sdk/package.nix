# The Mojo SDK from Modular's PyPI wheels (the compiler, its linker, the runtime libraries and
# the precompiled standard library), pinned per system in ./sources.json (update with
# ./sources.py update). Modelled on nixpkgs' pkgs/by-name/mo/mojo-bin, but only the pieces
# `mojo build` needs: no LLDB, LSP server, mblack or MAX (see the omissions below).
{
  lib,
  stdenv,
  fetchurl,
  autoPatchelfHook,
  makeWrapper,
  runCommand,
  unzip,
}:

let
  sources = lib.importJSON ./sources.json;
  inherit (stdenv.hostPlatform) system;
  systemSources =
    sources.systems.${system}
      or (throw "mojo-sdk: no Mojo wheels pinned for ${system}; pinned: ${toString (builtins.attrNames sources.systems)}");
  fetchWheel = wheel: fetchurl { inherit (wheel) url hash; };
in
stdenv.mkDerivation (finalAttrs: {
  pname = "mojo-sdk";
  inherit (sources) version;

  strictDeps = true;
  __structuredAttrs = true;

  # mojo-compiler: bin/{mojo,lld,modular-crashpad-handler} and the runtime libraries (lib/*.so);
  # mojo-compiler-mojo-libs: the precompiled standard library (lib/mojo/std.mojoc), the same
  # file for every system. Omitted on purpose: the `mojo` meta-wheel (LLDB, LSP server, mblack)
  # and MAX (accelerator runtime): nothing here debugs interactively or targets a GPU.
  srcs = map fetchWheel [
    systemSources.mojoCompiler
    sources.common.mojoCompilerMojoLibs
  ];

  nativeBuildInputs = [
    makeWrapper
    unzip
  ]
  ++ lib.optionals stdenv.hostPlatform.isLinux [ autoPatchelfHook ];

  # libstdc++ and libgcc_s: all the wheel's ELF files need besides glibc.
  buildInputs = [ stdenv.cc.cc.lib ];

  dontConfigure = true;
  dontBuild = true;
  # Release binaries, already stripped upstream; stripping again gains nothing.
  dontStrip = true;

  unpackPhase = ''
    runHook preUnpack

    for wheel in "''${srcs[@]}"; do
      unzip -q -o "$wheel" -d wheels
    done

    runHook postUnpack
  '';

  # The wheels install into site-packages/modular; that directory is the SDK's package root
  # (bin/ and lib/ side by side, as the compiler expects). Python glue (mojo/run.py and the
  # console-script shims) is left out: the wrapper below sets the same environment directly.
  installPhase = ''
    runHook preInstall

    root=$out/lib/mojo-sdk/modular
    mkdir -p "$root" $out/bin
    for tree in wheels/*.data/platlib/modular; do
      cp -a "$tree"/. "$root"/
    done
    test -x "$root/bin/mojo"
    test -e "$root/lib/libKGENCompilerRTShared.so"
    test -d "$root/lib/mojo"

    # `mojo` links with the C compiler driver; point it at this stdenv's, absolutely
    # (MODULAR_MOJO_MAX_LINKER_DRIVER must be an absolute path). --set-default lets a caller
    # override every variable, e.g. a cross build's linker and target runtime root.
    makeWrapper "$root/bin/mojo" $out/bin/mojo \
      --set-default MODULAR_MOJO_MAX_PACKAGE_ROOT "$root" \
      --set-default MODULAR_MAX_PACKAGE_ROOT "$root" \
      --set-default MODULAR_MOJO_MAX_DRIVER_PATH "$root/bin/mojo" \
      --set-default MODULAR_MOJO_MAX_IMPORT_PATH "$root/lib/mojo" \
      --set-default MODULAR_MOJO_MAX_LINKER_DRIVER "${lib.getExe' stdenv.cc "cc"}" \
      --prefix PATH : "${lib.makeBinPath [ stdenv.cc ]}"

    runHook postInstall
  '';

  passthru = {
    inherit sources;
    # The package root, for callers that set MODULAR_MOJO_MAX_PACKAGE_ROOT themselves.
    packageRoot = "${finalAttrs.finalPackage}/lib/mojo-sdk/modular";
    tests = import ./tests.nix {
      inherit runCommand;
      mojo-sdk = finalAttrs.finalPackage;
    };
    updateScript = ./sources.py;
  };

  meta = {
    description = "Mojo compiler and runtime libraries (Modular's mojo-compiler wheels), for `mojo build`";
    longDescription = ''
      The prebuilt Linux toolchain requires an x86-64-v3 processor on x86_64, or an ARM
      Neoverse N1 processor or newer on aarch64. This package carries the compiler, its
      runtime libraries and the precompiled standard library; it omits LLDB, the language
      server, mblack and MAX.
    '';
    homepage = "https://www.modular.com/mojo";
    changelog = "https://docs.modular.com/mojo/changelog";
    license = {
      shortName = "modular-max";
      fullName = "Modular MAX Platform Software License";
      url = "https://www.modular.com/legal/max";
      free = false;
      redistributable = false;
    };
    sourceProvenance = with lib.sourceTypes; [
      binaryBytecode
      binaryNativeCode
    ];
    platforms = builtins.attrNames sources.systems;
    mainProgram = "mojo";
  };
})
