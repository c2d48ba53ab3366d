# Evaluates flake.nix against the real uv2nix, pyproject.nix, build-system-pkgs and nixpkgs'
# lib (checked-out sources, paths given as arguments; run by nix/eval-real-inputs.sh). Only
# the derivation-producing parts of pkgs stand in (nix/tests/stub-nixpkgs, with the real lib):
# the real uv2nix reads uv.lock, resolves it for each system, selects each wheel and builds
# the pyproject.nix package set, the overlays of nix/python.nix run on it, and every package,
# check, app and dev shell must instantiate.
{
  nixpkgsLib,
  pyprojectNix,
  uv2nix,
  buildSystemPkgs,
}:
let
  lib = import (nixpkgsLib + "/lib");
  pyproject-nix = import pyprojectNix { inherit lib; };
  uv2nix' = import uv2nix { inherit lib pyproject-nix; };
  pyproject-build-systems.overlays = import (buildSystemPkgs + "/default.nix") {
    inherit lib pyproject-nix;
    uv2nix = uv2nix';
  };
  # `import nixpkgs { ... }` of the flake: the stand-in pkgs with the real lib.
  nixpkgs = {
    inherit lib;
    outPath = builtins.toFile "stub-nixpkgs-with-real-lib.nix" ''
      args: import ${toString ./stub-nixpkgs} (args // { lib = import ${toString nixpkgsLib}/lib; })
    '';
  };
  flake = import ../../flake.nix;
  self =
    flake.outputs {
      inherit self nixpkgs pyproject-nix pyproject-build-systems;
      uv2nix = uv2nix';
    }
    // {
      outPath = ../..;
    };
  drvs = set: lib.mapAttrs (_: d: d.drvPath) set;

  pythonFor =
    system:
    (import nixpkgs {
      inherit system;
      overlays = [ self.overlays.default ];
      config.allowUnfreePredicate = pkg: lib.getName pkg == "mojo-sdk";
    }).synapse-mojo-python;

  # The names of the packages a dependency spec resolves to (pyproject.nix's resolver).
  resolve = set: spec: lib.unique (map (p: p.pname) (set.resolveVirtualEnv spec));
  # name -> "version format wheel" of each.
  describe =
    set: names:
    lib.genAttrs names (
      n:
      let
        p = set.${n};
      in
      "${p.version} ${p.passthru.format or "local"}${
        lib.optionalString (p ? src.passthru.url) " ${baseNameOf p.src.passthru.url}"
      }"
    );
in
lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
  system:
  let
    python = pythonFor system;
    runtime = resolve python.pythonSet python.runtimeDeps;
    dev = resolve python.pythonSet python.devDeps;
  in
  {
    interpreter = python.python.name;
    runtimeDeps = python.runtimeDeps;
    devDeps = python.devDeps;
    runtimePackages = describe python.pythonSet runtime;
    devOnlyPackages = lib.subtractLists runtime dev;
    venvs = {
      venv = python.venv.drvPath;
      devVenv = python.devVenv.drvPath;
      editableVenv = python.editableVenv.drvPath;
    };
    packages = drvs self.packages.${system};
    checks = drvs self.checks.${system};
    devShells = drvs self.devShells.${system};
    apps = lib.mapAttrs (_: app: app.program) self.apps.${system};
  }
)
