# A stand-in for `import nixpkgs { system, overlays, config }`: just enough packages and
# builders for flake.nix to evaluate, with derivations that instantiate (never build). It
# enforces the unfree-licence policy like nixpkgs does, so the flake's allowUnfreePredicate is
# tested too.
{
  system,
  overlays ? [ ],
  config ? { },
}:

let
  lib = import ./lib.nix;

  # Attribute values as a derivation's environment sees them.
  toEnv =
    v:
    if builtins.isBool v then
      (if v then "1" else "")
    else if builtins.isList v then
      builtins.concatStringsSep " " (map toEnv v)
    else if builtins.isAttrs v && !(v ? outPath) then
      builtins.toJSON v
    else
      toString v;

  allowUnfree =
    attrs:
    let
      license = attrs.meta.license or { free = true; };
      predicate = config.allowUnfreePredicate or (_: false);
    in
    (license.free or true) || predicate attrs;

  mkDerivation =
    argsOrFun:
    let
      argsOf = finalAttrs: if builtins.isFunction argsOrFun then argsOrFun finalAttrs else argsOrFun;
      fixed = lib.fix (finalAttrs: argsOf finalAttrs // { finalPackage = result; });
      name = fixed.name or "${fixed.pname}-${fixed.version}";
      env = builtins.removeAttrs fixed [
        "passthru"
        "meta"
        "name"
        "pname"
        "version"
        "finalPackage"
        "__structuredAttrs"
      ];
      drv = builtins.derivation (
        builtins.mapAttrs (_: toEnv) env
        // {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "echo stand-in derivation, not buildable >&2; exit 1"
          ];
        }
      );
      result =
        if !(allowUnfree fixed) then
          builtins.throw "stub nixpkgs: ${name} has an unfree licence and is not allowed"
        else
          builtins.removeAttrs fixed [ "finalPackage" ]
          // (fixed.passthru or { })
          // {
            inherit name;
            inherit (drv) outPath drvPath;
            type = "derivation";
            meta = fixed.meta or { };
            overrideAttrs =
              f:
              mkDerivation (
                finalAttrs:
                let
                  prev = argsOf finalAttrs;
                  step = f prev;
                in
                prev // (if builtins.isFunction step then f finalAttrs prev else step)
              );
            override = _: result; # enough for evaluation
          };
    in
    result;

  leaf =
    name: extra:
    mkDerivation (
      {
        pname = name;
        version = "0";
        meta.mainProgram = name;
      }
      // extra
    );

  python =
    version:
    leaf "python${version}" {
      meta.mainProgram = "python3";
      passthru = {
        sitePackages = "lib/python${version}/site-packages";
        interpreter = "/nix/store/stub-python/bin/python3";
        pythonVersion = version;
      };
    };

  base = final: {
    inherit lib system config;
    stdenv = {
      inherit mkDerivation;
      hostPlatform = {
        inherit system;
        isLinux = true;
        isDarwin = false;
      };
      cc = leaf "cc" {
        meta.mainProgram = "cc";
        passthru.cc = leaf "gcc" { outputs = [ "out" "lib" ]; passthru.lib = leaf "gcc-lib" { }; };
      };
    };
    stdenvNoCC = final.stdenv;

    callPackage =
      fn: args:
      let
        f = if builtins.isFunction fn then fn else import fn;
        auto = builtins.intersectAttrs (builtins.functionArgs f) final;
      in
      f (auto // args);

    fetchurl =
      { url, hash, ... }:
      builtins.derivation {
        name = baseNameOf url;
        inherit system url;
        builder = "builtin:fetchurl";
        outputHashMode = "flat";
        outputHash = hash;
        outputHashAlgo = "";
      };

    runCommandWith =
      name: env: script:
      mkDerivation ({ inherit name; buildCommand = script; } // env);
    runCommand = name: env: script: final.runCommandWith name env script;
    runCommandCC = final.runCommand;
    writeShellApplication =
      {
        name,
        text,
        runtimeInputs ? [ ],
      }:
      leaf name { inherit text runtimeInputs; };
    mkShell = args: leaf "shell" (builtins.removeAttrs args [ "shellHook" ] // { shellHook = args.shellHook or ""; });

    autoPatchelfHook = leaf "auto-patchelf-hook" { };
    makeWrapper = leaf "make-wrapper" { };
    unzip = leaf "unzip" { };
    uv = leaf "uv" { };
    redis = leaf "redis" { meta.mainProgram = "redis-server"; };
    zlib = leaf "zlib" { };
    openssl = leaf "openssl" { };
    python3 = python "3.13";
    python313 = python "3.13";
    python311 = python "3.11";
  };
in
lib.fix (builtins.foldl' (f: overlay: lib.extends overlay f) base overlays)
