# A stand-in for `import nixpkgs { system, overlays, config }`: just enough packages and
# builders for flake.nix to evaluate, with derivations that instantiate (never build). Where
# nixpkgs is strict, so is the stand-in:
#
# - `callPackage` fills arguments from pkgs like nixpkgs' does (defaults included), and pkgs
#   carries the real top-level names that could be captured (./top-level-names.nix): an
#   argument with a default whose name nixpkgs defines is refused unless passed explicitly;
# - `python` is python2 (2.7, marked insecure) as in nixpkgs, and an insecure or unfree
#   package outside the allow-list fails evaluation like nixpkgs' check-meta;
# - builders with closed argument sets in nixpkgs (writeShellApplication) have the same set.
#
# `lib` defaults to the small stand-in (./lib.nix); nix/eval-real-inputs.sh passes nixpkgs'
# real lib instead, and the real pyproject.nix / uv2nix then run against this pkgs.
{
  system,
  overlays ? [ ],
  config ? { },
  lib ? import ./lib.nix,
}:

let
  topLevelNames = import ./top-level-names.nix;

  # Attribute values as a derivation's environment sees them.
  toEnv =
    v:
    if builtins.isBool v then
      (if v then "1" else "")
    else if builtins.isList v then
      builtins.concatStringsSep " " (map toEnv v)
    else if builtins.isAttrs v && !(v ? outPath) then
      builtins.toJSON v
    else if builtins.isFunction v then
      "<function>"
    else
      toString v;

  # nixpkgs' check-meta, for the two properties the flake relies on.
  refusal =
    name: attrs:
    let
      license = attrs.meta.license or { free = true; };
      predicate = config.allowUnfreePredicate or (_: false);
      vulnerabilities = attrs.meta.knownVulnerabilities or [ ];
    in
    if !((license.free or true) || predicate attrs) then
      "stub nixpkgs: ${name} has an unfree licence and is not allowed"
    else if vulnerabilities != [ ] && !(builtins.elem name (config.permittedInsecurePackages or [ ])) then
      "stub nixpkgs: Package '${name}' is marked as insecure, refusing to evaluate (${builtins.head vulnerabilities})"
    else
      null;

  platform =
    if lib ? systems.elaborate then
      lib.systems.elaborate system
    else
      let
        cpu = builtins.head (builtins.split "-" system);
      in
      {
        inherit system;
        isLinux = true;
        isDarwin = false;
        isFreeBSD = false;
        isx86_64 = cpu == "x86_64";
        isAarch64 = cpu == "aarch64";
        libc = "glibc";
        parsed.cpu.name = cpu;
      };

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
        "env"
      ];
      drv = builtins.derivation (
        builtins.mapAttrs (_: toEnv) (env // (fixed.env or { }))
        // {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "echo stand-in derivation, not buildable >&2; exit 1"
          ];
        }
      );
      refused = refusal name fixed;
      result =
        if refused != null then
          builtins.throw refused
        else
          builtins.removeAttrs fixed [ "finalPackage" ]
          // (fixed.passthru or { })
          // {
            inherit name;
            inherit (drv) outPath drvPath;
            type = "derivation";
            outputs = fixed.outputs or [ "out" ];
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

  # nixpkgs' callPackage: every argument whose name exists in `autoArgs` is filled from it,
  # defaults included; the result can be `.override`n. `strict` adds the capture check.
  callPackageWith =
    { autoArgs, strict }:
    fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
      formals = builtins.functionArgs f;
      what = if builtins.isFunction fn then "a function" else toString fn;
      captured = builtins.filter (
        n:
        formals.${n}
        && !(args ? ${n})
        && (autoArgs ? ${n} || builtins.elem n topLevelNames)
      ) (builtins.attrNames formals);
      result = f (builtins.intersectAttrs formals autoArgs // args);
      checked =
        if strict && captured != [ ] then
          builtins.throw (
            "stub nixpkgs: callPackage ${what}: argument(s) ${builtins.concatStringsSep ", " captured}"
            + " have a default, but nixpkgs has top-level attributes of these names, so callPackage"
            + " passes pkgs.<name> and the default is never used (pkgs.python is Python 2.7, marked"
            + " insecure): pass them explicitly or rename them"
          )
        else
          result;
    in
    if builtins.isAttrs result then
      checked
      // {
        override =
          newArgs:
          callPackageWith { inherit autoArgs strict; } fn (
            args // (if builtins.isFunction newArgs then newArgs args else newArgs)
          );
      }
    else
      checked;

  python =
    final: version: full: extra:
    let
      self = mkDerivation (
        {
          pname = "python3";
          version = full;
          meta.mainProgram = "python3";
          passthru = {
            sitePackages = "lib/python${version}/site-packages";
            interpreter = "${self}/bin/python${version}";
            executable = "python${version}";
            pythonVersion = version;
            sourceVersion = {
              major = builtins.head (builtins.splitVersion version);
              minor = builtins.elemAt (builtins.splitVersion version) 1;
            };
            implementation = "cpython";
            inherit (final) stdenv;
            pythonOnBuildForHost = self;
          };
        }
        // extra
      );
    in
    self;

  base = final: {
    inherit lib system config;
    pkgs = final;
    path = ./.;
    stdenv = {
      inherit mkDerivation;
      system = system;
      buildPlatform = platform;
      hostPlatform = platform;
      targetPlatform = platform;
      isLinux = platform.isLinux;
      isDarwin = platform.isDarwin;
      cc = leaf "cc" {
        meta.mainProgram = "cc";
        passthru = {
          cc = leaf "gcc" {
            outputs = [
              "out"
              "lib"
            ];
            passthru.lib = leaf "gcc-lib" { };
          };
          libc = leaf "glibc" {
            version = "2.40";
            passthru.linuxHeaders = leaf "linux-headers" { version = "6.16"; };
          };
        };
      };
      shell = "/bin/sh";
    };
    stdenvNoCC = final.stdenv;
    buildPackages = final;

    callPackage = callPackageWith {
      autoArgs = final;
      strict = true;
    };
    # Scopes (lib.makeScope newScope ...) call library code: no capture check there.
    newScope =
      extra:
      callPackageWith {
        autoArgs = final // extra;
        strict = false;
      };

    fetchurl =
      {
        url,
        hash,
        name ? baseNameOf url,
        ...
      }:
      builtins.derivation {
        inherit name system url;
        builder = "builtin:fetchurl";
        outputHashMode = "flat";
        outputHash = hash;
        outputHashAlgo = "";
      }
      // {
        passthru.url = url;
      };

    runCommandWith =
      name: env: script:
      mkDerivation (
        {
          inherit name;
          buildCommand = script;
        }
        // env
      );
    runCommand = name: env: script: final.runCommandWith name env script;
    runCommandCC = final.runCommand;
    makeSetupHook =
      {
        name,
        substitutions ? { },
        propagatedBuildInputs ? [ ],
        depsTargetTargetPropagated ? [ ],
        meta ? { },
        passthru ? { },
      }:
      script:
      final.runCommand name {
        inherit script propagatedBuildInputs passthru;
        substitutions = builtins.attrNames substitutions;
      } "cp $script $out";
    replaceVars = src: vars: final.runCommand (baseNameOf src) { inherit src; } "cp $src $out";
    # nixpkgs' writeShellApplication takes exactly these (pkgs/build-support/trivial-builders).
    writeShellApplication =
      {
        name,
        text,
        runtimeInputs ? [ ],
        runtimeEnv ? null,
        meta ? { },
        passthru ? { },
        checkPhase ? null,
        excludeShellChecks ? [ ],
        extraShellCheckFlags ? [ ],
        bashOptions ? [
          "errexit"
          "nounset"
          "pipefail"
        ],
        derivationArgs ? { },
        inheritPath ? true,
      }:
      leaf name {
        inherit text runtimeInputs passthru;
        meta = {
          mainProgram = name;
        }
        // meta;
      };
    mkShell =
      args:
      leaf "shell" (
        builtins.removeAttrs args [ "shellHook" ]
        // {
          shellHook = args.shellHook or "";
        }
      );

    autoPatchelfHook = leaf "auto-patchelf-hook" { };
    makeWrapper = leaf "make-wrapper" { };
    unzip = leaf "unzip" { };
    ugrep = leaf "ugrep" { };
    uv = leaf "uv" { };
    redis = leaf "redis" { meta.mainProgram = "redis-server"; };
    zlib = leaf "zlib" { };
    openssl = leaf "openssl" { };
    pythonManylinuxPackages = {
      manylinux1 = [ ];
      manylinux2010 = [ ];
      manylinux2014 = [ ];
    };
    # As in nixpkgs: `python` is Python 2 (insecure), `python3` the default Python 3.
    python = final.python2;
    python2 = final.python27;
    python27 = python final "2.7" "2.7.18.8" {
      pname = "python";
      meta.mainProgram = "python";
      meta.knownVulnerabilities = [ "Python 2.7 has reached its end of life after 2020-01-01" ];
    };
    python3 = final.python313;
    python310 = python final "3.10" "3.10.18" { };
    python311 = python final "3.11" "3.11.13" { };
    python313 = python final "3.13" "3.13.7" { };
  };
in
lib.fix (builtins.foldl' (f: overlay: lib.extends overlay f) base overlays)
