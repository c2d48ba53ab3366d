# Evaluates flake.nix's outputs with stand-in inputs (nixpkgs, uv2nix, pyproject-nix and
# pyproject-build-systems cannot be fetched here): every package, check, app and dev shell of
# both systems must evaluate to a derivation. Catches typos, missing arguments, wrong attribute
# paths into the SDK pins or the lock, an unfree or insecure package outside the allow-list, an
# argument `callPackage` would capture from pkgs, arguments the real builders do not take,
# lib.fileset paths the real lib refuses, and, checked here:
#   - the runtime package's virtualenv holds the project's dependencies only (no dependency
#     group: the dev group is for the dev shell and the checks);
#   - every key of nix/python.nix's nativeWheelLibs names a package in uv.lock.
#
#   nix-instantiate --eval --strict --json nix/tests/eval-flake.nix
let
  lib = import ./stub-nixpkgs/lib.nix;
  flake = import ../../flake.nix;
  inputs = import ./stub-inputs.nix { inherit lib; };
  nixpkgs = {
    outPath = ./stub-nixpkgs;
    inherit lib;
  };
  self = flake.outputs (inputs // { inherit self nixpkgs; }) // {
    outPath = ../..;
  };
  drvs = set: lib.mapAttrs (_: d: d.drvPath) set;

  pyproject = lib.importTOML ../../pyproject.toml;
  groups = builtins.attrNames (pyproject.dependency-groups or { });
  locked = map (p: p.name) (lib.importTOML ../../uv.lock).package;

  checkRuntimeVenv =
    system:
    let
      spec = self.packages.${system}.synapse-mojo.venv.spec;
      inGroups = builtins.filter (e: builtins.elem e groups) (builtins.concatLists (builtins.attrValues spec));
      extras = spec.${pyproject.project.name} or [ ];
      tooling = builtins.filter (e: builtins.elem e [ "bench" "max" ]) extras;
    in
    lib.assertMsg (inGroups == [ ])
      "packages.${system}.synapse-mojo: the runtime virtualenv includes the dependency group(s) ${toString inGroups} (uv's default-groups); the installed package must carry the project's dependencies only"
    && lib.assertMsg (builtins.elem "all" extras)
      "packages.${system}.synapse-mojo: the runtime virtualenv lacks the extra all (Redis, Neo4j, the local embedder: what demo and serve use)"
    && lib.assertMsg (tooling == [ ])
      "packages.${system}.synapse-mojo: the runtime virtualenv carries the tooling extra(s) ${toString tooling}";

  checkNativeWheelLibs =
    system:
    let
      pkgs = import nixpkgs {
        inherit system;
        overlays = [ self.overlays.default ];
        config.allowUnfreePredicate = _: true;
      };
      unknown = builtins.filter (n: !(builtins.elem n locked)) (
        builtins.attrNames pkgs.synapse-mojo-python.nativeWheelLibs
      );
    in
    lib.assertMsg (unknown == [ ])
      "nix/python.nix: nativeWheelLibs names ${toString unknown}, which uv.lock does not lock (a typo would silently patch nothing)";
in
lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
  system:
  assert checkRuntimeVenv system;
  assert checkNativeWheelLibs system;
  {
    packages = drvs self.packages.${system};
    checks = drvs self.checks.${system};
    devShells = drvs self.devShells.${system};
    apps = lib.mapAttrs (_: app: {
      inherit (app) type program;
      description = app.meta.description;
    }) self.apps.${system};
    overlay = builtins.isFunction self.overlays.default;
  }
)
